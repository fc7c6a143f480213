package dev.jtune.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.testkit.TinyLlama;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Loading quantizes each frozen linear straight from the checkpoint's values ({@code createFromValues}): the same NF4
 * codes, bit for bit, as quantizing the dense weight that the model would otherwise have built in the compute dtype.
 */
class Nf4DirectLoadTest {
    @ParameterizedTest
    @EnumSource(Dtype.class)
    void directQuantizationEqualsQuantizingTheDenseWeight(Dtype dtype) {
        LlamaConfig config = TinyLlama.preset();
        LlamaModel.LinearFactory nf4 = Nf4.linearFactory();
        // The same factory without its direct form: every weight arrives dense, in the compute dtype.
        LlamaModel.LinearFactory denseFirst = new LlamaModel.LinearFactory() {
            final LlamaModel.LinearFactory inner = Nf4.linearFactory();

            @Override
            public Linear create(String name, NDArray weight) {
                return inner.create(name, weight);
            }
        };
        try (NDManager m = Torch.newManager();
                LlamaModel direct = LlamaModel.load(config, TinyLlama.weights(config, 3), dtype, m, nf4);
                LlamaModel viaDense = LlamaModel.load(config, TinyLlama.weights(config, 3), dtype, m, denseFirst)) {
            var a = direct.linears();
            var b = viaDense.linears();
            for (String name : a.keySet()) {
                if (name.equals("lm_head")) {
                    continue;
                }
                Nf4Tensor qa = assertInstanceOf(Nf4Linear.class, a.get(name)).quantized();
                Nf4Tensor qb = assertInstanceOf(Nf4Linear.class, b.get(name)).quantized();
                assertArrayEquals(qa.packed(), qb.packed(), name + ": packed codes");
                assertArrayEquals(Nf4Quantizer.absmax(qa), Nf4Quantizer.absmax(qb), name + ": block scales");
            }
            NDArray ids = m.create(new long[] {1, 5, 9, 2, 7}, new ai.djl.ndarray.types.Shape(1, 5));
            float[] la = Kernels.get().cast(direct.forward(ids, LlamaModel.defaultPositions(ids), null), Dtype.FP32)
                    .toFloatArray();
            float[] lb = Kernels.get().cast(viaDense.forward(ids, LlamaModel.defaultPositions(ids), null), Dtype.FP32)
                    .toFloatArray();
            assertArrayEquals(lb, la, "identical logits");
        }
    }
}
