package dev.jtune.data.dataset;

import java.nio.file.Path;

/**
 * A dataset that cannot be read or a row that cannot be formatted. The message reads
 * {@code FILE:LINE: REASON} (just {@code FILE: REASON} when no line applies, or the reason alone when no file
 * does); {@link #reason()} is the part without the place, by which {@link LoadReport} counts skipped rows.
 */
public class DatasetException extends RuntimeException {
    private final Path file;
    private final long line;
    private final String reason;

    /** @param file the file, or null @param line 1-based, or 0 when unknown */
    public DatasetException(Path file, long line, String reason) {
        this(file, line, reason, null);
    }

    public DatasetException(Path file, long line, String reason, Throwable cause) {
        super((file == null ? "" : file + (line > 0 ? ":" + line : "") + ": ") + reason, cause);
        this.file = file;
        this.line = line;
        this.reason = reason;
    }

    /** The file, or null. */
    public Path file() {
        return file;
    }

    /** The 1-based line, or 0. */
    public long line() {
        return line;
    }

    /** What is wrong, without the place. */
    public String reason() {
        return reason;
    }
}
