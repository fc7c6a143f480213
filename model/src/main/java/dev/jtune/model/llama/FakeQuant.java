package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;

/**
 * Quantization-aware training's fake quantization of a dense projection: its input and its weight are quantized
 * and dequantized in the forward pass (values snapped to what a quantized kernel would compute with), while the
 * gradients pass straight through to the full-precision tensors — torchao's {@code FakeQuantizedLinear}, whose
 * {@code forward} is {@code F.linear(activation_fq(x), weight_fq(weight))}. Implementations: {@code quant.Qat}.
 */
public interface FakeQuant {
    /** The fake-quantized input [..., in] (x itself when this scheme leaves activations alone or is off). */
    NDArray activation(NDArray x);

    /** The fake-quantized weight [out, in] in the compute dtype (w itself when off). */
    NDArray weight(NDArray w);

    /**
     * The projection {@code x wᵀ} with fake quantization, {@code w} [out, in] in the compute dtype: by default the
     * plain product of {@link #activation} and {@link #weight} (FakeQuantizedLinear's {@code F.linear}); a scheme
     * whose forward is not that product (NVFP4's scaled fp4 GEMM) overrides it.
     */
    default NDArray linear(NDArray x, NDArray w) {
        NDArray input = activation(x);
        NDArray used = weight(w);
        NDArray y = ai.djl.nn.core.Linear.linear(input, used).singletonOrThrow();
        // Autograd keeps what it needs; close only what this call made.
        if (used != w) {
            used.close();
        }
        if (input != x) {
            input.close();
        }
        return y;
    }
}
