package dev.jtune.trainer.dist;

/** A distributed run failed: a peer did not arrive, a connection broke, the world is not what it should be. */
public class DistException extends RuntimeException {
    public DistException(String message) {
        super(message);
    }

    public DistException(String message, Throwable cause) {
        super(message, cause);
    }
}
