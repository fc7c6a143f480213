package dev.jtune.lora;

/** An adapter directory is missing, malformed, or does not fit the model; the message names file and field. */
public final class AdapterException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public AdapterException(String message) {
        super(message);
    }

    public AdapterException(String message, Throwable cause) {
        super(message, cause);
    }
}
