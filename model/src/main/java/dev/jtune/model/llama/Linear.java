package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;

/**
 * A bias-free linear projection {@code y = x Wᵀ}, the unit that adapters and quantization replace: a
 * dense weight here, an NF4 base in {@code quant}, a base plus LoRA in {@code lora}.
 */
public interface Linear extends AutoCloseable {
    /** Projects the last dimension of {@code x} [..., in] to [..., out]; results join x's manager. */
    NDArray forward(NDArray x);

    /**
     * Restores what this projection's backward reads, if it gave it up after its forward. Called for a decoder
     * layer's projections just before that layer's backward runs: a frozen NF4 projection dequantizes into one
     * buffer that the same projection of every layer shares (so no layer's dense weight outlives its use), and
     * refills it here with its own weight. No default: a projection that wraps another must pass the call on.
     */
    void prepareBackward();

    /** Input features. */
    long inFeatures();

    /** Output features. */
    long outFeatures();

    /** Frees native memory this projection owns. */
    @Override
    void close();
}
