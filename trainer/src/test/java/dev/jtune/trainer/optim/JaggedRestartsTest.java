package dev.jtune.trainer.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import org.junit.jupiter.api.Test;

/**
 * Axolotl's JaggedLRRestartScheduler over transformers' cosine schedule, against its own class run in PyTorch
 * (tools/reference/jagged_lr_expected.py, Axolotl 067b021): every step's learning rate, for three settings (one of
 * them examples/llama-2/relora.yml's 150/10/1 over 400 steps), to 1e-12 relative.
 */
class JaggedRestartsTest {
    @Test
    void everyStepsLearningRateIsAxolotls() throws IOException {
        JsonNode fx;
        try (InputStream in = getClass().getResourceAsStream("/fixtures/jagged_lr_expected.json")) {
            fx = new ObjectMapper().readTree(in);
        }
        int checked = 0;
        for (JsonNode c : fx.get("cases")) {
            double base = c.get("base_lr").asDouble();
            long total = c.get("total").asLong();
            LrSchedule inner = LrSchedule.of("cosine", c.get("warmup").asLong(), total);
            JaggedRestarts j = new JaggedRestarts(c.get("restart").asLong(), c.get("restart_warmup").asLong(),
                    c.get("anneal").asLong(), c.get("min_scale").asDouble());
            for (int k = 0; k < total; k++) {
                double expected = c.get("lrs").get(k).asDouble();
                double actual = j.lr(base, inner, k);
                assertTrue(Math.abs(expected - actual) <= 1e-12 * base, "case " + c + " step " + (k + 1) + ": "
                        + expected + " vs " + actual);
                checked++;
            }
        }
        assertEquals(40 + 30 + 400, checked);
    }

    @Test
    void theScaleDropsAtEachRestartAndClimbsBack() {
        JaggedRestarts j = new JaggedRestarts(10, 4, 2, 0.001);
        assertEquals(1.0, j.scale(7)); // before R - A: unscaled
        assertEquals(1.0, j.scale(8)); // p = 8 = R - A: not past it
        assertEquals(0.5 * 0.999 + 0.001, j.scale(9), 1e-15); // anneal: (10 - 9) / 2
        assertEquals(0.001, j.scale(10), 1e-15); // the restart: t = 0
        assertEquals(0.25 * 0.999 + 0.001, j.scale(11), 1e-15); // warmup 1/4
        assertEquals(1.0, j.scale(14));
    }
}
