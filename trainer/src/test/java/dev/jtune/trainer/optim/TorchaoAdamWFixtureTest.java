package dev.jtune.trainer.optim;

import static dev.jtune.trainer.optim.BnbAdamWFixtureTest.f32;
import static dev.jtune.trainer.optim.BnbAdamWFixtureTest.u8;
import static org.junit.jupiter.api.Assertions.assertEquals;
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
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * torchao's AdamW8bit ({@code adamw_torch_8bit}) against its own code run eagerly in PyTorch
 * (tools/reference/torchao_adamw8bit_expected.py, pytorch/ao 36027d82, torch 2.13): an 8-bit tensor (17 whole
 * blocks, two of them without gradient at step 1), a tensor of 4140 values (not whole blocks: fp32 state in torchao)
 * and one under 4096 values, four steps with weight decay on two of them. jtune's kernel runs the same aten ops on
 * libtorch 2.7.1 and reproduces every bit (codes, scales, moments, parameters). torchao itself runs the update under
 * torch.compile, which may fuse and round differently; that is not modelled.
 *
 * <p>The bf16 case (bf16 full fine-tuning, torchao_adamw8bit_bf16_expected.json from the same script): bf16
 * parameters and gradients, upcast to fp32 for the update and rounded back to nearest even; the fp32-fallback
 * tensors keep bf16 moments ({@code zeros_like(p)}), the 8-bit ones the same fp32-scaled codes as for fp32 params.
 * The fp16 case ({@code float16: true}, torchao_adamw8bit_fp16_expected.json) is the same with fp16.
 */
class TorchaoAdamWFixtureTest {
    @Test
    void fourStepsMatchTorchaosCode() throws IOException {
        fourSteps("/fixtures/torchao_adamw8bit_expected.json", Dtype.FP32);
    }

    @Test
    void fourStepsOverBf16ParametersMatchTorchaosCode() throws IOException {
        fourSteps("/fixtures/torchao_adamw8bit_bf16_expected.json", Dtype.BF16);
    }

    /** {@code float16: true}: fp16 parameters and gradients, rounded back to fp16; fp16 fallback moments. */
    @Test
    void fourStepsOverFp16ParametersMatchTorchaosCode() throws IOException {
        fourSteps("/fixtures/torchao_adamw8bit_fp16_expected.json", Dtype.FP16);
    }

    private void fourSteps(String resource, Dtype dtype) throws IOException {
        JsonNode fx;
        try (InputStream in = getClass().getResourceAsStream(resource)) {
            fx = new ObjectMapper().readTree(in);
        }
        assertEquals(dtype.name().toLowerCase(java.util.Locale.ROOT).replace("fp32", "float32").replace("bf16",
                "bfloat16").replace("fp16", "float16"), fx.get("dtype").asText());
        double beta1 = fx.get("betas").get(0).asDouble();
        double beta2 = fx.get("betas").get(1).asDouble();
        double eps = fx.get("eps").asDouble();
        JsonNode lrs = fx.get("lrs");
        try (NDManager m = Torch.newManager()) {
            Map<String, NDArray> params = new LinkedHashMap<>();
            Map<String, Double> wd = new LinkedHashMap<>();
            for (JsonNode t : fx.get("tensors")) {
                long[] shape = new long[t.get("shape").size()];
                for (int i = 0; i < shape.length; i++) shape[i] = t.get("shape").get(i).asLong();
                params.put(t.get("name").asText(), as(m.create(f32(t.get("init")), new Shape(shape)), dtype, m));
                wd.put(t.get("name").asText(), t.get("weight_decay").asDouble());
            }
            AdamW.Hyper hyper = new AdamW.Hyper(beta1, beta2, eps, 0.1, AdamW.Variant.TORCHAO_8BIT);
            int codesChecked = 0;
            int codesDiffering = 0;
            try (AdamW opt = new AdamW(params, hyper, name -> wd.get(name) > 0, m)) {
                for (JsonNode t : fx.get("tensors")) {
                    assertEquals(t.get("eight_bit").asBoolean(), opt.eightBit(t.get("name").asText()));
                }
                for (int step = 1; step <= lrs.size(); step++) {
                    Map<String, NDArray> grads = new LinkedHashMap<>();
                    for (JsonNode t : fx.get("tensors")) {
                        String name = t.get("name").asText();
                        grads.put(name, as(m.create(f32(t.get("grads").get(step - 1)), params.get(name).getShape()),
                                dtype, m));
                    }
                    opt.step(lrs.get(step - 1).asDouble(), grads);
                    grads.values().forEach(NDArray::close);
                    for (JsonNode t : fx.get("tensors")) {
                        String name = t.get("name").asText();
                        for (JsonNode after : t.get("after")) {
                            if (after.get("step").asInt() != step) continue;
                            String at = name + " after step " + step;
                            assertEquals(dtype, Kernels.get().dtypeOf(params.get(name)), at + ": param dtype");
                            assertClose(f32(after.get("param")), Tensors.floats(params.get(name)), 0, at + ": param");
                            if (opt.eightBit(name)) {
                                AdamW.QuantizedState q = opt.quantizedState(name);
                                int[][] expected = {u8(after.get("state1")), u8(after.get("state2"))};
                                int[][] actual = {q.state1(), q.state2()};
                                for (int c = 0; c < 2; c++) {
                                    for (int i = 0; i < expected[c].length; i++) {
                                        codesChecked++;
                                        if (expected[c][i] != actual[c][i]) {
                                            codesDiffering++;
                                        }
                                    }
                                }
                                assertClose(f32(after.get("absmax1")), q.absmax1(), 0, at + ": scale1");
                                assertClose(f32(after.get("absmax2")), q.absmax2(), 0, at + ": scale2");
                            } else {
                                assertEquals(dtype, Kernels.get().dtypeOf(opt.expAvg().get(name)), at + ": state dtype");
                                assertClose(f32(after.get("exp_avg")), Tensors.floats(opt.expAvg().get(name)), 0,
                                        at + ": exp_avg");
                                assertClose(f32(after.get("exp_avg_sq")), Tensors.floats(opt.expAvgSq().get(name)), 0,
                                        at + ": exp_avg_sq");
                            }
                        }
                    }
                }
            }
            assertEquals(0, codesDiffering, codesDiffering + " of " + codesChecked + " codes differ");
            assertEquals(2 * 4352, codesChecked / 2);
        }
    }

    private static NDArray as(NDArray x, Dtype dtype, NDManager m) {
        if (dtype == Dtype.FP32) {
            return x;
        }
        NDArray cast = Kernels.get().cast(x, dtype);
        cast.attach(m);
        x.close();
        return cast;
    }

    /** Relative to the array's largest value: |x - y| <= tol * max|x| (tol 0: equal values). */
    private static void assertClose(float[] expected, float[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what);
        double max = 0;
        double diff = 0;
        for (int i = 0; i < expected.length; i++) {
            max = Math.max(max, Math.abs(expected[i]));
            diff = Math.max(diff, Math.abs(expected[i] - actual[i]));
        }
        assertTrue(diff <= tol * Math.max(max, 1e-30), what + ": differs by " + diff + " (max " + max + ")");
    }

    /** Updated 512 values (two blocks) at a time, the 8-bit tensor ends with the same bits. */
    @Test
    void chunkedUpdateIsTheSame() throws IOException {
        JsonNode fx;
        try (InputStream in = getClass().getResourceAsStream("/fixtures/torchao_adamw8bit_expected.json")) {
            fx = new ObjectMapper().readTree(in);
        }
        JsonNode t = fx.get("tensors").get(0);
        assertEquals("big", t.get("name").asText());
        try (NDManager m = Torch.newManager()) {
            NDArray p = m.create(f32(t.get("init")), new Shape(17, 256));
            NDArray c1 = m.zeros(p.getShape(), ai.djl.ndarray.types.DataType.UINT8);
            NDArray c2 = m.zeros(p.getShape(), ai.djl.ndarray.types.DataType.UINT8);
            NDArray s1 = m.zeros(new Shape(17));
            NDArray s2 = m.zeros(new Shape(17));
            NDArray q1 = m.create(Bnb.dynamicMap(true, m));
            NDArray q2 = m.create(Bnb.dynamicMap(false, m));
            JsonNode lrs = fx.get("lrs");
            for (int step = 1; step <= lrs.size(); step++) {
                OptimKernels.get().torchaoAdamW8bit(p, m.create(f32(t.get("grads").get(step - 1)), p.getShape()), c1, c2,
                        s1, s2, q1, q2, lrs.get(step - 1).asDouble(), 0.1, fx.get("betas").get(0).asDouble(),
                        fx.get("betas").get(1).asDouble(), fx.get("eps").asDouble(), step, 512);
            }
            JsonNode last = t.get("after").get(t.get("after").size() - 1);
            assertClose(f32(last.get("param")), p.toFloatArray(), 0, "chunked param");
            assertClose(f32(last.get("absmax1")), s1.toFloatArray(), 0, "chunked scale1");
            byte[] raw = c1.toByteArray();
            int[] expected = u8(last.get("state1"));
            for (int i = 0; i < expected.length; i++) assertEquals(expected[i], raw[i] & 0xff, "chunked code " + i);
        }
    }
}
