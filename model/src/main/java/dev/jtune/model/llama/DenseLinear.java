package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;

/**
 * A linear projection with a full weight matrix [out, in], in the model's compute dtype — or an fp32 weight (a
 * trainer's master copy) cast to the compute dtype at each use, as FSDP's mixed precision casts its parameters
 * before forward: the gradient then flows through the cast back to the fp32 weight. Quantization-aware training
 * attaches a {@link FakeQuant} ({@link #fakeQuantize}), applied to the input and to the (cast) weight at each forward,
 * as torchao's {@code quantize_(model, QATConfig(...))} swaps each {@code nn.Linear} for a {@code FakeQuantizedLinear}
 * that shares its weight.
 */
public final class DenseLinear implements Linear {
    private final NDArray weight;
    private final Dtype castTo; // null: the weight is in the compute dtype
    private volatile FakeQuant fakeQuant; // null: plain projection

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

    /** Fake-quantizes this projection's input and weight from now on (null: plain again, torchao's convert). */
    public void fakeQuantize(FakeQuant quant) {
        this.fakeQuant = quant;
    }

    /** The fake quantization applied at each forward, or null. */
    public FakeQuant fakeQuant() {
        return fakeQuant;
    }

    @Override
    public NDArray forward(NDArray x) {
        FakeQuant q = fakeQuant;
        if (castTo == null && q == null) {
            return ai.djl.nn.core.Linear.linear(x, weight).singletonOrThrow();
        }
        NDArray w = castTo == null ? weight : Kernels.get().cast(weight, castTo);
        // FakeQuantizedLinear.forward over the weight in the compute dtype (FSDP's bf16 copy under mixed precision).
        NDArray y = q != null ? q.linear(x, w) : ai.djl.nn.core.Linear.linear(x, w).singletonOrThrow();
        // Autograd keeps what it needs; close only what this call made.
        if (w != weight) {
            w.close();
        }
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
