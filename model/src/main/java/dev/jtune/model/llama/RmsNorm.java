package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import dev.jtune.model.engine.Kernels;

/**
 * An RMSNorm with its family's convention: Llama's (normalise in fp32, cast, then scale by the weight) or Gemma's
 * (scale by {@code 1 + weight} in fp32, then cast).
 *
 * @param weight the stored weight [features]
 * @param gemma whether the weight is an offset from one (Gemma 2/3)
 */
public record RmsNorm(NDArray weight, double eps, boolean gemma) implements AutoCloseable {
    /** Normalises the last dimension of x; the result has x's dtype and joins x's manager. */
    public NDArray forward(NDArray x) {
        Kernels k = Kernels.get();
        return gemma ? k.rmsNormGemma(x, weight, eps) : k.rmsNorm(x, weight, eps);
    }

    @Override
    public void close() {
        weight.close();
    }
}
