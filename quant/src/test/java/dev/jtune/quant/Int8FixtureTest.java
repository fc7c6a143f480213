package dev.jtune.quant;

import static dev.jtune.quant.Nf4QuantizerTest.assertBits;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
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
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * LLM.int8() against {@code int8_fixture.json}, written by {@code tools/reference/int8_reference.py} (a torch
 * transcription of bitsandbytes' MatMul8bitLt; torch 2.13): the Java quantizer's CB/SCB bit for bit, and the forward
 * of the Java reference ({@link Int8Reference}) and of the libtorch kernel ({@link Int8Linear}, through
 * {@code torch._int_mm} and through float64) bit for bit, with and without outlier columns; the input gradient's
 * dequantized weight bit for bit and the gradient to the rounding of a bf16/fp16 product.
 */
class Int8FixtureTest {
    record Case(String name, Dtype dtype, int out, int in, int rows, float[] w, byte[] cb, float[] scb, float[] x,
            float[] y, List<Integer> outlierCols, float[] upstream, float[] wdq, float[] gradX) {}

    private static float[] floats(String hex) {
        ByteBuffer b = ByteBuffer.wrap(HexFormat.of().parseHex(hex)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    static List<Case> cases() throws Exception {
        JsonNode root;
        try (InputStream in = Int8FixtureTest.class.getResourceAsStream("int8_fixture.json")) {
            root = new ObjectMapper().readTree(in);
        }
        assertEquals(6.0, root.get("threshold").doubleValue());
        List<Case> cases = new ArrayList<>();
        for (JsonNode c : root.get("cases")) {
            List<Integer> cols = new ArrayList<>();
            c.get("outlier_cols").forEach(n -> cols.add(n.intValue()));
            cases.add(new Case(c.get("name").textValue(), Dtype.parse(c.get("dtype").textValue()),
                    c.get("out").intValue(), c.get("in").intValue(), c.get("rows").intValue(),
                    floats(c.get("w").textValue()), HexFormat.of().parseHex(c.get("cb").textValue()),
                    floats(c.get("scb").textValue()), floats(c.get("x").textValue()), floats(c.get("y").textValue()),
                    cols, floats(c.get("upstream").textValue()), floats(c.get("wdq").textValue()),
                    floats(c.get("grad_x").textValue())));
        }
        return cases;
    }

    private static Int8Tensor quantize(Case c) {
        return Int8Quantizer.quantize(c.w(), new long[] {c.out(), c.in()});
    }

    @Test
    void fixtureCoversOutliersAndLongReductions() throws Exception {
        List<Case> cases = cases();
        assertTrue(cases.stream().anyMatch(c -> !c.outlierCols().isEmpty()), "a case with outlier columns");
        assertTrue(cases.stream().anyMatch(c -> c.outlierCols().isEmpty()), "a case without");
        // The long case's int32 sums pass 2^24: fp32 accumulation would not be exact there.
        Case k = cases.stream().filter(c -> c.name().endsWith("k2048")).findFirst().orElseThrow();
        Int8Tensor q = quantize(k);
        Int8Reference.Rows a = Int8Reference.quantizeRows(k.x(), k.rows(), k.in(), 6.0);
        long c = 0;
        for (int j = 0; j < k.in(); j++) {
            c += a.codes()[j] * q.codes()[j];
        }
        assertTrue(Math.abs(c) > (1 << 24), "C[0,0] = " + c);
    }

    @Test
    void quantizedWeightEqualsBitsandbytes() throws Exception {
        for (Case c : cases()) {
            Int8Tensor q = quantize(c);
            assertArrayEquals(c.cb(), q.codes(), c.name() + ": CB");
            assertBits(c.name() + ": SCB", c.scb(), q.rowAbsmax());
            assertBits(c.name() + ": backward's dequantized weight", c.wdq(), Int8Quantizer.dequantize(q, c.dtype()));
        }
    }

    @Test
    void javaReferenceForwardEqualsTheTorchTranscription() throws Exception {
        for (Case c : cases()) {
            Int8Reference.Rows rows = Int8Reference.quantizeRows(c.x(), c.rows(), c.in(), 6.0);
            for (int j = 0; j < c.in(); j++) {
                assertEquals(c.outlierCols().contains(j), rows.outlierColumns()[j], c.name() + ": outlier column " + j);
            }
            assertBits(c.name() + ": forward", c.y(), Int8Reference.forward(c.x(), c.rows(), quantize(c), 6.0, c.dtype()));
        }
    }

    private static NDArray tensor(NDManager m, float[] v, Dtype dtype, long... shape) {
        NDArray fp32 = m.create(v, new Shape(shape));
        return dtype == Dtype.FP32 ? fp32 : Kernels.get().cast(fp32, dtype);
    }

    private static float[] fp32(NDArray a) {
        try (NDArray f = Kernels.get().cast(a, Dtype.FP32)) {
            return f.toFloatArray();
        }
    }

    @Test
    void kernelForwardEqualsTheTorchTranscriptionThroughIntMmAndFloat64() throws Exception {
        Int8Kernels k = Int8Kernels.get();
        try (NDManager m = Torch.newManager()) {
            for (Case c : cases()) {
                try (Int8Linear lin = new Int8Linear(quantize(c), m, null, "p", 6.0); NDManager step = m.newSubManager()) {
                    NDArray x = tensor(step, c.x(), c.dtype(), c.rows(), c.in());
                    assertBits(c.name() + ": float64 products", c.y(),
                            fp32(k.linear(x, weights(lin), false)));
                    if (k.intMm()) {
                        assertBits(c.name() + ": torch._int_mm products", c.y(), fp32(k.linear(x, weights(lin), true)));
                    }
                    // Through the public forward, with a leading batch dimension: same values.
                    NDArray y3 = lin.forward(x.reshape(1, c.rows(), c.in()));
                    assertEquals(new Shape(1, c.rows(), c.out()), y3.getShape());
                    assertEquals(c.dtype(), Kernels.get().dtypeOf(y3));
                    assertBits(c.name() + ": forward", c.y(), fp32(y3));
                }
            }
        }
    }

    private static Int8Linear.Weights weights(Int8Linear lin) {
        try {
            var f = Int8Linear.class.getDeclaredField("weights");
            f.setAccessible(true);
            return (Int8Linear.Weights) f.get(lin);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void inputGradientIsGradTimesTheDequantizedWeightAndTheValueIsUnchanged() throws Exception {
        try (NDManager m = Torch.newManager()) {
            for (Case c : cases()) {
                Nf4Linear.SharedBuffers shared = new Nf4Linear.SharedBuffers();
                try (Int8Linear lin = new Int8Linear(quantize(c), m, shared, "model.layers.0.mlp.up_proj", 6.0);
                        NDManager step = m.newSubManager()) {
                    try (NDArray wdq = lin.dequantize(c.dtype())) {
                        assertBits(c.name() + ": dequantized weight", c.wdq(), fp32(wdq));
                    }
                    NDArray x = tensor(step, c.x(), c.dtype(), c.rows(), c.in());
                    x.setRequiresGradient(true);
                    NDArray g = tensor(step, c.upstream(), c.dtype(), c.rows(), c.out());
                    float[] y;
                    float[] dx;
                    // jtune's autograd, not DJL's GradientCollector: its backward makes a ones tensor like the loss,
                    // which DJL cannot do for bf16.
                    NDArray yk = Autograd.withGrad(() -> lin.forward(x));
                    y = fp32(yk);
                    Autograd.backward(yk, g);
                    try (NDArray grad = Autograd.gradient(x)) {
                        dx = fp32(grad);
                    }
                    assertBits(c.name() + ": forward with autograd", c.y(), y);
                    float ulp = c.dtype() == Dtype.BF16 ? 0x1p-8f : c.dtype() == Dtype.FP16 ? 0x1p-11f : 0x1p-20f;
                    float[] ref = Int8Reference.inputGradient(c.upstream(), c.rows(), quantize(c), c.dtype());
                    for (int i = 0; i < dx.length; i++) {
                        float tol = 2 * ulp * Math.max(Math.abs(c.gradX()[i]), 1e-3f);
                        assertEquals(c.gradX()[i], dx[i], tol, c.name() + ": dx[" + i + "] vs torch");
                        assertEquals(ref[i], dx[i], tol, c.name() + ": dx[" + i + "] vs Java");
                    }
                }
            }
        }
    }
}
