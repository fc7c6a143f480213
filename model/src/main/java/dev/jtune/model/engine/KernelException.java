package dev.jtune.model.engine;

/** A TorchScript kernel rejected its inputs (wrong shape, dtype or device); the message is libtorch's. */
public final class KernelException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public KernelException(String message, Throwable cause) {
        super(message, cause);
    }
}
