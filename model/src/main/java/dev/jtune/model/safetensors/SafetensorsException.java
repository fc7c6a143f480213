package dev.jtune.model.safetensors;

/**
 * A safetensors file or checkpoint is malformed, lacks a requested tensor, or could not be read or written.
 * The message names the file (or directory) and the problem.
 */
public final class SafetensorsException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public SafetensorsException(String message) {
        super(message);
    }

    public SafetensorsException(String message, Throwable cause) {
        super(message, cause);
    }
}
