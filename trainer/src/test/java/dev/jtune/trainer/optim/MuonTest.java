package dev.jtune.trainer.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.engine.Torch;
import java.io.IOException;
import java.io.InputStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@link Muon} against Axolotl's Muon restated in Python ({@code tools/reference/muon_expected.py},
 * resources/muon/expected.json): two steps over an embedding, a head, square, tall and wide matrices, a bias and a norm.
 * AdamW's tensors agree to fp32 rounding; Muon's to what its bf16 Newton-Schulz leaves (libtorch's bf16 matrix
 * products accumulate in another order than torch 2.13's), far below the size of one update.
 */
class MuonTest {
    private static float[] floats(JsonNode n) {
        float[] x = new float[n.size()];
        for (int i = 0; i < x.length; i++) x[i] = (float) n.get(i).asDouble();
        return x;
    }

    private static long[] shape(JsonNode n) {
        long[] s = new long[n.size()];
        for (int i = 0; i < s.length; i++) s[i] = n.get(i).asLong();
        return s;
    }

    @Test
    void twoStepsMatchAxolotlsMuon() throws IOException {
        JsonNode fx;
        try (InputStream in = getClass().getResourceAsStream("/muon/expected.json")) {
            fx = new ObjectMapper().readTree(in);
        }
        double lr = fx.get("lr").asDouble();
        try (NDManager m = Torch.newManager()) {
            Map<String, NDArray> params = new LinkedHashMap<>();
            fx.get("shapes").fieldNames().forEachRemaining(name -> {
                NDArray p = m.create(floats(fx.get("params").get(name)), new Shape(shape(fx.get("shapes").get(name))));
                p.setRequiresGradient(true);
                params.put(name, p);
            });
            AdamW.Hyper hyper = new AdamW.Hyper(0.9, 0.95, 1e-8, fx.get("weight_decay").asDouble(), AdamW.Variant.MUON);
            try (Muon opt = new Muon(params, hyper, name -> !name.endsWith(".bias") && !name.contains("norm"), m)) {
                assertEquals(List.of("model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.up_proj.weight",
                        "model.layers.0.mlp.down_proj.weight"), opt.orthogonalizedNames());
                for (JsonNode grads : fx.get("grads")) {
                    opt.zeroGradients();
                    for (var e : params.entrySet()) {
                        NDArray p = e.getValue();
                        try (NDManager s = m.newSubManager(); GradientCollector gc = Torch.engine().newGradientCollector()) {
                            gc.backward(p.mul(s.create(floats(grads.get(e.getKey())), p.getShape())).sum());
                        }
                    }
                    opt.step(lr);
                }
            }
            for (var e : params.entrySet()) {
                String name = e.getKey();
                float[] expected = floats(fx.get("expected").get(name));
                float[] start = floats(fx.get("params").get(name));
                float[] actual = e.getValue().toFloatArray();
                boolean muon = Muon.orthogonalized(name, e.getValue().getShape());
                double moved = 0;
                for (int j = 0; j < expected.length; j++) {
                    double tol = muon ? 0.02 * lr : 1e-6 * Math.max(1, Math.abs(expected[j]));
                    assertEquals(expected[j], actual[j], tol, name + "[" + j + "]");
                    moved = Math.max(moved, Math.abs(expected[j] - start[j]));
                }
                // the updates are large against the tolerance: a wrong scale, coefficient or transpose shows
                assertTrue(moved > 0.1 * lr, name + " moved " + moved);
            }
        }
    }

    /** Momentum and AdamW moments survive a checkpoint: a resumed optimizer makes the next update bit for bit. */
    @Test
    void stateRoundTripsThroughACheckpoint(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        try (NDManager m = Torch.newManager()) {
            java.util.Random r = new java.util.Random(1);
            Map<String, long[]> shapes = new LinkedHashMap<>();
            shapes.put("model.embed_tokens.weight", new long[] {10, 8});
            shapes.put("model.layers.0.mlp.up_proj.weight", new long[] {12, 8});
            shapes.put("model.layers.0.input_layernorm.weight", new long[] {8});
            Map<String, NDArray> a = new LinkedHashMap<>();
            Map<String, NDArray> b = new LinkedHashMap<>();
            Map<String, float[]> init = new LinkedHashMap<>();
            shapes.forEach((name, shape) -> {
                float[] v = new float[(int) new Shape(shape).size()];
                for (int i = 0; i < v.length; i++) v[i] = (float) r.nextGaussian();
                init.put(name, v);
            });
            AdamW.Hyper hyper = new AdamW.Hyper(0.9, 0.95, 1e-8, 0.1, AdamW.Variant.MUON);
            Map<String, float[]> g1 = grads(shapes, r);
            Map<String, float[]> g2 = grads(shapes, r);
            Map<String, float[]> g3 = grads(shapes, r);
            for (var e : shapes.entrySet()) {
                NDArray p = m.create(init.get(e.getKey()), new Shape(e.getValue()));
                p.setRequiresGradient(true);
                a.put(e.getKey(), p);
            }
            try (Muon first = new Muon(a, hyper, n -> !n.contains("norm"), m)) {
                step(first, a, g1, m);
                step(first, a, g2, m);
                first.gatherState().write(dir.resolve("optimizer.safetensors"));
                for (var e : a.entrySet()) {
                    NDArray p = m.create(e.getValue().toFloatArray(), e.getValue().getShape());
                    p.setRequiresGradient(true);
                    b.put(e.getKey(), p);
                }
                step(first, a, g3, m);
            }
            try (Muon resumed = new Muon(b, hyper, n -> !n.contains("norm"), m)) {
                resumed.load(dir.resolve("optimizer.safetensors"));
                step(resumed, b, g3, m);
            }
            for (String name : shapes.keySet()) {
                assertArrayEquals(a.get(name).toFloatArray(), b.get(name).toFloatArray(), name);
            }
        }
    }

    private static Map<String, float[]> grads(Map<String, long[]> shapes, java.util.Random r) {
        Map<String, float[]> out = new LinkedHashMap<>();
        shapes.forEach((name, shape) -> {
            float[] v = new float[(int) new Shape(shape).size()];
            for (int i = 0; i < v.length; i++) v[i] = (float) r.nextGaussian();
            out.put(name, v);
        });
        return out;
    }

    private static void step(Muon opt, Map<String, NDArray> params, Map<String, float[]> grads, NDManager m) {
        opt.zeroGradients();
        for (var e : params.entrySet()) {
            NDArray p = e.getValue();
            try (NDManager s = m.newSubManager(); GradientCollector gc = Torch.engine().newGradientCollector()) {
                gc.backward(p.mul(s.create(grads.get(e.getKey()), p.getShape())).sum());
            }
        }
        opt.step(0.01);
    }

    @Test
    void bf16RoundingTiesToEven() {
        assertEquals(1.0, Muon.roundBf16(1.0f));
        assertEquals(0.0123291015625, Muon.roundBf16(0.0123f)); // torch.tensor(0.0123).bfloat16()
        assertEquals(1.0, Muon.roundBf16(1.00390625f)); // halfway between 1 and 1 + 2^-7: to even
        assertEquals(1.015625, Muon.roundBf16(1.01171875f)); // halfway above an odd mantissa: up, to even
    }
}
