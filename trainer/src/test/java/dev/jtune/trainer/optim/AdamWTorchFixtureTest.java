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

/** Clipping + AdamW against PyTorch's own implementation (fixture from tools/reference/adamw_expected.py). */
class AdamWTorchFixtureTest {
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
    void fourStepsMatchTorch() throws IOException {
        JsonNode fx;
        try (InputStream in = getClass().getResourceAsStream("/fixtures/adamw_expected.json")) {
            fx = new ObjectMapper().readTree(in);
        }
        try (NDManager m = Torch.newManager()) {
            Map<String, NDArray> params = new LinkedHashMap<>();
            for (int i = 0; i < 2; i++) {
                NDArray p = m.create(floats(fx.get("init").get(i)), new Shape(shape(fx.get("shapes").get(i))));
                p.setRequiresGradient(true);
                params.put("p" + i, p);
            }
            AdamW.Hyper hyper = new AdamW.Hyper(0.9, 0.98, 1e-6, 0.1);
            try (AdamW opt = new AdamW(params, hyper, name -> name.equals("p0"), m)) {
                JsonNode lrs = fx.get("lrs");
                for (int step = 0; step < lrs.size(); step++) {
                    Gradients.zero(params.values());
                    int i = 0;
                    for (NDArray p : params.values()) {
                        float[] g = floats(fx.get("grads").get(step).get(i++));
                        try (NDManager s = m.newSubManager(); GradientCollector gc = Torch.engine().newGradientCollector()) {
                            gc.backward(p.mul(s.create(g, p.getShape())).sum());
                        }
                    }
                    double norm = GradClipping.clip(List.copyOf(params.values()), 1.0, m);
                    double expected = fx.get("grad_norms").get(step).asDouble();
                    assertEquals(expected, norm, 1e-6 * expected, "grad norm at step " + step);
                    opt.step(lrs.get(step).asDouble());
                }
            }
            int i = 0;
            for (NDArray p : params.values()) {
                float[] expected = floats(fx.get("final").get(i++));
                float[] actual = p.toFloatArray();
                for (int j = 0; j < expected.length; j++) {
                    assertEquals(expected[j], actual[j], 1e-6 * Math.max(1, Math.abs(expected[j])), "p" + (i - 1) + "[" + j + "]");
                }
            }
        }
    }
}
