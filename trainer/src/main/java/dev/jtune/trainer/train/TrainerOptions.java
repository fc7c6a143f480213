package dev.jtune.trainer.train;

import dev.jtune.data.config.ConfigProblems;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.config.TrainerSettings;
import dev.jtune.model.engine.Dtype;
import dev.jtune.trainer.optim.AdamW;
import dev.jtune.trainer.optim.LrSchedule;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;

/**
 * The trainer's settings, with Axolotl's defaults, read from the config's trainer keys.
 *
 * @param microBatchSize {@code micro_batch_size} (default 1); the batch plan builds batches of this size
 * @param gradientAccumulationSteps {@code gradient_accumulation_steps} (default 1)
 * @param numEpochs {@code num_epochs} (default 1, may be fractional); ignored when {@code maxSteps > 0}
 * @param maxSteps {@code max_steps}, or -1
 * @param learningRate {@code learning_rate} (required)
 * @param lrScheduler {@code lr_scheduler}: cosine (Axolotl's default), linear, constant, constant_with_warmup
 * @param warmupSteps {@code warmup_steps}, or -1
 * @param warmupRatio {@code warmup_ratio}, or NaN
 * @param adam {@code adam_beta1}, {@code adam_beta2}, {@code adam_epsilon}, {@code weight_decay}
 * @param maxGradNorm {@code max_grad_norm} (transformers' default 1.0; 0 turns clipping off)
 * @param precision fp32, {@code bf16: true} (or {@code auto} with a GPU), or fp16: {@code fp16: true} or
 *     {@code float16: true}
 * @param gradientCheckpointing {@code gradient_checkpointing}: recompute each decoder layer in backward
 * @param seed {@code seed}
 * @param loggingSteps {@code logging_steps}, or -1 for Axolotl's {@code max(min(int(0.005 * total), 10), 1)}
 * @param evalSteps {@code eval_steps} (a count, or a fraction of the total steps below 1), or NaN
 * @param evalsPerEpoch {@code evals_per_epoch}, or -1
 * @param saveSteps {@code save_steps} (a count, or a fraction of the total steps below 1), or NaN
 * @param savesPerEpoch {@code saves_per_epoch}, or -1 (with neither, a checkpoint per epoch, as Axolotl)
 * @param saveTotalLimit {@code save_total_limit}, or -1 for no limit
 * @param resumeFromCheckpoint {@code resume_from_checkpoint}: a checkpoint directory or {@code auto}
 * @param handleSigterm install a SIGTERM handler that checkpoints at the next step boundary and returns
 * @param fsdp {@code fsdp: [full_shard]} or an {@code fsdp_config} (see {@link Fsdp}): shard gradients and
 *     optimizer state (and, where the model was loaded through {@code ShardedWeights}, the frozen base) over
 *     the ranks; no effect in a world of one
 * @param lrExtras {@code cosine_min_lr_ratio}, {@code cosine_constant_lr_ratio} (Axolotl's cosine floor) and
 *     {@code lr_scheduler_kwargs} ({@code num_cycles}, {@code min_lr}, {@code min_lr_rate})
 * @param useTensorboard {@code use_tensorboard}: TensorBoard event files under {@code output_dir/runs}
 * @param earlyStoppingPatience {@code early_stopping_patience}: stop after this many evaluations in a row without a
 *     lower eval loss ({@link EarlyStopping}), or 0
 * @param loadBestModelAtEnd what Axolotl passes as {@code load_best_model_at_end}: asked for (or implied by
 *     {@code early_stopping_patience}) with {@code save_steps} and {@code eval_steps} both set, the first a multiple
 *     of the second; the trainer then ends on the weights of the checkpoint with the lowest eval loss (given
 *     held-out data, which Axolotl requires as well)
 * @param lossWatchdogThreshold {@code loss_watchdog_threshold} ({@link LossWatchdog}), or NaN
 * @param lossWatchdogPatience {@code loss_watchdog_patience}, or 0 for Axolotl's 3
 * @param lisa {@code lisa_n_layers} with {@code lisa_step_interval} ({@link Lisa}), or null
 * @param restarts {@code jagged_restart_steps} (the jagged schedule) and {@code relora} ({@link ReLora}), or null
 * @param eaft {@code use_eaft} with {@code eaft_alpha} and {@code eaft_k} ({@link Eaft}), or null
 * @param diffusion Axolotl's DiffusionPlugin objective ({@link Diffusion}), or null: set by {@code train} once the
 *     tokenizer has resolved the mask token ({@code DiffusionSettings}); {@link #from} leaves it null
 * @param fp16InPlace {@code float16: true} without {@code fp16}/{@code bf16} (precision fp16): Axolotl's
 *     {@code resolve_dtype} loads the model in fp16 and transformers' Trainer runs no AMP, so there is no loss scaling
 *     and, without an adapter, the fp16 weights are trained in place (fp16 gradients, the optimizer updating fp16
 *     tensors); with an adapter the LoRA matrices are fp32 (PEFT's {@code autocast_adapter_dtype}) over the fp16 base
 */
public record TrainerOptions(int microBatchSize, int gradientAccumulationSteps, double numEpochs, long maxSteps,
        double learningRate, String lrScheduler, long warmupSteps, double warmupRatio, AdamW.Hyper adam,
        double maxGradNorm, Dtype precision, boolean gradientCheckpointing, long seed, long loggingSteps,
        double evalSteps, long evalsPerEpoch, double saveSteps, long savesPerEpoch, long saveTotalLimit,
        Optional<String> resumeFromCheckpoint, boolean handleSigterm, boolean fsdp,
        LrSchedule.Extras lrExtras, boolean useTensorboard, long earlyStoppingPatience, boolean loadBestModelAtEnd,
        double lossWatchdogThreshold, long lossWatchdogPatience, Lisa lisa, ReLora.Settings restarts, Eaft eaft,
        Diffusion diffusion,
        boolean fp16InPlace) {

    public TrainerOptions {
        List<String> problems = new java.util.ArrayList<>(); // all of them, each naming its key
        require(problems, microBatchSize >= 1, "micro_batch_size must be at least 1, got " + microBatchSize);
        require(problems, gradientAccumulationSteps >= 1,
                "gradient_accumulation_steps must be at least 1, got " + gradientAccumulationSteps);
        require(problems, maxSteps > 0 || numEpochs > 0, "num_epochs must be positive when max_steps is not set, got " + numEpochs);
        // 0 is allowed, as torch's AdamW and HF Trainer allow it (a run that only evaluates, or decays nothing).
        require(problems, learningRate >= 0 && Double.isFinite(learningRate), "learning_rate must be >= 0, got " + learningRate);
        require(problems, maxGradNorm >= 0, "max_grad_norm must be >= 0, got " + maxGradNorm);
        require(problems, Double.isNaN(warmupRatio) || (warmupRatio >= 0 && warmupRatio <= 1),
                "warmup_ratio must be in [0, 1], got " + warmupRatio);
        require(problems, !(warmupSteps >= 0 && !Double.isNaN(warmupRatio)), "warmup_steps and warmup_ratio are mutually exclusive");
        require(problems, !(!Double.isNaN(evalSteps) && evalsPerEpoch > 0), "eval_steps and evals_per_epoch are mutually exclusive");
        require(problems, !(!Double.isNaN(saveSteps) && savesPerEpoch > 0), "save_steps and saves_per_epoch are mutually exclusive");
        require(problems, Double.isNaN(evalSteps) || evalSteps > 0, "eval_steps must be positive, got " + evalSteps);
        require(problems, Double.isNaN(saveSteps) || saveSteps > 0, "save_steps must be positive, got " + saveSteps);
        require(problems, Double.isNaN(evalSteps) || evalSteps < 1 || evalSteps == Math.rint(evalSteps),
                "eval_steps must be a whole number of steps or a fraction below 1, got " + evalSteps);
        require(problems, Double.isNaN(saveSteps) || saveSteps < 1 || saveSteps == Math.rint(saveSteps),
                "save_steps must be a whole number of steps or a fraction below 1, got " + saveSteps);
        require(problems, lossWatchdogPatience >= 0, "loss_watchdog_patience must be >= 0, got " + lossWatchdogPatience);
        require(problems, earlyStoppingPatience >= 0, "early_stopping_patience must be >= 0, got " + earlyStoppingPatience);
        // Axolotl's check_early_stopping (schemas/validation.py), on the keys as written.
        require(problems, earlyStoppingPatience == 0 || (!Double.isNaN(saveSteps) && !Double.isNaN(evalSteps)),
                "early_stopping_patience requires save_steps and eval_steps to be set. eval_steps should evenly divide"
                        + " save_steps.");
        require(problems, earlyStoppingPatience == 0 || Double.isNaN(saveSteps) || Double.isNaN(evalSteps)
                || saveSteps % evalSteps == 0, "early_stopping_patience requires that eval_steps should evenly divide"
                        + " save_steps.");
        if (!problems.isEmpty()) {
            throw new Invalid(problems);
        }
        if (fp16InPlace && precision != Dtype.FP16) {
            throw new IllegalArgumentException("float16: true trains in fp16; the precision is " + precision.label());
        }
        lrExtras = lrExtras == null ? LrSchedule.Extras.NONE : lrExtras;
        LrSchedule.of(lrScheduler, 0, 1, lrExtras, learningRate); // validates the name, checks the kwargs against it
        resumeFromCheckpoint = resumeFromCheckpoint == null ? Optional.empty() : resumeFromCheckpoint;
    }

    private static void require(List<String> problems, boolean ok, String message) {
        if (!ok) {
            problems.add(message);
        }
    }

    /** Options out of range or in conflict: every problem found, each message beginning with its key. */
    public static final class Invalid extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;
        private final transient List<String> problems;

        Invalid(List<String> problems) {
            super(String.join("; ", problems));
            this.problems = List.copyOf(problems);
        }

        public List<String> problems() {
            return problems;
        }
    }

    /** Defaults for everything but the learning rate; a start for tests and programmatic use. */
    public static TrainerOptions defaults(double learningRate) {
        return new TrainerOptions(1, 1, 1.0, -1, learningRate, "cosine", -1, Double.NaN, AdamW.DEFAULTS, 1.0,
                Dtype.FP32, false, TrainConfig.DEFAULT_SEED, -1, Double.NaN, -1, Double.NaN, -1, -1,
                Optional.empty(), true, false, LrSchedule.Extras.NONE, false, 0, false, Double.NaN, 0, null, null, null, null, false);
    }

    /** Reads the trainer keys of a loaded config; errors name the file and the key. */
    public static TrainerOptions from(TrainConfig config) {
        try {
            return from(config.trainer(), config.seed(), gpuAvailable());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(config.source() + ": " + e.getMessage(), e);
        }
    }

    /**
     * The AdamW of transformers' {@code optim} name (trainer.py {@code get_optimizer_cls_and_kwargs}): adamw_torch and
     * adamw_torch_fused are {@code torch.optim.AdamW}; adamw_bnb_8bit, adamw_8bit and paged_adamw_8bit are
     * bitsandbytes' AdamW with {@code optim_bits=8}, paged_adamw_32bit with 32 ({@code paged_} only moves the state
     * between GPU and host memory: the same update); adamw_torch_8bit is torchao's AdamW8bit, adamw_torch_4bit its
     * AdamW4bit.
     *
     * @throws IllegalArgumentException for any other name, saying what jtune implements
     */
    public static AdamW.Variant optimizerVariant(String optimizer) {
        return switch (optimizer) {
            case "adamw_torch", "adamw_torch_fused" -> AdamW.Variant.TORCH;
            case "paged_adamw_32bit" -> AdamW.Variant.BNB_32BIT;
            case "adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit" -> AdamW.Variant.BNB_8BIT;
            case "adamw_torch_8bit" -> AdamW.Variant.TORCHAO_8BIT;
            case "adamw_torch_4bit" -> AdamW.Variant.TORCHAO_4BIT;
            case "muon" -> AdamW.Variant.MUON;
            default -> throw new IllegalArgumentException("optimizer: '" + optimizer + "' is not supported; jtune"
                    + " implements adamw_torch (adamw_torch_fused is the same update), bitsandbytes' 8-bit AdamW"
                    + " (adamw_bnb_8bit, adamw_8bit, paged_adamw_8bit), its 32-bit AdamW (paged_adamw_32bit), torchao's"
                    + " AdamW8bit (adamw_torch_8bit) and AdamW4bit (adamw_torch_4bit), and Axolotl's Muon (muon)");
        };
    }

    /**
     * Reads trainer keys.
     *
     * @param gpu whether a GPU is present ({@code bf16: auto} means bf16 only then, as Axolotl)
     * @throws IllegalArgumentException naming the key and what was expected
     */
    public static TrainerOptions from(TrainerSettings s, long seed, boolean gpu) {
        OptionalDouble lr = s.number("learning_rate");
        if (lr.isEmpty()) {
            throw new IllegalArgumentException("learning_rate: required (e.g. learning_rate: 0.0002)");
        }
        AdamW.Hyper adam = adam(s).with(optimizer(s));
        Dtype precision = precision(s, gpu);
        boolean checkpointing = gradientCheckpointing(s);
        return new TrainerOptions(
                (int) s.integer("micro_batch_size").orElse(1),
                (int) s.integer("gradient_accumulation_steps").orElse(1),
                s.number("num_epochs").orElse(1.0),
                s.integer("max_steps").orElse(-1),
                lr.getAsDouble(),
                s.string("lr_scheduler").orElse("cosine"),
                s.integer("warmup_steps").orElse(-1),
                s.number("warmup_ratio").orElse(Double.NaN),
                adam,
                s.number("max_grad_norm").orElse(1.0),
                precision,
                checkpointing,
                seed,
                s.integer("logging_steps").orElse(-1),
                s.number("eval_steps").orElse(Double.NaN),
                s.integer("evals_per_epoch").orElse(-1),
                s.number("save_steps").orElse(Double.NaN),
                s.integer("saves_per_epoch").orElse(-1),
                s.integer("save_total_limit").orElse(-1),
                s.string("resume_from_checkpoint"),
                true,
                Fsdp.enabled(s),
                lrExtras(s),
                s.bool("use_tensorboard").orElse(false),
                s.integer("early_stopping_patience").orElse(0),
                loadBestModelAtEnd(s),
                s.number("loss_watchdog_threshold").orElse(Double.NaN),
                s.integer("loss_watchdog_patience").orElse(0),
                Lisa.from(s).orElse(null),
                ReLora.Settings.from(s).orElse(null),
                Eaft.from(s).orElse(null),
                null,
                fp16InPlace(s, gpu));
    }

    /**
     * Axolotl's {@code load_best_model_at_end} argument (core/builders/causal.py): asked for or implied by
     * {@code early_stopping_patience}, and {@code save_steps} and {@code eval_steps} set with the first a multiple of
     * the second; otherwise false, whatever the config says. (Axolotl also requires held-out data: the trainer.)
     */
    static boolean loadBestModelAtEnd(TrainerSettings s) {
        boolean asked = s.bool("load_best_model_at_end").orElse(false) || s.integer("early_stopping_patience").orElse(0) > 0;
        OptionalDouble save = s.number("save_steps");
        OptionalDouble eval = s.number("eval_steps");
        return asked && save.isPresent() && eval.isPresent() && save.getAsDouble() > 0 && eval.getAsDouble() > 0
                && save.getAsDouble() % eval.getAsDouble() == 0;
    }

    /** The schedule's extras: Axolotl's cosine ratios and transformers' {@code lr_scheduler_kwargs}. */
    private static LrSchedule.Extras lrExtras(TrainerSettings s) {
        Map<String, Object> kwargs = s.mapping("lr_scheduler_kwargs");
        for (String k : kwargs.keySet()) {
            if (!List.of("num_cycles", "min_lr", "min_lr_rate").contains(k)) {
                throw new IllegalArgumentException("lr_scheduler_kwargs: '" + k + "' is not supported; jtune reads"
                        + " num_cycles, min_lr and min_lr_rate");
            }
        }
        return new LrSchedule.Extras(s.number("cosine_min_lr_ratio").orElse(Double.NaN),
                s.number("cosine_constant_lr_ratio").orElse(Double.NaN), kwarg(kwargs, "num_cycles"),
                kwarg(kwargs, "min_lr"), kwarg(kwargs, "min_lr_rate"));
    }

    private static double kwarg(Map<String, Object> kwargs, String key) {
        Object v = kwargs.get(key);
        if (v == null) return Double.NaN;
        if (v instanceof Number n) return n.doubleValue();
        throw new IllegalArgumentException("lr_scheduler_kwargs." + key + ": expected a number, got '" + v + "'");
    }

    /**
     * Checks the trainer keys as {@link #from(TrainerSettings, long, boolean)} reads them, reporting every problem
     * at its key rather than stopping at the first: what {@code preprocess} and {@code train} check when the config
     * loads ({@code ConfigChecks}). {@code bf16: auto} counts as fp32 here (no GPU is asked for), and a missing
     * {@code learning_rate} is left to {@code train}.
     */
    public static void check(TrainerSettings s, long seed, ConfigProblems problems) {
        boolean parts = problems.run("optimizer", () -> optimizer(s));
        parts &= problems.run("lr_scheduler", () -> LrSchedule.of(s.string("lr_scheduler").orElse("cosine"), 0, 1));
        parts &= problems.run("bf16", () -> precision(s, false));
        parts &= problems.run("gradient_checkpointing", () -> gradientCheckpointing(s));
        parts &= problems.run("adam_beta1", () -> adam(s));
        int before = problems.problems().size();
        Fsdp.check(s, problems);
        parts &= problems.problems().size() == before;
        if (parts) {
            // The checks across keys (ranges, exclusive pairs); each message begins with the key at fault. A config
            // without learning_rate may still be preprocessed (a data-only config): train requires it.
            var values = new java.util.LinkedHashMap<>(s.values());
            values.putIfAbsent("learning_rate", 1e-4);
            try {
                from(new TrainerSettings(values), seed, false);
            } catch (Invalid e) {
                e.problems().forEach(problem -> problems.add("", problem));
            } catch (IllegalArgumentException e) {
                problems.add("", e.getMessage());
            }
        }
    }

    /** {@code optimizer}, checked: adamw_torch and the names that are its update. */
    static AdamW.Variant optimizer(TrainerSettings s) {
        return optimizerVariant(s.string("optimizer").orElse("adamw_torch"));
    }

    /** {@code fp16}, {@code bf16} (true, false or auto: bf16 with a GPU): one precision. */
    static Dtype precision(TrainerSettings s, boolean gpu) {
        boolean fp16 = s.bool("fp16").orElse(false);
        Object bf16Value = s.value("bf16").orElse(false);
        // bfloat16: true loads the model in bf16 without autocast (Axolotl's "no AMP"): for jtune's bf16 compute, whose
        // every op already runs in bf16 with transformers' fp32 upcasts, that is bf16: true.
        // bf16: auto is bf16 with a GPU, unless fp16: true (Axolotl's resolve_dtype).
        boolean bf16 = (bf16Value instanceof Boolean b ? b : gpu && !fp16) || s.bool("bfloat16").orElse(false);
        if (fp16 && bf16) {
            throw new IllegalArgumentException("bf16: true and fp16: true: choose one precision");
        }
        // float16: true loads the model in fp16 when neither bf16 nor bfloat16 does (then without AMP: fp16InPlace).
        return fp16 ? Dtype.FP16 : bf16 ? Dtype.BF16 : s.bool("float16").orElse(false) ? Dtype.FP16 : Dtype.FP32;
    }

    /**
     * {@code float16: true} where it decides the run (Axolotl's resolve_dtype: {@code bf16}/{@code bfloat16} win and
     * load in bf16; {@code fp16: true} loads in fp16 too but turns on the Trainer's AMP and its GradScaler): the model
     * in fp16 and no AMP, no loss scaling.
     */
    static boolean fp16InPlace(TrainerSettings s, boolean gpu) {
        return s.bool("float16").orElse(false) && !s.bool("fp16").orElse(false)
                && precision(s, gpu) == Dtype.FP16;
    }

    /** {@code gradient_checkpointing}: true or false; offload and offload_disk are checkpointing (an equivalent). */
    static boolean gradientCheckpointing(TrainerSettings s) {
        return switch (s.value("gradient_checkpointing").orElse(false)) {
            case Boolean b -> b;
            // Axolotl's offload spellings are checkpointing plus activation offloading (an equivalent here).
            case String str when str.equals("offload") || str.equals("offload_disk") -> true;
            case String str -> throw new IllegalArgumentException("gradient_checkpointing: '" + str
                    + "' is not supported; expected true, false, offload or offload_disk");
            default -> false;
        };
    }

    private static AdamW.Hyper adam(TrainerSettings s) {
        if ("muon".equals(s.string("optimizer").orElse(""))) {
            // Axolotl's Muon factory: betas only when both are given, else its (0.9, 0.95); its adam_epsilon reaches
            // the optimizer as `eps`, an argument dion's Muon does not take (a TypeError there).
            if (s.has("adam_epsilon")) {
                throw new IllegalArgumentException("adam_epsilon: with optimizer: muon Axolotl passes it to its Muon as"
                        + " eps, which that optimizer does not accept (a TypeError); leave it out (Muon's epsilon is"
                        + " 1e-8)");
            }
            boolean both = s.has("adam_beta1") && s.has("adam_beta2");
            return new AdamW.Hyper(both ? s.number("adam_beta1").getAsDouble() : 0.9,
                    both ? s.number("adam_beta2").getAsDouble() : 0.95, 1e-8, s.number("weight_decay").orElse(0.0));
        }
        return new AdamW.Hyper(s.number("adam_beta1").orElse(0.9), s.number("adam_beta2").orElse(0.999),
                s.number("adam_epsilon").orElse(1e-8), s.number("weight_decay").orElse(0.0));
    }

    private static boolean gpuAvailable() {
        return dev.jtune.model.engine.Torch.engine().getGpuCount() > 0;
    }

    /** A builder starting from these options. */
    public Builder toBuilder() {
        return new Builder(this);
    }

    /** Changes some options of a {@link TrainerOptions}; everything else stays. */
    public static final class Builder {
        private int microBatchSize;
        private int gradientAccumulationSteps;
        private double numEpochs;
        private long maxSteps;
        private double learningRate;
        private String lrScheduler;
        private long warmupSteps;
        private double warmupRatio;
        private AdamW.Hyper adam;
        private double maxGradNorm;
        private Dtype precision;
        private boolean gradientCheckpointing;
        private long seed;
        private long loggingSteps;
        private double evalSteps;
        private long evalsPerEpoch;
        private double saveSteps;
        private long savesPerEpoch;
        private long saveTotalLimit;
        private Optional<String> resumeFromCheckpoint;
        private boolean handleSigterm;
        private boolean fsdp;
        private LrSchedule.Extras lrExtras;
        private boolean useTensorboard;
        private long earlyStoppingPatience;
        private boolean loadBestModelAtEnd;
        private double lossWatchdogThreshold;
        private long lossWatchdogPatience;
        private Lisa lisa;
        private ReLora.Settings restarts;
        private Eaft eaft;
        private Diffusion diffusion;
        private boolean fp16InPlace;

        private Builder(TrainerOptions o) {
            microBatchSize = o.microBatchSize;
            gradientAccumulationSteps = o.gradientAccumulationSteps;
            numEpochs = o.numEpochs;
            maxSteps = o.maxSteps;
            learningRate = o.learningRate;
            lrScheduler = o.lrScheduler;
            warmupSteps = o.warmupSteps;
            warmupRatio = o.warmupRatio;
            adam = o.adam;
            maxGradNorm = o.maxGradNorm;
            precision = o.precision;
            gradientCheckpointing = o.gradientCheckpointing;
            seed = o.seed;
            loggingSteps = o.loggingSteps;
            evalSteps = o.evalSteps;
            evalsPerEpoch = o.evalsPerEpoch;
            saveSteps = o.saveSteps;
            savesPerEpoch = o.savesPerEpoch;
            saveTotalLimit = o.saveTotalLimit;
            resumeFromCheckpoint = o.resumeFromCheckpoint;
            handleSigterm = o.handleSigterm;
            fsdp = o.fsdp;
            lrExtras = o.lrExtras;
            useTensorboard = o.useTensorboard;
            earlyStoppingPatience = o.earlyStoppingPatience;
            loadBestModelAtEnd = o.loadBestModelAtEnd;
            lossWatchdogThreshold = o.lossWatchdogThreshold;
            lossWatchdogPatience = o.lossWatchdogPatience;
            lisa = o.lisa;
            restarts = o.restarts;
            eaft = o.eaft;
            diffusion = o.diffusion;
            fp16InPlace = o.fp16InPlace;
        }

        public Builder microBatchSize(int v) { microBatchSize = v; return this; }
        public Builder gradientAccumulationSteps(int v) { gradientAccumulationSteps = v; return this; }
        public Builder numEpochs(double v) { numEpochs = v; return this; }
        public Builder maxSteps(long v) { maxSteps = v; return this; }
        public Builder learningRate(double v) { learningRate = v; return this; }
        public Builder lrScheduler(String v) { lrScheduler = v; return this; }
        public Builder warmupSteps(long v) { warmupSteps = v; return this; }
        public Builder warmupRatio(double v) { warmupRatio = v; return this; }
        public Builder adam(AdamW.Hyper v) { adam = v; return this; }
        public Builder maxGradNorm(double v) { maxGradNorm = v; return this; }
        public Builder precision(Dtype v) { precision = v; return this; }
        public Builder gradientCheckpointing(boolean v) { gradientCheckpointing = v; return this; }
        public Builder seed(long v) { seed = v; return this; }
        public Builder loggingSteps(long v) { loggingSteps = v; return this; }
        public Builder evalSteps(double v) { evalSteps = v; return this; }
        public Builder evalsPerEpoch(long v) { evalsPerEpoch = v; return this; }
        public Builder saveSteps(double v) { saveSteps = v; return this; }
        public Builder savesPerEpoch(long v) { savesPerEpoch = v; return this; }
        public Builder saveTotalLimit(long v) { saveTotalLimit = v; return this; }
        public Builder resumeFromCheckpoint(String v) { resumeFromCheckpoint = Optional.ofNullable(v); return this; }
        public Builder handleSigterm(boolean v) { handleSigterm = v; return this; }
        public Builder fsdp(boolean v) { fsdp = v; return this; }
        public Builder lrExtras(LrSchedule.Extras v) { lrExtras = v; return this; }
        public Builder useTensorboard(boolean v) { useTensorboard = v; return this; }
        public Builder earlyStoppingPatience(long v) { earlyStoppingPatience = v; return this; }
        public Builder loadBestModelAtEnd(boolean v) { loadBestModelAtEnd = v; return this; }
        public Builder lossWatchdog(double threshold, long patience) {
            lossWatchdogThreshold = threshold;
            lossWatchdogPatience = patience;
            return this;
        }

        public Builder lisa(Lisa v) { lisa = v; return this; }
        public Builder restarts(ReLora.Settings v) { restarts = v; return this; }
        public Builder eaft(Eaft v) { eaft = v; return this; }
        public Builder diffusion(Diffusion v) { diffusion = v; return this; }
        public Builder fp16InPlace(boolean v) { fp16InPlace = v; return this; }

        /** @throws IllegalArgumentException as the record's constructor */
        public TrainerOptions build() {
            return new TrainerOptions(microBatchSize, gradientAccumulationSteps, numEpochs, maxSteps, learningRate,
                    lrScheduler, warmupSteps, warmupRatio, adam, maxGradNorm, precision, gradientCheckpointing, seed,
                    loggingSteps, evalSteps, evalsPerEpoch, saveSteps, savesPerEpoch, saveTotalLimit,
                    resumeFromCheckpoint, handleSigterm, fsdp, lrExtras, useTensorboard, earlyStoppingPatience,
                    loadBestModelAtEnd, lossWatchdogThreshold, lossWatchdogPatience, lisa, restarts, eaft, diffusion,
                    fp16InPlace);
        }
    }
}
