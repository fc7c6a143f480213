package dev.jtune.trainer.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    @Test
    void bf16RoundingTiesToEven() {
        assertEquals(1.0, Muon.roundBf16(1.0f));
        assertEquals(0.0123291015625, Muon.roundBf16(0.0123f)); // torch.tensor(0.0123).bfloat16()
        assertEquals(1.0, Muon.roundBf16(1.00390625f)); // halfway between 1 and 1 + 2^-7: to even
        assertEquals(1.015625, Muon.roundBf16(1.01171875f)); // halfway above an odd mantissa: up, to even
    }
}
