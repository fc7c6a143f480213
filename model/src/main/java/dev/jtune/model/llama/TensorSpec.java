package dev.jtune.model.llama;

/**
 * One tensor of a checkpoint as its config implies it: transformers' name, its role, its shape.
 *
 * @param role what the tensor is, which decides how a fresh model initialises it and what adapters may wrap
 */
public record TensorSpec(String name, Role role, long... shape) {
    /** What a tensor is. */
    public enum Role {
        /** The token embedding [vocab, hidden]. */
        EMBEDDING,
        /** A projection's weight [out, in] (the head included). */
        LINEAR,
        /** A projection's bias [out]. */
        BIAS,
        /** An RMSNorm's weight. */
        NORM
    }

    public TensorSpec {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long numel() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }
}
