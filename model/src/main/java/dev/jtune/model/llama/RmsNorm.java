package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;

/**
 * An RMSNorm with its family's convention: Llama's (normalise in fp32, cast, then scale by the weight) or Gemma's
 * (scale by {@code 1 + weight} in fp32, then cast).
 *
 * @param weight the stored weight [features]
 * @param gemma whether the weight is an offset from one (Gemma 2/3)
 * @param castTo the compute dtype an fp32 (master) weight is cast to at each use, as FSDP's mixed precision casts its
 *     parameters; null when the weight is in the compute dtype
 */
public record RmsNorm(NDArray weight, double eps, boolean gemma, Dtype castTo) implements AutoCloseable {
    /** A norm whose weight is in the compute dtype. */
    public RmsNorm(NDArray weight, double eps, boolean gemma) {
        this(weight, eps, gemma, null);
    }

    /** Normalises the last dimension of x; the result has x's dtype and joins x's manager. */
    public NDArray forward(NDArray x) {
        Kernels k = Kernels.get();
        NDArray w = castTo == null ? weight : k.cast(weight, castTo);
        NDArray y = gemma ? k.rmsNormGemma(x, w, eps) : k.rmsNorm(x, w, eps);
        if (w != weight) {
            w.close();
        }
        return y;
    }

    @Override
    public void close() {
        weight.close();
    }
}
