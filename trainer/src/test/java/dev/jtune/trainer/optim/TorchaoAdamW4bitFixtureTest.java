package dev.jtune.trainer.optim;

import static dev.jtune.trainer.optim.BnbAdamWFixtureTest.f32;
import static dev.jtune.trainer.optim.BnbAdamWFixtureTest.u8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * torchao's AdamW4bit ({@code adamw_torch_4bit}) against its own code run eagerly in PyTorch
 * (tools/reference/torchao_adamw4bit_expected.py, pytorch/ao 36027d82, torch 2.13): a 4-bit tensor of 33 blocks of 128
 * (two of them without gradient at step 1; not a whole number of 256-blocks, so the 8-bit rules would keep it fp32), a
 * tensor of 4160 values (not whole blocks: fp32 state) and one under 4096 values; four steps, weight decay on two.
 * Every bit is compared: the maps, the packed codes, the scales, the moments and the parameters.
 */
class TorchaoAdamW4bitFixtureTest {
    private static JsonNode fixture() throws IOException {
        return fixture("/fixtures/torchao_adamw4bit_expected.json");
    }

    private static JsonNode fixture(String resource) throws IOException {
        try (InputStream in = TorchaoAdamW4bitFixtureTest.class.getResourceAsStream(resource)) {
            return new ObjectMapper().readTree(in);
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

    @Test
    void mapsAreTorchaos() throws IOException {
        JsonNode fx = fixture();
        try (NDManager m = Torch.newManager()) {
            for (boolean signed : new boolean[] {true, false}) {
                JsonNode want = fx.get(signed ? "qmap_signed" : "qmap_unsigned");
                float[] expected = new float[want.size()];
                for (int i = 0; i < expected.length; i++) expected[i] = (float) want.get(i).asDouble();
                assertArrayEquals(expected, OptimKernels.get().torchaoQmap4(signed, m).toFloatArray(),
                        signed ? "signed" : "unsigned");
            }
        }
    }

    @Test
    void fourStepsMatchTorchaosCode() throws IOException {
        fourSteps(fixture(), Dtype.FP32);
    }

    /**
     * {@code float16: true} (torchao_adamw4bit_fp16_expected.json): fp16 parameters and gradients upcast for the
     * update and rounded back to fp16; the 4-bit state as for fp32 parameters, fp16 moments ({@code zeros_like(p)})
     * for the others.
     */
    @Test
    void fourStepsOverFp16ParametersMatchTorchaosCode() throws IOException {
        JsonNode fx = fixture("/fixtures/torchao_adamw4bit_fp16_expected.json");
        assertEquals("float16", fx.get("dtype").asText());
        fourSteps(fx, Dtype.FP16);
    }

    private void fourSteps(JsonNode fx, Dtype dtype) {
        JsonNode lrs = fx.get("lrs");
        try (NDManager m = Torch.newManager()) {
            Map<String, NDArray> params = new LinkedHashMap<>();
            Map<String, Double> wd = new LinkedHashMap<>();
            for (JsonNode t : fx.get("tensors")) {
                params.put(t.get("name").asText(), as(m.create(f32(t.get("init")), shape(t)), dtype, m));
                wd.put(t.get("name").asText(), t.get("weight_decay").asDouble());
            }
            AdamW.Hyper hyper = new AdamW.Hyper(fx.get("betas").get(0).asDouble(), fx.get("betas").get(1).asDouble(),
                    fx.get("eps").asDouble(), 0.1, AdamW.Variant.TORCHAO_4BIT);
            int codesChecked = 0;
            try (AdamW opt = new AdamW(params, hyper, name -> wd.get(name) > 0, m)) {
                for (JsonNode t : fx.get("tensors")) {
                    assertEquals(t.get("four_bit").asBoolean(), opt.eightBit(t.get("name").asText()));
                }
                // 4224 values of 4-bit state: 4224/2 code bytes and 33 scales per moment; the others 8 bytes a value.
                assertEquals(2 * (4224 / 2 + 4 * 33) + 8L * (4160 + 300), opt.stateBytes());
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
                            assertArrayEquals(f32(after.get("param")), Tensors.floats(params.get(name)), at + ": param");
                            if (opt.eightBit(name)) {
                                AdamW.QuantizedState q = opt.quantizedState(name);
                                assertArrayEquals(u8(after.get("state1")), q.state1(), at + ": packed codes 1");
                                assertArrayEquals(u8(after.get("state2")), q.state2(), at + ": packed codes 2");
                                codesChecked += 2 * q.state1().length;
                                assertArrayEquals(f32(after.get("absmax1")), q.absmax1(), at + ": scale1");
                                assertArrayEquals(f32(after.get("absmax2")), q.absmax2(), at + ": scale2");
                            } else {
                                assertEquals(dtype, Kernels.get().dtypeOf(opt.expAvg().get(name)), at + ": state dtype");
                                assertArrayEquals(f32(after.get("exp_avg")), Tensors.floats(opt.expAvg().get(name)),
                                        at + ": exp_avg");
                                assertArrayEquals(f32(after.get("exp_avg_sq")),
                                        Tensors.floats(opt.expAvgSq().get(name)), at + ": exp_avg_sq");
                            }
                        }
                    }
                }
            }
            assertEquals(2 * 2 * 4224 / 2, codesChecked);
        }
    }

    /** Updated 256 values (two blocks) at a time, the 4-bit tensor ends with the same bits. */
    @Test
    void chunkedUpdateIsTheSame() throws IOException {
        JsonNode fx = fixture();
        JsonNode t = fx.get("tensors").get(0);
        assertEquals("big", t.get("name").asText());
        try (NDManager m = Torch.newManager()) {
            NDArray p = m.create(f32(t.get("init")), shape(t));
            NDArray c1 = m.zeros(new Shape(4224 / 2), DataType.UINT8);
            NDArray c2 = m.zeros(new Shape(4224 / 2), DataType.UINT8);
            NDArray s1 = m.zeros(new Shape(33));
            NDArray s2 = m.zeros(new Shape(33));
            NDArray q1 = OptimKernels.get().torchaoQmap4(true, m);
            NDArray q2 = OptimKernels.get().torchaoQmap4(false, m);
            JsonNode lrs = fx.get("lrs");
            for (int step = 1; step <= lrs.size(); step++) {
                OptimKernels.get().torchaoAdamW4bit(p, m.create(f32(t.get("grads").get(step - 1)), p.getShape()), c1, c2,
                        s1, s2, q1, q2, lrs.get(step - 1).asDouble(), 0.1, fx.get("betas").get(0).asDouble(),
                        fx.get("betas").get(1).asDouble(), fx.get("eps").asDouble(), step, 256);
            }
            JsonNode last = t.get("after").get(t.get("after").size() - 1);
            assertArrayEquals(f32(last.get("param")), p.toFloatArray(), "chunked param");
            assertArrayEquals(f32(last.get("absmax2")), s2.toFloatArray(), "chunked scale2");
            byte[] raw = c2.toByteArray();
            int[] expected = u8(last.get("state2"));
            for (int i = 0; i < expected.length; i++) assertEquals(expected[i], raw[i] & 0xff, "chunked code " + i);
        }
    }

    /** Saved after two steps and loaded into a fresh optimizer, the next two steps give the same bits. */
    @Test
    void savedStateResumesBitForBit(@TempDir Path dir) throws IOException {
        JsonNode fx = fixture();
        JsonNode lrs = fx.get("lrs");
        try (NDManager m = Torch.newManager()) {
            AdamW.Hyper hyper = new AdamW.Hyper(0.9, 0.995, 1e-6, 0.1, AdamW.Variant.TORCHAO_4BIT);
            Map<String, NDArray> a = new LinkedHashMap<>();
            Map<String, NDArray> b = new LinkedHashMap<>();
            for (JsonNode t : fx.get("tensors")) {
                a.put(t.get("name").asText(), m.create(f32(t.get("init")), shape(t)));
            }
            Path file = dir.resolve("optimizer.safetensors");
            try (AdamW first = new AdamW(a, hyper, name -> true, m)) {
                for (int step = 1; step <= 2; step++) first.step(lrs.get(step - 1).asDouble(), grads(fx, step, m));
                first.save(file);
                for (var e : a.entrySet()) b.put(e.getKey(), e.getValue().duplicate());
                for (int step = 3; step <= 4; step++) first.step(lrs.get(step - 1).asDouble(), grads(fx, step, m));
            }
            try (AdamW second = new AdamW(b, hyper, name -> true, m)) {
                second.load(file);
                for (int step = 3; step <= 4; step++) second.step(lrs.get(step - 1).asDouble(), grads(fx, step, m));
                for (String name : a.keySet()) {
                    assertArrayEquals(a.get(name).toFloatArray(), b.get(name).toFloatArray(), name + " after resuming");
                }
            }
            try (var in = dev.jtune.model.safetensors.SafetensorsFile.open(file)) {
                assertEquals("adamw_torch_4bit", in.metadata().get("optimizer"));
                assertEquals("128", in.metadata().get("block_size"));
                assertEquals(4224 / 2, in.ints("big.state1").length, "codes stored packed");
            }
        }
    }

    private static Map<String, NDArray> grads(JsonNode fx, int step, NDManager m) {
        Map<String, NDArray> g = new LinkedHashMap<>();
        for (JsonNode t : fx.get("tensors")) {
            g.put(t.get("name").asText(), m.create(f32(t.get("grads").get(step - 1)), shape(t)));
        }
        return g;
    }

    private static Shape shape(JsonNode t) {
        long[] shape = new long[t.get("shape").size()];
        for (int i = 0; i < shape.length; i++) shape[i] = t.get("shape").get(i).asLong();
        return new Shape(shape);
    }
}
