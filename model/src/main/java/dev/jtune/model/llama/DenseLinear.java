package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;

/** A linear projection with a full weight matrix [out, in], in the model's compute dtype. */
public final class DenseLinear implements Linear {
    private final NDArray weight;

    /** Takes ownership of {@code weight} [out, in]. */
    public DenseLinear(NDArray weight) {
        if (weight.getShape().dimension() != 2) {
            throw new IllegalArgumentException("linear weight must be 2-d, got " + weight.getShape());
        }
        this.weight = weight;
    }

    /** The weight [out, in]. */
    public NDArray weight() {
        return weight;
    }

    @Override
    public NDArray forward(NDArray x) {
        return ai.djl.nn.core.Linear.linear(x, weight).singletonOrThrow();
    }

    /** {@inheritDoc} */
    @Override
    public void prepareBackward() {
        // A dense weight lives as long as the projection: nothing to restore.
    }

    @Override
    public long inFeatures() {
        return weight.getShape().get(1);
    }

    @Override
    public long outFeatures() {
        return weight.getShape().get(0);
    }

    @Override
    public void close() {
        weight.close();
    }
}
