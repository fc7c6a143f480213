package dev.jtune.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.DenseLinear;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import org.junit.jupiter.api.Test;

/**
 * Axolotl's {@code qat: {activation_dtype: int8, weight_dtype: int4}} fake quantization against torchao's own code
 * (tools/reference/qat_expected.py: pytorch/ao v0.18.0's fake quantizers run in torch 2.13): a 16×64 linear on a
 * [2,5,64] input, forward output and the input's and weight's gradients, in fp32 and bf16, group sizes 32 and 16,
 * activation-only and weight-only too; and {@code mxfp4}/{@code mxfp4} (torchao's MXFakeQuantizedLinear: e2m1 elements
 * with an E8M0 scale per 32, forward and backward through the dequantized operands); and {@code nvfp4}/{@code nvfp4}
 * (torchao's NVFP4FakeQuantizedLinear with per-tensor scales: e2m1 elements with a float8 e4m3 scale per 16 under one
 * fp32 scale per tensor; forward the block-scaled fp4 GEMM, emulated as the fixture script says, then the per-tensor
 * scales in the output dtype and a bias; backward through the dequantized operands). The fixture has a zero input row
 * (scale at eps), a row without negative values, a constant weight group (scale eps/15), tied group maxima (amax shares
 * its gradient), for MX and NVFP4 every e2m1 rounding tie, a zero block and a negative zero, and for NVFP4 a block
 * whose e4m3 scale is clamped to e4m3's smallest normal and one at 448. Every value is matched bit for
 * bit: jtune's kernel runs the same aten ops on libtorch 2.7.1 (e2m1 rounding as thresholds, checked equal to
 * torchao's bit manipulation).
 */
class QatFixtureTest {
    @Test
    void forwardAndGradientsMatchTorchaoBitForBit() throws IOException {
        JsonNode fx;
        try (InputStream in = getClass().getResourceAsStream("/fixtures/qat_expected.json")) {
            assertNotNull(in, "fixture missing");
            fx = new ObjectMapper().readTree(in);
        }
        int checked = 0;
        for (JsonNode c : fx.get("cases")) {
            String name = c.get("name").asText() + " " + c.get("dtype").asText();
            Dtype dtype = c.get("dtype").asText().equals("bfloat16") ? Dtype.BF16 : Dtype.FP32;
            boolean mx = "mxfp4".equals(c.get("weight").asText());
            boolean nv = "nvfp4".equals(c.get("weight").asText());
            boolean act = !c.get("activation").isNull();
            boolean weight = !c.get("weight").isNull();
            int group = c.get("group_size").asInt();
            try (NDManager m = Torch.newManager()) {
                NDArray x = in(m, f32(c.get("x")), shape(c.get("x_shape")), dtype);
                NDArray w = in(m, f32(c.get("w")), shape(c.get("w_shape")), dtype);
                x.setRequiresGradient(true);
                w.setRequiresGradient(true);
                // torchao adds the bias after the per-tensor scaling, in the output dtype, as Attention adds it; its
                // autograd function returns no gradient for it (the fixture has bias_grad null).
                NDArray bias = c.has("bias") ? in(m, f32(c.get("bias")), new Shape(w.getShape().get(0)), dtype) : null;
                NDArray y = Autograd.withGrad(() -> {
                    if (nv) {
                        NDArray out = Qat.nvFp4Linear(x, w);
                        return bias == null ? out : out.add(bias);
                    }
                    NDArray xq = mx ? Qat.mxFp4(x) : act ? Qat.int8PerToken(x) : x;
                    NDArray wq = mx ? Qat.mxFp4(w) : weight ? Qat.int4Weight(w, group) : w;
                    return ai.djl.nn.core.Linear.linear(xq, wq).singletonOrThrow();
                });
                NDArray g = in(m, f32(c.get("grad_out")), y.getShape(), dtype);
                assertBits(name + ": output", f32(c.get("y")), fp32(y));
                Autograd.backward(y, g);
                assertBits(name + ": input gradient", f32(c.get("grad_x")), fp32(Autograd.gradient(x)));
                assertBits(name + ": weight gradient", f32(c.get("grad_w")), fp32(Autograd.gradient(w)));
                checked++;
            }
        }
        assertEquals(14, checked);
    }

    /** The scheme through a DenseLinear, as the trainer attaches it: the same bits as the kernels called directly. */
    @Test
    void denseLinearAppliesTheSchemeAndStopsWhenDisabled() throws IOException {
        JsonNode fx;
        try (InputStream in = getClass().getResourceAsStream("/fixtures/qat_expected.json")) {
            fx = new ObjectMapper().readTree(in);
        }
        JsonNode c = fx.get("cases").get(0); // int8-int4-g32 fp32
        assertEquals("int8-int4-g32", c.get("name").asText());
        try (NDManager m = Torch.newManager()) {
            NDArray x = in(m, f32(c.get("x")), shape(c.get("x_shape")), Dtype.FP32);
            NDArray w = in(m, f32(c.get("w")), shape(c.get("w_shape")), Dtype.FP32);
            DenseLinear linear = new DenseLinear(w);
            float[] plain = fp32(linear.forward(x));
            Qat qat = new Qat(new QatScheme(QatScheme.Activation.INT8, QatScheme.Weight.INT4, 32));
            linear.fakeQuantize(qat);
            assertBits("fake-quantized", f32(c.get("y")), fp32(linear.forward(x)));
            qat.setEnabled(false);
            assertBits("disabled: the plain product", plain, fp32(linear.forward(x)));
            int differ = 0;
            float[] expected = f32(c.get("y"));
            for (int i = 0; i < plain.length; i++) {
                differ += plain[i] != expected[i] ? 1 : 0;
            }
            assertTrue(differ > plain.length / 2, "fake quantization changes the output: " + differ);
        }
    }

    private static NDArray in(NDManager m, float[] v, Shape shape, Dtype dtype) {
        NDArray a = m.create(v, shape);
        return dtype == Dtype.FP32 ? a : Kernels.get().cast(a, dtype);
    }

    private static float[] fp32(NDArray a) {
        try (NDArray f = Kernels.get().cast(a, Dtype.FP32)) {
            return f.toFloatArray();
        }
    }

    private static Shape shape(JsonNode n) {
        long[] s = new long[n.size()];
        for (int i = 0; i < s.length; i++) {
            s[i] = n.get(i).asLong();
        }
        return new Shape(s);
    }

    static float[] f32(JsonNode n) {
        ByteBuffer b = ByteBuffer.wrap(Base64.getDecoder().decode(n.asText())).order(ByteOrder.LITTLE_ENDIAN);
        float[] v = new float[b.remaining() / 4];
        b.asFloatBuffer().get(v);
        return v;
    }

    private static void assertBits(String what, float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, what + ": length");
        int differ = 0;
        int first = -1;
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToIntBits(expected[i]) != Float.floatToIntBits(actual[i])) {
                differ++;
                if (first < 0) {
                    first = i;
                }
            }
        }
        assertEquals(0, differ, what + ": " + differ + " of " + expected.length + " values differ, first at " + first
                + (first >= 0 ? " (torchao " + expected[first] + ", jtune " + actual[first] + ")" : ""));
    }
}
