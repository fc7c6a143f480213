package dev.jtune.quant;

import ai.djl.ndarray.NDArray;
import dev.jtune.model.engine.KernelLibrary;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.FakeQuant;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.LlamaModel;
import java.util.Map;

/**
 * Quantization-aware training as Axolotl runs it ({@code qat:}, {@code src/axolotl/utils/quantization.py}
 * {@code prepare_model_for_qat} at 067b021): torchao's {@code quantize_} swaps every {@code nn.Linear} of the model —
 * each decoder projection and {@code lm_head}, a tied head included (it keeps sharing the embedding's weight) — for a
 * {@code FakeQuantizedLinear}; the embedding lookup itself stays exact unless {@code quantize_embedding}. One
 * instance is shared by every projection, so switching it ({@link #setEnabled}) is Axolotl's {@code QATCallback}
 * toggling every fake quantizer's {@code enabled}. The numerics are {@code qat.torchscript.py}'s.
 */
public final class Qat implements FakeQuant {
    private static final KernelLibrary LIBRARY = new KernelLibrary(Qat.class, "QatOps", "qat.torchscript.py");

    private final QatScheme scheme;
    private volatile boolean enabled = true;

    public Qat(QatScheme scheme) {
        this.scheme = scheme;
    }

    public QatScheme scheme() {
        return scheme;
    }

    /** Whether fake quantization is applied (torchao's fake quantizers start enabled). */
    public boolean enabled() {
        return enabled;
    }

    public void setEnabled(boolean enabled) {
        this.enabled = enabled;
    }

    @Override
    public NDArray activation(NDArray x) {
        if (!enabled || scheme.activation() == QatScheme.Activation.NONE) {
            return x;
        }
        if (scheme.activation() == QatScheme.Activation.NVFP4) {
            throw new IllegalStateException("NVFP4 quantizes inside its product: use linear(x, w)");
        }
        return scheme.activation() == QatScheme.Activation.MXFP4 ? mxFp4(x) : int8PerToken(x);
    }

    /**
     * torchao's NVFP4FakeQuantizedLinear ({@code use_per_tensor_scale=True} for input and weight) of {@code x} [..., in]
     * and {@code w} [out, in]: the block-scaled fp4 GEMM forward, the dequantized operands' products backward.
     */
    static NDArray nvFp4Linear(NDArray x, NDArray w) {
        return LIBRARY.ops().call("nvfp4_linear", x, w);
    }

    @Override
    public NDArray linear(NDArray x, NDArray w) {
        if (enabled && scheme.weight() == QatScheme.Weight.NVFP4) {
            return nvFp4Linear(x, w);
        }
        return FakeQuant.super.linear(x, w);
    }

    /** torchao's MXFP4 fake quantization (e2m1 elements, E8M0 scale per 32 along the last dimension), identity backward. */
    static NDArray mxFp4(NDArray x) {
        return LIBRARY.ops().call("mx_fake_quant", x, (long) QatScheme.MX_BLOCK);
    }

    /** torchao's int8 per-token asymmetric fake quantization of {@code x} (any shape, fp32/bf16/fp16). */
    static NDArray int8PerToken(NDArray x) {
        return LIBRARY.ops().call("int8_per_token", x);
    }

    /** torchao's int4 per-group fake quantization of the weight {@code w} [out, in] (bf16-activation kernel's). */
    static NDArray int4Weight(NDArray w, int groupSize) {
        return LIBRARY.ops().call("int4_weight", w, (long) groupSize);
    }

    @Override
    public NDArray weight(NDArray w) {
        if (!enabled) {
            return w;
        }
        if (scheme.weight() == QatScheme.Weight.NVFP4) {
            throw new IllegalStateException("NVFP4 quantizes inside its product: use linear(x, w)");
        }
        return scheme.weight() == QatScheme.Weight.MXFP4 ? mxFp4(w) : int4Weight(w, scheme.groupSize());
    }

    /**
     * Attaches {@code qat} to every projection of {@code model} (torchao's prepare step).
     *
     * @return the number of projections fake-quantized
     * @throws IllegalArgumentException naming a projection that is not dense, or whose input features the group size
     *     does not divide (torchao's {@code view(out, -1, group_size)} fails there too)
     */
    public static int attach(LlamaModel model, Qat qat) {
        Map<String, Linear> linears = new java.util.LinkedHashMap<>(model.linears());
        linears.putIfAbsent("lm_head", model.lmHead()); // a tied head is a Linear too (over the embedding's weight)
        for (var e : linears.entrySet()) {
            if (!(e.getValue() instanceof DenseLinear)) {
                throw new IllegalArgumentException("qat: " + e.getKey() + " is a " + e.getValue().getClass().getSimpleName()
                        + ", not a dense projection; quantization-aware training fake-quantizes trainable dense weights");
            }
            long in = e.getValue().inFeatures();
            if (in % qat.scheme.groupSize() != 0) {
                throw new IllegalArgumentException("qat: group_size " + qat.scheme.groupSize() + " does not divide the "
                        + in + " input features of " + e.getKey());
            }
        }
        linears.values().forEach(l -> ((DenseLinear) l).fakeQuantize(qat));
        return linears.size();
    }

    /** Removes fake quantization from every projection of {@code model} (torchao's convert step: plain linears). */
    public static void detach(LlamaModel model) {
        for (Linear l : model.linears().values()) {
            if (l instanceof DenseLinear d) {
                d.fakeQuantize(null);
            }
        }
    }
}
