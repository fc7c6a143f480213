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

    // Expected values: Axolotl's own lambdas (src/axolotl/utils/schedulers.py at AxolotlKeys.COMMIT) evaluated by
    // CPython for steps 0..13, warmup 2, total 12.
    private static final double[] AXOLOTL_MIN_LR_0_1 = {0.0, 0.5, 1.0, 0.9779754323328191, 0.9140576474687263,
            0.8145033635316129, 0.6890576474687263, 0.55, 0.41094235253127376, 0.2854966364683872,
            0.18594235253127372, 0.12202456766718092, 0.1, 0.12202456766718092};
    private static final double[] AXOLOTL_DECAY_CONSTANT_0_1_0_8 = {0.0, 0.5, 1.0, 0.9554359905560885,
            0.8305704108364301, 0.6501344202803414, 0.44986557971965857, 0.26942958916356996, 0.14456400944391146,
            0.1, 0.1, 0.1, 0.1, 0.1};

    @Test
    void cosineMinLrRatioAsAxolotl() {
        LrSchedule s = LrSchedule.of("cosine", 2, 12, LrSchedule.Extras.ratios(0.1, Double.NaN), 1e-3);
        assertEquals(LrSchedule.CosineMinLr.class, s.getClass());
        for (int step = 0; step < AXOLOTL_MIN_LR_0_1.length; step++) {
            assertEquals(AXOLOTL_MIN_LR_0_1[step], s.factor(step), 1e-15, "step " + step);
        }
        // It changes the schedule: plain cosine reaches 0 at the end, this one the floor.
        assertEquals(0.0, LrSchedule.of("cosine", 2, 12).factor(12), 1e-15);
    }

    @Test
    void cosineConstantLrRatioAsAxolotl() {
        LrSchedule s = LrSchedule.of("cosine", 2, 12, LrSchedule.Extras.ratios(0.1, 0.8), 1e-3);
        assertEquals(LrSchedule.CosineDecayConstant.class, s.getClass());
        for (int step = 0; step < AXOLOTL_DECAY_CONSTANT_0_1_0_8.length; step++) {
            assertEquals(AXOLOTL_DECAY_CONSTANT_0_1_0_8[step], s.factor(step), 1e-15, "step " + step);
        }
    }

    @Test
    void ratiosActAsAxolotlChecksThem() {
        // Axolotl tests truthiness: a ratio of 0 is the plain schedule; cosine_constant_lr_ratio alone does nothing.
        assertEquals(LrSchedule.Cosine.class,
                LrSchedule.of("cosine", 2, 12, LrSchedule.Extras.ratios(0.0, 0.8), 1e-3).getClass());
        assertEquals(LrSchedule.Cosine.class,
                LrSchedule.of("cosine", 2, 12, LrSchedule.Extras.ratios(Double.NaN, 0.8), 1e-3).getClass());
        // The 4 Axolotl example configs with cosine_min_lr_ratio: 1.0, cosine_constant_lr_ratio: 0: flat after warmup.
        LrSchedule flat = LrSchedule.of("cosine", 2, 12, LrSchedule.Extras.ratios(1.0, 0.0), 1e-3);
        assertEquals(LrSchedule.CosineMinLr.class, flat.getClass());
        for (int step = 2; step <= 12; step++) assertEquals(1.0, flat.factor(step), 1e-15);
        // Only cosine reads them.
        assertEquals(LrSchedule.Linear.class,
                LrSchedule.of("linear", 2, 12, LrSchedule.Extras.ratios(0.1, 0.8), 1e-3).getClass());
        var e = assertThrows(IllegalArgumentException.class, () -> LrSchedule.Extras.ratios(1.5, Double.NaN));
        assertEquals("cosine_min_lr_ratio must be between 0.0 and 1.0, got 1.5", e.getMessage());
    }

    // transformers 5.18's get_scheduler(name, SGD(lr=1e-3), 2, 12, scheduler_specific_kwargs=...): lr / 1e-3 at steps
    // 0..12, read from the optimizer after each scheduler.step().
    private static final double[] HF_MIN_LR_RATE_0_1 = {0.0, 0.5, 1.0, 0.9779754323328191, 0.9140576474687263,
            0.8145033635316129, 0.6890576474687263, 0.55, 0.41094235253127376, 0.2854966364683872,
            0.18594235253127372, 0.12202456766718092, 0.1};
    private static final double[] HF_MIN_LR_1E4_CYCLES_1 = {0.0, 0.5, 1.0, 0.9140576474687263, 0.6890576474687263,
            0.41094235253127376, 0.18594235253127372, 0.1, 0.1859423525312736, 0.41094235253127365,
            0.6890576474687262, 0.9140576474687263, 1.0};
    private static final double[] HF_COSINE_CYCLES_1 = {0.0, 0.5, 1.0, 0.9045084971874737, 0.6545084971874737,
            0.34549150281252633, 0.09549150281252633, 0.0, 0.09549150281252622, 0.3454915028125262,
            0.6545084971874736, 0.9045084971874737, 1.0};

    private static void follows(double[] expected, LrSchedule s) {
        for (int step = 0; step < expected.length; step++) {
            assertEquals(expected[step], s.factor(step), 1e-12, "step " + step);
        }
    }

    @Test
    void lrSchedulerKwargsAsTransformers() {
        follows(HF_MIN_LR_RATE_0_1, LrSchedule.of("cosine_with_min_lr", 2, 12,
                new LrSchedule.Extras(Double.NaN, Double.NaN, Double.NaN, Double.NaN, 0.1), 1e-3));
        follows(HF_MIN_LR_1E4_CYCLES_1, LrSchedule.of("cosine_with_min_lr", 2, 12,
                new LrSchedule.Extras(Double.NaN, Double.NaN, 1.0, 1e-4, Double.NaN), 1e-3));
        follows(HF_COSINE_CYCLES_1, LrSchedule.of("cosine", 2, 12,
                new LrSchedule.Extras(Double.NaN, Double.NaN, 1.0, Double.NaN, Double.NaN), 1e-3));
        assertEquals("cosine_with_min_lr", LrSchedule.of("cosine_with_min_lr", 2, 12,
                new LrSchedule.Extras(Double.NaN, Double.NaN, Double.NaN, Double.NaN, 0.1), 1e-3).label());
        for (var c : java.util.List.of(
                java.util.List.<Object>of("cosine_with_min_lr", LrSchedule.Extras.NONE, "needs lr_scheduler_kwargs"),
                java.util.List.<Object>of("cosine", new LrSchedule.Extras(Double.NaN, Double.NaN, Double.NaN, 1e-4,
                        Double.NaN), "apply to lr_scheduler: cosine_with_min_lr"),
                java.util.List.<Object>of("linear", new LrSchedule.Extras(Double.NaN, Double.NaN, 2.0, Double.NaN,
                        Double.NaN), "num_cycles applies to cosine schedules"))) {
            var e = assertThrows(IllegalArgumentException.class,
                    () -> LrSchedule.of((String) c.get(0), 2, 12, (LrSchedule.Extras) c.get(1), 1e-3));
            assertEquals(true, e.getMessage().contains((String) c.get(2)), e.getMessage());
        }
        var both = assertThrows(IllegalArgumentException.class,
                () -> new LrSchedule.Extras(Double.NaN, Double.NaN, Double.NaN, 1e-4, 0.1));
        assertEquals(true, both.getMessage().contains("only one of min_lr or min_lr_rate"), both.getMessage());
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
