package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.config.TrainerSettings;
import dev.jtune.model.engine.Dtype;
import dev.jtune.trainer.optim.AdamW;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TrainerOptionsTest {
    private static TrainerSettings settings(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return new TrainerSettings(m);
    }

    @Test
    void lrSchedulerKwargsAreRead() {
        TrainerOptions o = TrainerOptions.from(settings("learning_rate", 2e-4, "lr_scheduler", "cosine_with_min_lr",
                "lr_scheduler_kwargs", Map.of("min_lr", 2e-5, "num_cycles", 0.5)), 42, false);
        assertEquals(new dev.jtune.trainer.optim.LrSchedule.Extras(Double.NaN, Double.NaN, 0.5, 2e-5, Double.NaN),
                o.lrExtras());
        var e = assertThrows(IllegalArgumentException.class, () -> TrainerOptions.from(settings("learning_rate", 2e-4,
                "lr_scheduler_kwargs", Map.of("eta_min", 1e-6)), 42, false));
        assertTrue(e.getMessage().contains("lr_scheduler_kwargs: 'eta_min' is not supported"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TrainerOptions.from(settings("learning_rate", 2e-4,
                "lr_scheduler", "cosine_with_min_lr"), 42, false));
        assertTrue(e.getMessage().contains("needs lr_scheduler_kwargs with min_lr or min_lr_rate"), e.getMessage());
    }

    @Test
    void offloadedCheckpointingIsCheckpointing() {
        for (String v : List.of("offload", "offload_disk")) {
            assertTrue(TrainerOptions.from(settings("learning_rate", 1e-3, "gradient_checkpointing", v), 1, false)
                    .gradientCheckpointing(), v);
        }
    }

    @Test
    void cosineRatiosReachTheSchedule() {
        TrainerOptions o = TrainerOptions.from(settings("learning_rate", 2e-4, "cosine_min_lr_ratio", 0.1,
                "cosine_constant_lr_ratio", 0.8), 42, false);
        assertEquals(dev.jtune.trainer.optim.LrSchedule.Extras.ratios(0.1, 0.8), o.lrExtras());
        assertEquals(dev.jtune.trainer.optim.LrSchedule.Extras.NONE,
                TrainerOptions.from(settings("learning_rate", 2e-4), 42, false).lrExtras());
    }

    @Test
    void axolotlDefaults() {
        TrainerOptions o = TrainerOptions.from(settings("learning_rate", 2e-4), 42, false);
        assertEquals(1, o.microBatchSize());
        assertEquals(1, o.gradientAccumulationSteps());
        assertEquals(1.0, o.numEpochs());
        assertEquals(-1, o.maxSteps());
        assertEquals("cosine", o.lrScheduler());
        assertEquals(0.9, o.adam().beta1());
        assertEquals(0.999, o.adam().beta2());
        assertEquals(1e-8, o.adam().eps());
        assertEquals(0.0, o.adam().weightDecay());
        assertEquals(1.0, o.maxGradNorm());
        assertEquals(Dtype.FP32, o.precision());
        assertEquals(42, o.seed());
        // Derived: 0.03 of 200 steps of warmup, logging every max(min(int(0.005*200),10),1) = 1.
        StepPlan p = StepPlan.of(o, 200, false);
        assertEquals(200, p.totalSteps());
        assertEquals(6, p.warmupSteps());
        assertEquals(1, p.loggingSteps());
        assertEquals(200, p.saveEvery()); // one checkpoint per epoch
        assertEquals(0, p.evalEvery());
    }

    @Test
    void readsEveryKey() {
        TrainerOptions o = TrainerOptions.from(settings("learning_rate", 1e-3, "micro_batch_size", 4L,
                "gradient_accumulation_steps", 3L, "max_steps", 50L, "lr_scheduler", "linear", "warmup_ratio", 0.1,
                "adam_beta2", 0.95, "weight_decay", 0.01, "max_grad_norm", 0.5, "bf16", true,
                "gradient_checkpointing", true, "eval_steps", 0.25, "save_steps", 10.0, "save_total_limit", 2L,
                "logging_steps", 5L, "resume_from_checkpoint", "auto", "optimizer", "adamw_torch_fused"), 7, false);
        assertEquals(Dtype.BF16, o.precision());
        assertTrue(o.gradientCheckpointing());
        StepPlan p = StepPlan.of(o, 10, true);
        assertEquals(4, p.stepsPerEpoch()); // ceil(10 / 3)
        assertEquals(3, p.batchCount(0));
        assertEquals(1, p.batchCount(3)); // the epoch's leftover micro-batch
        assertEquals(50, p.totalSteps());
        assertEquals(5, p.warmupSteps());
        assertEquals(13, p.evalEvery()); // ceil(0.25 * 50)
        assertEquals(10, p.saveEvery());
        assertEquals("auto", o.resumeFromCheckpoint().orElseThrow());
        assertEquals(Dtype.BF16, TrainerOptions.from(settings("learning_rate", 1e-3, "bf16", "auto"), 1, true).precision());
        assertEquals(Dtype.FP32, TrainerOptions.from(settings("learning_rate", 1e-3, "bf16", "auto"), 1, false).precision());
        // bfloat16: true (Axolotl's bf16 without autocast) is jtune's bf16; bf16: auto gives way to fp16: true.
        assertEquals(Dtype.BF16, TrainerOptions.from(settings("learning_rate", 1e-3, "bfloat16", true), 1, false).precision());
        assertEquals(Dtype.FP16, TrainerOptions.from(settings("learning_rate", 1e-3, "bf16", "auto", "fp16", true), 1, true)
                .precision());
    }

    /**
     * float16 as Axolotl's resolve_dtype reads it: the model in fp16 without AMP where nothing else decides — bf16 and
     * bfloat16 load in bf16 instead, fp16: true keeps its AMP (GradScaler), bf16: auto is bf16 with a GPU and float16's
     * fp16 without one (resolve_dtype then leaves fp16 unset because float16 is).
     */
    @Test
    void float16IsFp16WithoutAmpWhereNothingElseDecides() {
        TrainerOptions pure = TrainerOptions.from(settings("learning_rate", 1e-3, "float16", true, "bf16", false, "fp16",
                false), 1, false);
        assertEquals(Dtype.FP16, pure.precision());
        assertTrue(pure.fp16InPlace());
        TrainerOptions bf16 = TrainerOptions.from(settings("learning_rate", 1e-3, "float16", true, "bf16", true), 1, false);
        assertEquals(Dtype.BF16, bf16.precision());
        assertFalse(bf16.fp16InPlace());
        assertEquals(Dtype.BF16, TrainerOptions.from(settings("learning_rate", 1e-3, "float16", true, "bfloat16", true), 1,
                false).precision());
        TrainerOptions amp = TrainerOptions.from(settings("learning_rate", 1e-3, "float16", true, "fp16", true), 1, false);
        assertEquals(Dtype.FP16, amp.precision());
        assertFalse(amp.fp16InPlace());
        assertEquals(Dtype.BF16, TrainerOptions.from(settings("learning_rate", 1e-3, "float16", true, "bf16", "auto"), 1,
                true).precision());
        TrainerOptions noGpu = TrainerOptions.from(settings("learning_rate", 1e-3, "float16", true, "bf16", "auto"), 1,
                false);
        assertEquals(Dtype.FP16, noGpu.precision());
        assertTrue(noGpu.fp16InPlace());
        assertFalse(TrainerOptions.from(settings("learning_rate", 1e-3, "float16", false), 1, false).fp16InPlace());
        // A builder that changes the precision must say what becomes of float16.
        assertThrows(IllegalArgumentException.class, () -> pure.toBuilder().precision(Dtype.FP32).build());
    }

    @Test
    void perEpochIntervals() {
        TrainerOptions o = TrainerOptions.from(settings("learning_rate", 1e-3, "num_epochs", 2.0, "evals_per_epoch", 4L,
                "saves_per_epoch", 2L), 1, false);
        StepPlan p = StepPlan.of(o, 20, true);
        assertEquals(40, p.totalSteps());
        assertEquals(5, p.evalEvery());
        assertEquals(10, p.saveEvery());
        assertEquals(1, p.epochOf(20));
        assertEquals(0, p.firstBatch(20));
    }

    /** torch's AdamW and HF Trainer accept a learning rate of 0; so does jtune. */
    @Test
    void zeroLearningRateIsAccepted() {
        assertEquals(0.0, TrainerOptions.from(settings("learning_rate", 0.0), 1, false).learningRate());
    }

    @Test
    void clearErrors() {
        for (var c : List.of(
                List.of(settings(), "learning_rate: required"),
                List.of(settings("learning_rate", 1e-3, "optimizer", "sgd"), "optimizer: 'sgd' is not supported"),
                List.of(settings("learning_rate", 1e-3, "fp16", true, "bf16", true), "choose one precision"),
                List.of(settings("learning_rate", 1e-3, "warmup_steps", 5L, "warmup_ratio", 0.1), "mutually exclusive"),
                List.of(settings("learning_rate", 1e-3, "eval_steps", 5.0, "evals_per_epoch", 2L), "mutually exclusive"),
                List.of(settings("learning_rate", 1e-3, "save_steps", 2.5), "whole number"),
                List.of(settings("learning_rate", 1e-3, "lr_scheduler", "polynomial"), "lr_scheduler"),
                List.of(settings("learning_rate", 1e-3, "gradient_accumulation_steps", 0L), "gradient_accumulation_steps"),
                List.of(settings("learning_rate", 1e-3, "gradient_checkpointing", "unsloth"), "gradient_checkpointing"),
                List.of(settings("learning_rate", -1e-3), "learning_rate must be >= 0"))) {
            var e = assertThrows(IllegalArgumentException.class,
                    () -> TrainerOptions.from((TrainerSettings) c.get(0), 1, false));
            assertTrue(e.getMessage().contains((String) c.get(1)), e.getMessage());
        }
    }

    @Test
    void optimizerNamesPickTheirAdamW() {
        assertEquals(AdamW.Variant.TORCH, TrainerOptions.optimizerVariant("adamw_torch"));
        assertEquals(AdamW.Variant.TORCH, TrainerOptions.optimizerVariant("adamw_torch_fused"));
        assertEquals(AdamW.Variant.BNB_32BIT, TrainerOptions.optimizerVariant("paged_adamw_32bit"));
        for (String name : java.util.List.of("adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit")) {
            assertEquals(AdamW.Variant.BNB_8BIT, TrainerOptions.optimizerVariant(name), name);
        }
        assertEquals(AdamW.Variant.TORCHAO_8BIT, TrainerOptions.optimizerVariant("adamw_torch_8bit"));
        assertEquals(AdamW.Variant.TORCHAO_4BIT, TrainerOptions.optimizerVariant("adamw_torch_4bit"));
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> TrainerOptions.optimizerVariant("lion_8bit"));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().startsWith("optimizer: 'lion_8bit' is not supported"),
                e.getMessage());
    }

    /** optimizer: muon takes Axolotl's Muon factory's AdamW settings: betas (0.9, 0.95) unless both are given. */
    @Test
    void muonResolvesItsAdamWAsAxolotlsFactory() {
        assertEquals(AdamW.Variant.MUON, TrainerOptions.optimizerVariant("muon"));
        AdamW.Hyper h = TrainerOptions.from(settings("learning_rate", 0.02, "optimizer", "muon", "weight_decay", 0.01),
                1, false).adam();
        assertEquals(new AdamW.Hyper(0.9, 0.95, 1e-8, 0.01, AdamW.Variant.MUON), h);
        // one beta alone is not passed on (the factory needs both); both are
        assertEquals(0.95, TrainerOptions.from(settings("learning_rate", 0.02, "optimizer", "muon", "adam_beta2", 0.99),
                1, false).adam().beta2());
        AdamW.Hyper both = TrainerOptions.from(settings("learning_rate", 0.02, "optimizer", "muon", "adam_beta1", 0.8,
                "adam_beta2", 0.99), 1, false).adam();
        assertEquals(0.8, both.beta1());
        assertEquals(0.99, both.beta2());
        var e = assertThrows(IllegalArgumentException.class, () -> TrainerOptions.from(settings("learning_rate", 0.02,
                "optimizer", "muon", "adam_epsilon", 1e-6), 1, false));
        assertTrue(e.getMessage().startsWith("adam_epsilon: with optimizer: muon"), e.getMessage());
        // AdamW keeps transformers' defaults
        assertEquals(0.999, TrainerOptions.from(settings("learning_rate", 0.02), 1, false).adam().beta2());
    }
}
