package dev.jtune.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.LlamaModel.LinearFactory;
import java.util.function.Predicate;

/**
 * The {@code load_in_8bit} entry point: a {@link LinearFactory} that quantizes the frozen linears to LLM.int8()
 * ({@link Int8Linear}) as transformers' {@code BitsAndBytesConfig(load_in_8bit=True)} does with its defaults
 * ({@code llm_int8_threshold=6.0}, {@code llm_int8_has_fp16_weight=False}, {@code llm_int8_skip_modules=None}: every
 * linear but the output embedding {@code lm_head}, {@link Nf4#isBaseLinear}).
 */
public final class Int8 {
    private Int8() {}

    /** {@link #linearFactory(Predicate, double)} with {@link Nf4#isBaseLinear} and the threshold 6.0. */
    public static LinearFactory linearFactory() {
        return linearFactory(Nf4::isBaseLinear, Int8Linear.DEFAULT_THRESHOLD);
    }

    /**
     * Quantizes the linears {@code quantize} accepts straight from the checkpoint's values (rounded to the compute
     * dtype, as transformers passes them to bitsandbytes) and keeps the others dense; the dequantized weights
     * for backward share one buffer per projection role (one factory a model).
     */
    public static LinearFactory linearFactory(Predicate<String> quantize, double threshold) {
        return linearFactory(quantize, threshold, new Nf4Linear.SharedBuffers());
    }

    /** As {@link #linearFactory(Predicate, double)}; {@code shared} null: a dequantized weight per forward (tests). */
    static LinearFactory linearFactory(Predicate<String> quantize, double threshold, Nf4Linear.SharedBuffers shared) {
        return new LinearFactory() {
            @Override
            public Linear create(String name, NDArray weight) {
                if (!quantize.test(name)) {
                    return new DenseLinear(weight);
                }
                Int8Tensor q;
                NDManager parent = weight.getManager();
                try (weight) {
                    Dtype dtype = Kernels.get().dtypeOf(weight);
                    if (dtype == null) {
                        throw new IllegalArgumentException(name + ": weight is not fp32, fp16 or bf16");
                    }
                    q = quantize(name, Nf4.floats(weight, dtype), weight.getShape().getShape());
                }
                return new Int8Linear(q, parent, shared, name, threshold);
            }

            @Override
            public Linear createFromValues(String name, long out, long in, java.util.function.Supplier<float[]> values,
                    Dtype dtype, NDManager manager) {
                if (!quantize.test(name)) {
                    return null;
                }
                return new Int8Linear(quantize(name, values.get(), new long[] {out, in}), manager, shared, name,
                        threshold);
            }
        };
    }

    private static Int8Tensor quantize(String name, float[] values, long[] shape) {
        try {
            return Int8Quantizer.quantize(values, shape);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(name + ": " + e.getMessage(), e);
        }
    }
}
