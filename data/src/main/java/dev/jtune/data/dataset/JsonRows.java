package dev.jtune.data.dataset;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * The rows of JSON files, streamed one at a time (never a whole file in memory), file after file. A file
 * named {@code *.jsonl} is read line by line, blank lines skipped; any other file is parsed with Jackson's
 * streaming parser as a top-level array whose elements are the rows, or as a sequence of top-level values
 * (JSON lines in a {@code .json} file, as Hugging Face's json loader accepts). Each row carries its file and
 * the line where it starts.
 *
 * <p>Malformed JSON is a {@link DatasetException} naming file and line. In a {@code .jsonl} file it is
 * {@linkplain #recoverable recoverable}: iteration can go on with the next line; in a JSON file it ends that
 * file's rows (the parser cannot resynchronise), so it is not.
 *
 * <p>Inside the package, {@link #hasNextRaw}/{@link #nextRaw} give the rows before a {@code .jsonl} line is
 * parsed ({@link Raw#parse}, which then throws the recoverable error), so that {@link DatasetReader}'s workers
 * parse the lines and the reading thread only splits them.
 */
public final class JsonRows implements Iterator<SourceRow>, AutoCloseable {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final Iterator<Path> files;
    private FileRows current;
    private Raw nextRaw;
    private SourceRow next;

    private JsonRows(List<Path> files) {
        this.files = List.copyOf(files).iterator();
    }

    /** The rows of {@code files}, in order; files are opened one at a time as iteration reaches them. */
    public static JsonRows open(List<Path> files) {
        return new JsonRows(files);
    }

    /** Whether {@code e}, thrown by {@link #next}/{@link #hasNext}, leaves the iteration usable (a bad JSON line). */
    public static boolean recoverable(DatasetException e) {
        return e instanceof MalformedLine;
    }

    @Override
    public boolean hasNext() {
        if (next != null) {
            return true;
        }
        if (!hasNextRaw()) {
            return false;
        }
        next = nextRaw().parse(); // a malformed line is consumed even when it throws: iteration goes on after it
        return true;
    }

    @Override
    public SourceRow next() {
        if (!hasNext()) {
            throw new NoSuchElementException();
        }
        SourceRow row = next;
        next = null;
        return row;
    }

    /**
     * Whether a row (parsed or not) is left, for {@link #nextRaw}; do not mix with {@link #hasNext}/{@link #next}.
     *
     * @throws DatasetException when a file cannot be read, or a JSON file is malformed (not recoverable)
     */
    boolean hasNextRaw() {
        while (nextRaw == null) {
            if (current == null) {
                if (!files.hasNext()) {
                    return false;
                }
                Path file = files.next();
                current = Compressed.plainName(file.getFileName().toString()).endsWith(".jsonl")
                        ? new LineRows(file) : new ParsedRows(file);
            }
            Raw row = current.read();
            if (row == null) {
                current.close();
                current = null;
            } else {
                nextRaw = row;
            }
        }
        return true;
    }

    /** The next row as read: a {@code .jsonl} line is not parsed yet, so that can happen on another thread. */
    Raw nextRaw() {
        if (!hasNextRaw()) {
            throw new NoSuchElementException();
        }
        Raw row = nextRaw;
        nextRaw = null;
        return row;
    }

    /**
     * A row as read: an element of a JSON file (parsed by the streaming parser, which cannot be split), or a line
     * of a {@code .jsonl} file whose parsing is left to {@link #parse} (thread-safe: {@link DatasetReader} runs it
     * on its workers).
     */
    sealed interface Raw permits Parsed, Line {
        /**
         * The row.
         *
         * @throws DatasetException a {@linkplain #recoverable recoverable} one naming file and line when a
         *     {@code .jsonl} line is malformed
         */
        SourceRow parse();
    }

    record Parsed(SourceRow row) implements Raw {
        @Override
        public SourceRow parse() {
            return row;
        }
    }

    record Line(Path file, long line, String text) implements Raw {
        @Override
        public SourceRow parse() {
            try {
                return new SourceRow(file, line, MAPPER.readTree(text));
            } catch (JsonProcessingException e) {
                throw new MalformedLine(file, line, "malformed JSON: " + e.getOriginalMessage(), e);
            }
        }
    }

    @Override
    public void close() {
        if (current != null) {
            current.close();
            current = null;
        }
    }

    private static final class MalformedLine extends DatasetException {
        MalformedLine(Path file, long line, String reason, Throwable cause) {
            super(file, line, reason, cause);
        }
    }

    private interface FileRows extends AutoCloseable {
        /** The next row, or null at the end. */
        Raw read();

        @Override
        void close();
    }

    private static final class LineRows implements FileRows {
        private final Path file;
        private final BufferedReader reader;
        private long line;

        LineRows(Path file) {
            this.file = file;
            try {
                this.reader = new BufferedReader(new java.io.InputStreamReader(Compressed.open(file),
                        StandardCharsets.UTF_8.newDecoder()));
            } catch (IOException e) {
                throw new DatasetException(file, 0, "cannot read: " + e.getMessage(), e);
            }
        }

        @Override
        public Raw read() {
            String text;
            do {
                try {
                    text = reader.readLine();
                } catch (IOException e) {
                    throw new DatasetException(file, line + 1, "cannot read: " + e.getMessage(), e);
                }
                if (text == null) {
                    return null;
                }
                line++;
            } while (text.isBlank());
            return new Line(file, line, text);
        }

        @Override
        public void close() {
            try {
                reader.close();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    private static final class ParsedRows implements FileRows {
        private final Path file;
        private final JsonParser parser;
        private boolean started;
        private boolean array;
        private boolean done;

        ParsedRows(Path file) {
            this.file = file;
            try {
                this.parser = MAPPER.getFactory().createParser(Compressed.open(file));
            } catch (IOException e) {
                throw new DatasetException(file, 0, "cannot read: " + e.getMessage(), e);
            }
        }

        @Override
        public Raw read() {
            if (done) {
                return null;
            }
            try {
                JsonToken token = parser.nextToken();
                if (!started) {
                    started = true;
                    array = token == JsonToken.START_ARRAY;
                    if (array) {
                        token = parser.nextToken();
                    } else if (token != null && token != JsonToken.START_OBJECT) {
                        throw new DatasetException(file, parser.currentTokenLocation().getLineNr(),
                                "expected a JSON array of rows, or JSON objects one after another, found " + parser.getText());
                    }
                }
                if (token == null || (array && token == JsonToken.END_ARRAY)) {
                    if (array && token == null) {
                        throw new DatasetException(file, parser.currentLocation().getLineNr(), "malformed JSON: the top-level array is not closed");
                    }
                    if (array && parser.nextToken() != null) {
                        throw new DatasetException(file, parser.currentTokenLocation().getLineNr(),
                                "malformed JSON: content after the top-level array");
                    }
                    done = true;
                    return null;
                }
                long line = parser.currentTokenLocation().getLineNr();
                JsonNode value = MAPPER.readTree(parser);
                return new Parsed(new SourceRow(file, line, value));
            } catch (JsonProcessingException e) {
                JsonLocation at = e.getLocation();
                done = true;
                throw new DatasetException(file, at == null ? 0 : at.getLineNr(), "malformed JSON: " + e.getOriginalMessage(), e);
            } catch (IOException e) {
                done = true;
                throw new DatasetException(file, 0, "cannot read: " + e.getMessage(), e);
            }
        }

        @Override
        public void close() {
            try {
                parser.close();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}
