package dev.jtune.trainer.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class LrScheduleTest {
    @Test
    void linearWarmsUpThenDecaysToZero() {
        LrSchedule s = LrSchedule.of("linear", 4, 20);
        assertEquals(0.0, s.factor(0));
        assertEquals(0.25, s.factor(1));
        assertEquals(0.75, s.factor(3));
        assertEquals(1.0, s.factor(4));
        assertEquals(10.0 / 16.0, s.factor(10), 1e-15);
        assertEquals(0.0, s.factor(20));
        assertEquals(0.0, s.factor(25));
    }

    @Test
    void cosineFollowsHalfACosineAfterWarmup() {
        LrSchedule s = LrSchedule.of("cosine", 2, 12);
        assertEquals(0.5, s.factor(1));
        for (int step = 2; step <= 12; step++) {
            double progress = (step - 2) / 10.0;
            assertEquals((1 + Math.cos(Math.PI * progress)) / 2, s.factor(step), 1e-15, "step " + step);
        }
        assertEquals(0.5, s.factor(7), 1e-15);
    }

    @Test
    void constantIgnoresWarmupAsTransformersDoes() {
        assertEquals(1.0, LrSchedule.of("constant", 5, 10).factor(0));
        assertEquals(0.2, LrSchedule.of("constant_with_warmup", 5, 10).factor(1));
        assertEquals(1.0, LrSchedule.of("constant_with_warmup", 5, 10).factor(5));
    }

    @Test
    void unknownNameIsRefusedWithTheChoices() {
        var e = assertThrows(IllegalArgumentException.class, () -> LrSchedule.of("polynomial", 0, 1));
        assertEquals(true, e.getMessage().contains("cosine, linear, constant"), e.getMessage());
    }

    @Test
    void axolotlWarmupRule() {
        assertEquals(7, LrSchedule.warmupSteps(7, Double.NaN, 100));
        assertEquals(10, LrSchedule.warmupSteps(-1, 0.1, 100));
        assertEquals(10, LrSchedule.warmupSteps(-1, 0.109, 100)); // floored
        assertEquals(3, LrSchedule.warmupSteps(-1, Double.NaN, 100));
        assertEquals(100, LrSchedule.warmupSteps(-1, Double.NaN, 10_000));
        assertEquals(2, LrSchedule.warmupSteps(1, Double.NaN, 100)); // 1 becomes 2, as in Axolotl
        assertEquals(0, LrSchedule.warmupSteps(-1, Double.NaN, 20));
    }
}
