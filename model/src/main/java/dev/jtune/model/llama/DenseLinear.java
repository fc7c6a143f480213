package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;

/**
 * A linear projection with a full weight matrix [out, in], in the model's compute dtype — or an fp32 weight (a
 * trainer's master copy) cast to the compute dtype at each use, as FSDP's mixed precision casts its parameters
 * before forward: the gradient then flows through the cast back to the fp32 weight.
 */
public final class DenseLinear implements Linear {
    private final NDArray weight;
    private final Dtype castTo; // null: the weight is in the compute dtype

    /** Takes ownership of {@code weight} [out, in], in the compute dtype. */
    public DenseLinear(NDArray weight) {
        this(weight, null);
    }

    /**
     * Takes ownership of {@code weight} [out, in].
     *
     * @param castTo the compute dtype the weight is cast to at each forward, or null when it already is
     */
    public DenseLinear(NDArray weight, Dtype castTo) {
        if (weight.getShape().dimension() != 2) {
            throw new IllegalArgumentException("linear weight must be 2-d, got " + weight.getShape());
        }
        this.weight = weight;
        this.castTo = castTo;
    }

    /** The weight [out, in]. */
    public NDArray weight() {
        return weight;
    }

    @Override
    public NDArray forward(NDArray x) {
        if (castTo == null) {
            return ai.djl.nn.core.Linear.linear(x, weight).singletonOrThrow();
        }
        NDArray w = Kernels.get().cast(weight, castTo);
        NDArray y = ai.djl.nn.core.Linear.linear(x, w).singletonOrThrow();
        w.close(); // autograd keeps what it needs
        return y;
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
