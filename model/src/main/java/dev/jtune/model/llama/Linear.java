package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;

/**
 * A bias-free linear projection {@code y = x Wᵀ}, the unit that adapters and quantization replace: a
 * dense weight here, an NF4 base in {@code quant}, a base plus LoRA in {@code lora}.
 */
public interface Linear extends AutoCloseable {
    /** Projects the last dimension of {@code x} [..., in] to [..., out]; results join x's manager. */
    NDArray forward(NDArray x);

    /** Input features. */
    long inFeatures();

    /** Output features. */
    long outFeatures();

    /** Frees native memory this projection owns. */
    @Override
    void close();
}
