package dev.jtune.data.dataset;

/** A prepared-dataset directory or file that cannot be read back; the message names it and what is wrong. */
public final class CorruptPreparedDataException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public CorruptPreparedDataException(String message) {
        super(message);
    }

    public CorruptPreparedDataException(String message, Throwable cause) {
        super(message, cause);
    }
}
