package dev.jtune.trainer.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * bitsandbytes' 8-bit AdamW against a port of its CUDA kernels written elsewhere
 * (tools/reference/bnb_adamw8bit_expected.py, bitsandbytes 95f9af30, element by element in Python): the dynamic maps,
 * the blockwise quantization (ties included) and four AdamW steps of an 8-bit tensor with a partial tail block and
 * weight decay, an 8-bit tensor of whole blocks with non-finite gradients, and a 32-bit tensor under min_8bit_size.
 * Both jtune's TorchScript kernels and the plain-Java {@link BnbReference} must reproduce every bit: codes, absmax,
 * moments and parameters.
 */
class BnbAdamWFixtureTest {
    private static JsonNode fx;

    @BeforeAll
    static void read() throws IOException {
        try (InputStream in = BnbAdamWFixtureTest.class.getResourceAsStream("/fixtures/bnb_adamw8bit_expected.json")) {
            fx = new ObjectMapper().readTree(in);
        }
    }

    static float[] f32(JsonNode n) {
        ByteBuffer b = ByteBuffer.wrap(Base64.getDecoder().decode(n.asText())).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    static int[] u8(JsonNode n) {
        byte[] b = Base64.getDecoder().decode(n.asText());
        int[] out = new int[b.length];
        for (int i = 0; i < b.length; i++) out[i] = b[i] & 0xff;
        return out;
    }

    private static void assertBits(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToIntBits(expected[i]) != Float.floatToIntBits(actual[i])) {
                throw new AssertionError(what + "[" + i + "]: expected " + expected[i] + ", got " + actual[i]);
            }
        }
    }

    @Test
    void dynamicMapsAreBitsandbytes() {
        try (NDManager m = Torch.newManager()) {
            float[] signed = Bnb.dynamicMap(true, m);
            float[] unsigned = Bnb.dynamicMap(false, m);
            assertBits(f32(fx.get("qmap_signed")), signed, "signed map");
            assertBits(f32(fx.get("qmap_unsigned")), unsigned, "unsigned map");
            // What the update relies on: sorted, 1.0 on top, one zero; the unsigned map starts at 0.
            assertEquals(1.0f, signed[255]);
            assertEquals(0.0f, signed[127]);
            assertTrue(signed[128] > 0 && signed[126] < 0);
            assertEquals(0.0f, unsigned[0]);
        }
    }

    @Test
    void blockwiseQuantizationMatchesTiesIncluded() {
        try (NDManager m = Torch.newManager()) {
            for (boolean signed : new boolean[] {true, false}) {
                JsonNode q = fx.get("quantize").get(signed ? "signed" : "unsigned");
                float[] x = f32(q.get("x"));
                int[] codes = u8(q.get("codes"));
                float[] absmax = f32(q.get("absmax"));
                float[] map = Bnb.dynamicMap(signed, m);
                // Block 0 is 1.0 and the map's 255 midpoints: a tie keeps the search's last pivot, which is not
                // always the lower neighbour — the check that the rounding is the kernel's, not bucketize's.
                int upward = 0;
                for (int i = 1; i < 256; i++) {
                    if (codes[i] == i) upward++;
                }
                assertTrue(upward > 0 && upward < 255, "ties go both ways in quantize_2D, got " + upward + " up");
                NDArray am = m.zeros(new Shape(absmax.length));
                NDArray out = OptimKernels.get().quantizeBlockwise(m.create(x), m.create(map), signed, am);
                byte[] got = out.toByteArray();
                int[] gotCodes = new int[got.length];
                for (int i = 0; i < got.length; i++) gotCodes[i] = got[i] & 0xff;
                assertArrayEquals(codes, gotCodes, (signed ? "signed" : "unsigned") + " codes (TorchScript)");
                assertBits(absmax, am.toFloatArray(), "absmax");
                // The plain-Java transcription agrees.
                for (int i = 0; i < x.length; i++) {
                    float a = absmax[i / 256];
                    int c = BnbReference.quantize2d(signed, map, x[i] / a);
                    if (signed) c = BnbReference.signFix(c, map, x[i]);
                    assertEquals(codes[i], c, "reference code " + i);
                }
                // Dequantized, every value is within half a map step of x (relative to the block's absmax).
                float[] back = OptimKernels.get().dequantizeBlockwise(out, am, m.create(map)).toFloatArray();
                for (int i = 256; i < x.length; i++) {
                    float a = absmax[i / 256];
                    int c = codes[i];
                    float gap = Math.max(c > 0 ? map[c] - map[c - 1] : 0, c < 255 ? map[c + 1] - map[c] : 0);
                    assertTrue(Math.abs(back[i] - x[i]) <= gap * a, "dequantized " + i);
                }
            }
        }
    }

    @Test
    void fourStepsMatchTheKernelPort() {
        JsonNode betas = fx.get("betas");
        double beta1 = betas.get(0).asDouble();
        double beta2 = betas.get(1).asDouble();
        double eps = fx.get("eps").asDouble();
        JsonNode lrs = fx.get("lrs");
        JsonNode tensors = fx.get("tensors");
        try (NDManager m = Torch.newManager()) {
            Map<String, NDArray> params = new LinkedHashMap<>();
            Map<String, Double> wd = new LinkedHashMap<>();
            for (JsonNode t : tensors) {
                long[] shape = new long[t.get("shape").size()];
                for (int i = 0; i < shape.length; i++) shape[i] = t.get("shape").get(i).asLong();
                params.put(t.get("name").asText(), m.create(f32(t.get("init")), new Shape(shape)));
                wd.put(t.get("name").asText(), t.get("weight_decay").asDouble());
            }
            // One weight decay value (0.1) for the group that decays, 0 for the other, as transformers groups them.
            AdamW.Hyper hyper = new AdamW.Hyper(beta1, beta2, eps, 0.1, AdamW.Variant.BNB_8BIT);
            float[] code1 = Bnb.dynamicMap(true, m);
            float[] code2 = Bnb.dynamicMap(false, m);
            try (AdamW opt = new AdamW(params, hyper, name -> wd.get(name) > 0, m)) {
                Map<String, float[][]> ref = new LinkedHashMap<>();
                for (JsonNode t : tensors) {
                    String name = t.get("name").asText();
                    int n = (int) params.get(name).size();
                    assertEquals(t.get("eight_bit").asBoolean(), opt.eightBit(name), name + " 8-bit");
                    int blocks = (int) Bnb.blocks(n);
                    ref.put(name, new float[][] {f32(t.get("init")), new float[n], new float[n], new float[blocks],
                        new float[blocks]});
                }
                // What the state holds: fp32 moments for "small" (300), codes and block absmax for the others.
                assertEquals(8 * 300 + (2 * 4140 + 8 * 17) + (2 * 4096 + 8 * 16), opt.stateBytes());
                Map<String, int[][]> refCodes = new LinkedHashMap<>();
                ref.forEach((name, r) -> refCodes.put(name, new int[][] {new int[r[0].length], new int[r[0].length]}));
                for (int step = 1; step <= lrs.size(); step++) {
                    double lr = lrs.get(step - 1).asDouble();
                    Map<String, NDArray> grads = new LinkedHashMap<>();
                    for (JsonNode t : tensors) {
                        String name = t.get("name").asText();
                        float[] g = f32(t.get("grads").get(step - 1));
                        grads.put(name, m.create(g, params.get(name).getShape()));
                        float[][] r = ref.get(name);
                        BnbReference.Scalars s = BnbReference.Scalars.of(beta1, beta2, eps, lr, wd.get(name), step);
                        if (opt.eightBit(name)) {
                            int[][] c = refCodes.get(name);
                            BnbReference.update8bit(r[0], g, c[0], c[1], r[3], r[4], code1, code2, s);
                        } else {
                            BnbReference.update32bit(r[0], g, r[1], r[2], s);
                        }
                    }
                    opt.step(lr, grads);
                    grads.values().forEach(NDArray::close);
                    for (JsonNode t : tensors) {
                        String name = t.get("name").asText();
                        for (JsonNode after : t.get("after")) {
                            if (after.get("step").asInt() != step) continue;
                            String at = name + " after step " + step;
                            float[] param = f32(after.get("param"));
                            assertBits(param, ref.get(name)[0], at + ": reference param");
                            assertBits(param, params.get(name).toFloatArray(), at + ": param");
                            if (opt.eightBit(name)) {
                                AdamW.QuantizedState q = opt.quantizedState(name);
                                assertArrayEquals(u8(after.get("state1")), refCodes.get(name)[0], at + ": reference state1");
                                assertArrayEquals(u8(after.get("state1")), q.state1(), at + ": state1");
                                assertArrayEquals(u8(after.get("state2")), q.state2(), at + ": state2");
                                assertArrayEquals(u8(after.get("state2")), refCodes.get(name)[1], at + ": reference state2");
                                assertBits(f32(after.get("absmax1")), q.absmax1(), at + ": absmax1");
                                assertBits(f32(after.get("absmax2")), q.absmax2(), at + ": absmax2");
                            } else {
                                assertBits(f32(after.get("exp_avg")), opt.expAvg().get(name).toFloatArray(), at + ": exp_avg");
                                assertBits(f32(after.get("exp_avg_sq")), opt.expAvgSq().get(name).toFloatArray(),
                                        at + ": exp_avg_sq");
                                assertBits(f32(after.get("exp_avg")), ref.get(name)[1], at + ": reference exp_avg");
                            }
                        }
                    }
                }
                // The non-finite gradients (mat[5] = inf, mat[700] = NaN at step 3) left those elements' values
                // finite, and the blocks with no gradient at step 1 (big[0:512]) did not turn into NaN.
                for (float v : params.get("mat").toFloatArray()) assertTrue(Float.isFinite(v));
                for (float v : params.get("big").toFloatArray()) assertFalse(Float.isNaN(v));
            }
        }
    }

    /**
     * The same kernels over bf16 parameters and gradients (bnb_adamw8bit_bf16_expected.json, T = __nv_bfloat16):
     * fp32 / 8-bit state as for fp32 parameters, the parameter rounded to bf16 after the step and again after the
     * weight decay.
     */
    @Test
    void fourStepsOverBf16ParametersMatchTheKernelPort() throws IOException {
        lowPrecision("/fixtures/bnb_adamw8bit_bf16_expected.json", Dtype.BF16, "bfloat16");
    }

    /**
     * {@code float16: true} (bnb_adamw8bit_fp16_expected.json, T = half): the same two roundings, to fp16 (what
     * openllama-3b's {@code adamw_bnb_8bit} runs over its fp16-loaded weights).
     */
    @Test
    void fourStepsOverFp16ParametersMatchTheKernelPort() throws IOException {
        lowPrecision("/fixtures/bnb_adamw8bit_fp16_expected.json", Dtype.FP16, "float16");
    }

    private void lowPrecision(String resource, Dtype dtype, String label) throws IOException {
        JsonNode bf;
        try (InputStream in = getClass().getResourceAsStream(resource)) {
            bf = new ObjectMapper().readTree(in);
        }
        assertEquals(label, bf.get("param_dtype").asText());
        JsonNode lrs = bf.get("lrs");
        try (NDManager m = Torch.newManager()) {
            Map<String, NDArray> params = new LinkedHashMap<>();
            Map<String, Double> wd = new LinkedHashMap<>();
            for (JsonNode t : bf.get("tensors")) {
                long[] shape = new long[t.get("shape").size()];
                for (int i = 0; i < shape.length; i++) shape[i] = t.get("shape").get(i).asLong();
                params.put(t.get("name").asText(), as(m.create(f32(t.get("init")), new Shape(shape)), dtype, m));
                wd.put(t.get("name").asText(), t.get("weight_decay").asDouble());
            }
            AdamW.Hyper hyper = new AdamW.Hyper(bf.get("betas").get(0).asDouble(), bf.get("betas").get(1).asDouble(),
                    bf.get("eps").asDouble(), 0.1, AdamW.Variant.BNB_8BIT);
            try (AdamW opt = new AdamW(params, hyper, name -> wd.get(name) > 0, m)) {
                int checked = 0;
                for (int step = 1; step <= lrs.size(); step++) {
                    Map<String, NDArray> grads = new LinkedHashMap<>();
                    for (JsonNode t : bf.get("tensors")) {
                        String name = t.get("name").asText();
                        grads.put(name, as(m.create(f32(t.get("grads").get(step - 1)), params.get(name).getShape()),
                                dtype, m));
                    }
                    opt.step(lrs.get(step - 1).asDouble(), grads);
                    grads.values().forEach(NDArray::close);
                    for (JsonNode t : bf.get("tensors")) {
                        String name = t.get("name").asText();
                        for (JsonNode after : t.get("after")) {
                            if (after.get("step").asInt() != step) continue;
                            String at = label + " " + name + " after step " + step;
                            assertEquals(dtype, Kernels.get().dtypeOf(params.get(name)), at + ": dtype");
                            assertBits(f32(after.get("param")), Tensors.floats(params.get(name)), at + ": param");
                            if (opt.eightBit(name)) {
                                AdamW.QuantizedState q = opt.quantizedState(name);
                                assertArrayEquals(u8(after.get("state1")), q.state1(), at + ": state1");
                                assertArrayEquals(u8(after.get("state2")), q.state2(), at + ": state2");
                                assertBits(f32(after.get("absmax1")), q.absmax1(), at + ": absmax1");
                                assertBits(f32(after.get("absmax2")), q.absmax2(), at + ": absmax2");
                            } else {
                                assertEquals(Dtype.FP32, Kernels.get().dtypeOf(opt.expAvg().get(name)), at + ": state");
                                assertBits(f32(after.get("exp_avg")), opt.expAvg().get(name).toFloatArray(), at + ": exp_avg");
                                assertBits(f32(after.get("exp_avg_sq")), opt.expAvgSq().get(name).toFloatArray(),
                                        at + ": exp_avg_sq");
                            }
                            checked++;
                        }
                    }
                }
                assertEquals(6, checked);
            }
        }
    }

    private static NDArray as(NDArray x, Dtype dtype, NDManager m) {
        NDArray cast = Kernels.get().cast(x, dtype);
        cast.attach(m);
        x.close();
        return cast;
    }

    /** The kernel updates big tensors a chunk of blocks at a time: with chunks of 512 values, the same bits. */
    @Test
    void chunkedUpdateIsTheSame() {
        JsonNode t = fx.get("tensors").get(0); // "big": 4140 values, 8-bit, weight decay 0.1
        assertEquals("big", t.get("name").asText());
        double beta1 = fx.get("betas").get(0).asDouble();
        double beta2 = fx.get("betas").get(1).asDouble();
        double eps = fx.get("eps").asDouble();
        try (NDManager m = Torch.newManager()) {
            NDArray p = m.create(f32(t.get("init")));
            int n = (int) p.size();
            Shape blocks = new Shape(Bnb.blocks(n));
            NDArray s1 = m.zeros(p.getShape(), ai.djl.ndarray.types.DataType.UINT8);
            NDArray s2 = m.zeros(p.getShape(), ai.djl.ndarray.types.DataType.UINT8);
            NDArray a1 = m.zeros(blocks);
            NDArray a2 = m.zeros(blocks);
            NDArray code1 = m.create(Bnb.dynamicMap(true, m));
            NDArray code2 = m.create(Bnb.dynamicMap(false, m));
            JsonNode lrs = fx.get("lrs");
            for (int step = 1; step <= lrs.size(); step++) {
                Bnb.Scalars sc = Bnb.Scalars.of(beta1, beta2, eps, lrs.get(step - 1).asDouble(), 0.1, step);
                OptimKernels.get().bnbAdam8bit(p, m.create(f32(t.get("grads").get(step - 1))), s1, s2, a1, a2, code1,
                        code2, sc, 512);
            }
            JsonNode last = t.get("after").get(t.get("after").size() - 1);
            assertBits(f32(last.get("param")), p.toFloatArray(), "chunked param");
            assertBits(f32(last.get("absmax1")), a1.toFloatArray(), "chunked absmax1");
            assertBits(f32(last.get("absmax2")), a2.toFloatArray(), "chunked absmax2");
            int[] codes = new int[n];
            byte[] raw = s1.toByteArray();
            for (int i = 0; i < n; i++) codes[i] = raw[i] & 0xff;
            assertArrayEquals(u8(last.get("state1")), codes, "chunked state1");
        }
    }
}
