package dev.jtune.quant;

/** A checkpoint's bitsandbytes 4-bit tensors are missing, malformed or of a kind jtune does not read. */
public final class Bnb4bitFormatException extends RuntimeException {
    public Bnb4bitFormatException(String message) {
        super(message);
    }
}
