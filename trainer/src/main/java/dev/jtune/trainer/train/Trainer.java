package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.trainer.dist.ProcessGroup;
import dev.jtune.trainer.dist.RankZero;
import dev.jtune.trainer.dist.ShardedWeights;
import dev.jtune.trainer.optim.AdamW;
import dev.jtune.trainer.optim.GradScaler;
import dev.jtune.trainer.optim.LrSchedule;
import dev.jtune.trainer.optim.Optimizer;
import dev.jtune.trainer.optim.Replicas;
import dev.jtune.trainer.optim.ShardedAdamW;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The supervised fine-tuning loop: gradient accumulation, AdamW, learning-rate schedule, clipping, mixed
 * precision, gradient checkpointing, evaluation, logging and checkpoints with exact resume.
 *
 * <p>Each optimizer step takes its micro-batches, counts their trained tokens N first, and backpropagates
 * each micro-batch's summed NLL divided by N, so the accumulated gradient is that of the mean over all
 * trained tokens of the whole batch (not a mean of micro-batch means); the reported loss is total NLL / N.
 * Then: fp16 unscale and inf check (skipped steps are counted), clipping, AdamW, scheduler, zeroed gradients.
 *
 * <p>Determinism: before every decoder layer of every micro-batch libtorch's generator is seeded from
 * (seed, step, micro-batch, layer), so dropout depends only on those; the data position follows from the
 * step; a checkpoint therefore holds all the state a resumed run needs to continue bit for bit on CPU.
 *
 * <p>Data parallel ({@link #run(TrainerOptions, TrainableModel, BatchPlan, BatchPlan, Path, PrintStream, ProcessGroup,
 * ShardedWeights)} with W ranks): each step's GA × W micro-batches are dealt round-robin (rank r takes r, r+W,
 * ...; see {@link StepPlan}); the ranks all-reduce their trained-token counts before backward, so every rank
 * divides by the global N, and sum their gradients after it: the update is the one a single process with
 * {@code gradient_accumulation_steps = GA × W} makes, up to summation order. Trainable tensors start from rank
 * 0's (broadcast) and are compared by hash every {@value #IDENTITY_CHECK_EVERY} steps and at every checkpoint.
 * Rank 0 alone writes metrics, progress and checkpoints; the others wait for it and learn whether it succeeded
 * ({@link RankZero}), so that no rank trains past a checkpoint that failed. With
 * {@link TrainerOptions#fsdp()} the decoder layers' trainable tensors, their gradients and AdamW's state are
 * sharded ({@link ShardedAdamW}): a layer's tensors are gathered before its forward and its recompute and freed
 * after, its recomputed gradients reduce-scattered at once; frozen base weights loaded through
 * {@link ShardedWeights} are gathered per decoder layer alongside (FSDP requires and implies gradient
 * checkpointing; {@link FsdpLayers}). The tensors are whole again when {@code run} returns. Either way the step
 * talks to one {@link Optimizer}; what a checkpoint holds besides weights and moments is a {@link TrainingState}.
 */
public final class Trainer {
    public static final String METRICS_FILE = Metrics.FILE;
    /** Steps between checks that every rank holds the same trainable tensors. */
    static final int IDENTITY_CHECK_EVERY = 50;

    /** Test hook: called with the global step after each optimizer step (null: none). */
    static volatile java.util.function.LongConsumer afterStep;

    private final TrainerOptions options;
    private final TrainableModel trainable;
    private final BatchPlan train;
    private final BatchPlan eval;
    private final Path outputDir;
    private final Progress progress;
    private final StepPlan plan;
    private final LrSchedule schedule;
    private final Map<String, NDArray> params;
    private final AtomicBoolean stopRequested = new AtomicBoolean();
    private final ProcessGroup group;
    private final int world;
    private final ShardedWeights baseShards;
    private final boolean shardOptimizer;
    private final Metrics metrics;

    private Optimizer optimizer;
    private GradScaler scaler;
    private StepLog log;
    private ForwardBackward fb;
    private NDManager root;
    private long globalStep;
    private long schedulerStep;
    private long tokensSeen;
    private Path lastCheckpoint;
    private long lastSavedStep = -1;
    private OptionalDouble lastEval = OptionalDouble.empty();
    private final EarlyStopping early;
    private final boolean loadBest;
    private final LossWatchdog watchdog;
    /** LISA's decoder layer count and the draw in effect (its step; -1: none yet). */
    private int lisaLayers;
    private long lisaDrawnAt = -1;
    private ReLora relora;

    private Trainer(TrainerOptions options, TrainableModel trainable, BatchPlan train, BatchPlan eval, Path outputDir,
            PrintStream console, ProcessGroup group, ShardedWeights baseShards) {
        this.options = options;
        this.trainable = trainable;
        this.train = train;
        this.eval = eval;
        this.outputDir = outputDir;
        this.group = group;
        this.world = group.worldSize();
        boolean main = group.rank() == 0;
        this.baseShards = baseShards;
        this.shardOptimizer = options.fsdp() && world > 1;
        this.progress = new Progress(main ? console : new PrintStream(java.io.OutputStream.nullOutputStream()));
        this.plan = StepPlan.of(options, train.batchesPerEpoch(), eval != null && eval.batchesPerEpoch() > 0, world);
        this.schedule = LrSchedule.of(options.lrScheduler(), plan.warmupSteps(), plan.totalSteps(),
                options.lrExtras(), options.learningRate());
        this.params = trainable.parameters();
        this.metrics = new Metrics(outputDir, main, options.useTensorboard());
        this.early = new EarlyStopping(options.earlyStoppingPatience());
        // Axolotl passes load_best_model_at_end only with held-out data (val_set_size or test_datasets).
        this.loadBest = options.loadBestModelAtEnd() && eval != null && eval.batchesPerEpoch() > 0;
        this.watchdog = Double.isNaN(options.lossWatchdogThreshold()) ? null
                : new LossWatchdog(options.lossWatchdogThreshold(), options.lossWatchdogPatience());
    }

    /**
     * Trains {@code trainable} on {@code train}, evaluating on {@code eval} (null: no evaluation), writing
     * checkpoints and {@code metrics.jsonl} into {@code outputDir}, progress lines to {@code console}.
     *
     * @throws TrainingDivergedException when the loss or gradients become NaN/inf in fp32/bf16
     * @throws IllegalArgumentException for a trainable parameter that is not fp32, or a bad resume checkpoint
     */
    public static TrainingResult run(TrainerOptions options, TrainableModel trainable, BatchPlan train,
            BatchPlan eval, Path outputDir, PrintStream console) throws IOException {
        return run(options, trainable, train, eval, outputDir, console, ProcessGroup.single(), null);
    }

    /**
     * As {@link #run(TrainerOptions, TrainableModel, BatchPlan, BatchPlan, Path, PrintStream)} on one rank of
     * {@code group}: every rank calls it with the same options, model and data ({@code train} and {@code eval}
     * the full sets: each rank picks its share). {@code outputDir} may be shared: only rank 0 writes.
     *
     * @param baseShards the frozen base weights of {@code trainable.model()} when it was loaded through this
     *     factory (FSDP), else null
     * @throws dev.jtune.trainer.dist.DistException when the ranks' trainable tensors diverge
     */
    public static TrainingResult run(TrainerOptions options, TrainableModel trainable, BatchPlan train,
            BatchPlan eval, Path outputDir, PrintStream console, ProcessGroup group, ShardedWeights baseShards)
            throws IOException {
        return new Trainer(options, trainable, train, eval, outputDir.toAbsolutePath(), console, group, baseShards)
                .run();
    }

    private TrainingResult run() throws IOException {
        if (params.isEmpty()) {
            throw new IllegalArgumentException("nothing to train: the model has no trainable parameters");
        }
        if (options.earlyStoppingPatience() > 0 && (eval == null || eval.batchesPerEpoch() == 0)) {
            // Axolotl then runs no evaluation, and transformers' EarlyStoppingCallback stops the run at its start.
            throw new IllegalArgumentException("early_stopping_patience needs held-out data to evaluate on: set"
                    + " val_set_size or test_datasets");
        }
        for (var e : params.entrySet()) {
            // fp32 (also the fp32 master weights of a model computing in bf16/fp16), or bf16 weights trained in
            // place under bf16 (full fine-tuning of a bf16-loaded model, as transformers' Trainer does it: no fp32
            // master copy), or fp16 weights trained in place under float16: true (no AMP, no loss scaling). fp16
            // weights cannot be trained with fp16: true: GradScaler refuses to unscale fp16 gradients (torch:
            // "Attempting to unscale FP16 gradients").
            Dtype dtype = Kernels.get().dtypeOf(e.getValue());
            if (dtype != Dtype.FP32 && !(dtype == Dtype.BF16 && options.precision() == Dtype.BF16)
                    && !(dtype == Dtype.FP16 && options.fp16InPlace())) {
                throw new IllegalArgumentException("trainable parameter " + e.getKey() + " is "
                        + (dtype == null ? "not a float tensor" : dtype.label()) + "; trainable tensors are fp32, or"
                        + " bf16 with precision bf16, or fp16 with float16: true");
            }
            if ((dtype == Dtype.BF16 || dtype == Dtype.FP16) && shardOptimizer) {
                throw new IllegalArgumentException("trainable parameter " + e.getKey() + " is " + dtype.label()
                        + ": FSDP shards fp32 trainable tensors only (bf16 full fine-tuning trains data parallel)");
            }
            e.getValue().setRequiresGradient(true);
        }
        for (String name : trainable.frozenRows().keySet()) {
            if (shardOptimizer && ShardedAdamW.unitOf(name) >= 0) {
                throw new IllegalArgumentException("unfrozen_parameters: a row range on " + name + ", a decoder layer"
                        + " tensor that FSDP shards, is not supported; give the range on embed_tokens or lm_head, or"
                        + " train without fsdp");
            }
        }
        if (options.lisa() != null) {
            if (shardOptimizer) {
                throw new IllegalArgumentException("lisa_n_layers with fsdp is not supported: jtune's sharded"
                        + " optimizer updates every layer's shard; train LISA data parallel");
            }
            lisaLayers = (int) params.keySet().stream().mapToInt(Lisa::layerOf).filter(l -> l >= 0).distinct().count();
            options.lisa().draw(options.seed(), 0, lisaLayers); // too many layers asked: refused before training
        }
        if (options.restarts() != null && options.restarts().relora()) {
            if (!(trainable instanceof LoraTrainable) || shardOptimizer) {
                throw new IllegalArgumentException("relora: true needs a LoRA adapter trained without fsdp (and"
                        + " without unfrozen_parameters)");
            }
            if (options.resumeFromCheckpoint().isPresent()) {
                throw new IllegalArgumentException("resume_from_checkpoint with relora is not supported: jtune keeps"
                        + " the merged base of a ReLoRA run in memory, not in its checkpoints");
            }
        }
        Torch.setGraphOptimization(false); // a resumed process then rounds as an uninterrupted one
        keepFreedPagesWhenSmall(System.getenv("MALLOC_CONF"), Progress.rssBytes(), physicalMemory())
                .ifPresent(progress::line);
        Files.createDirectories(outputDir);
        RankZero.run(group, "clean up " + outputDir, () -> Checkpoints.cleanStale(outputDir));
        Object previousHandler = options.handleSigterm() ? SigtermFlag.install(stopRequested) : null;
        List<Double> losses = new ArrayList<>();
        try (NDManager m = Torch.newManager()) {
            root = m;
            Optional<Path> resume = options.resumeFromCheckpoint().isPresent()
                    ? Checkpoints.resolve(options.resumeFromCheckpoint().get(), outputDir)
                    : Optional.empty();
            if (resume.isPresent()) {
                trainable.loadWeights(resume.get());
            }
            optimizer = Optimizer.create(params, options.adam(), trainable::decays, group, shardOptimizer, m);
            if (options.restarts() != null && options.restarts().relora()) {
                relora = new ReLora(options.restarts(), (LoraTrainable) trainable, (AdamW) optimizer, options.seed());
            }
            ShardedAdamW sharded = optimizer instanceof ShardedAdamW s ? s : null;
            // FSDP gathers layer by layer, in forward and again in the recompute: it implies checkpointing.
            boolean checkpointing = options.gradientCheckpointing() || baseShards != null || shardOptimizer;
            fb = new ForwardBackward(trainable.model(), checkpointing, options.seed(),
                    sharded != null || baseShards != null ? new FsdpLayers(sharded, baseShards)
                            : ForwardBackward.LayerHooks.NONE, options.eaft(), options.diffusion());
            // fp16: true is torch AMP with its GradScaler; float16: true runs no AMP, so no loss scaling.
            scaler = options.precision() == Dtype.FP16 && !options.fp16InPlace() ? new GradScaler() : null;
            log = new StepLog(progress, metrics, plan, scaler);
            if (resume.isPresent()) {
                restore(resume.get());
            } else {
                metrics.resume(0, List.of());
            }
            trainable.setTraining(true);
            optimizer.zeroGradients();
            log.start(options, schedule.label(), checkpointing, globalStep);
            if (world > 1) {
                progress.line(FsdpLayers.describe(world, plan.microBatchesPerStep(), shardOptimizer, sharded, baseShards));
            }
            OptionalDouble firstEval = OptionalDouble.empty();
            if (globalStep == 0 && eval != null && eval.batchesPerEpoch() > 0) {
                evaluate(); // the baseline, as transformers' eval_on_start: what training is measured against
                firstEval = lastEval;
                early.evaluated(lastEval.getAsDouble(), 0, false); // reaches the callback, not the best model
            }
            boolean interrupted = train(losses);
            if (relora != null && !interrupted) {
                // Axolotl's run ends with the full merged model in output_dir (on_train_end / merge_and_unload).
                RankZero.run(group, "write the ReLoRA model", () -> relora.writeMerged(outputDir));
                progress.line("ReLoRA: " + relora.restarts() + " restarts; the merged model is " + outputDir
                        .resolve("model.safetensors"));
            }
            progress.finish();
            optimizer.gatherAll(); // the caller gets whole tensors (to export, generate, merge)
            if (!interrupted && loadBest && early.bestCheckpoint() != null) {
                // transformers' _load_best_model: the run ends on the weights of the lowest eval loss.
                trainable.loadWeights(early.bestCheckpoint());
                progress.line(String.format(java.util.Locale.ROOT, "load_best_model_at_end: loaded %s (eval loss %.4f"
                        + " at step %d)", early.bestCheckpoint(), early.best(), early.bestStep()));
                if (options.saveTotalLimit() == 1) {
                    Path best = early.bestCheckpoint();
                    RankZero.run(group, "keep the best checkpoint only", () -> Checkpoints.keepOnly(outputDir, best));
                }
            }
            return new TrainingResult(globalStep, losses, firstEval, lastEval, Optional.ofNullable(lastCheckpoint),
                    interrupted, scaler == null ? 0 : scaler.skipped());
        } finally {
            progress.finish();
            metrics.close();
            if (optimizer != null) {
                optimizer.close();
            }
            if (baseShards != null) {
                baseShards.releaseAll();
            }
            if (options.handleSigterm()) {
                SigtermFlag.restore(previousHandler);
            }
        }
    }

    /** MALLOC_CONF that tools/jemalloc.sh gives jtune (unless the user set one). */
    static final String JTUNE_MALLOC_CONF = "oversize_threshold:0,dirty_decay_ms:1000";
    /** Below this share of the machine's memory, a run keeps freed pages for jemalloc's default 10 s. */
    static final double SMALL_RUN_SHARE = 0.05;

    /**
     * jemalloc's freed-page decay for the steps. tools/jemalloc.sh starts jtune at 1 s, which keeps a 7B QLoRA step's
     * peak at 5.5 GiB where jemalloc's default 10 s gave 6.3 GiB (pages freed within a step and not reused in it stay
     * resident that long). A run resident in under 5% of the machine's memory after loading gets the 10 s back: its
     * short steps reuse those pages instead of faulting them in again (bench/train-step.sh, 21.6M: 39k page faults a
     * step at 1 s, 5k at 10 s), at a cost of at most a few percent of the memory. Only where MALLOC_CONF is jtune's
     * own; returns the log line when it changed the decay.
     */
    static Optional<String> keepFreedPagesWhenSmall(String mallocConf, long rssBytes, long physicalBytes) {
        if (!smallRunOnJtunesMallocConf(mallocConf, rssBytes, physicalBytes) || !Torch.setFreedPageDecay(10_000)) {
            return Optional.empty();
        }
        return Optional.of(String.format(Locale.ROOT, "native memory: freed pages kept 10 s (jemalloc's default), this"
                + " run being resident in %.2f GiB of the machine's %.1f GiB", rssBytes / 1073741824.0,
                physicalBytes / 1073741824.0));
    }

    /** The rule's condition: MALLOC_CONF is jtune's own and the run is resident in under 5% of known memory. */
    static boolean smallRunOnJtunesMallocConf(String mallocConf, long rssBytes, long physicalBytes) {
        return JTUNE_MALLOC_CONF.equals(mallocConf) && rssBytes > 0 && physicalBytes > 0
                && rssBytes < SMALL_RUN_SHARE * physicalBytes;
    }

    private static long physicalMemory() {
        return java.lang.management.ManagementFactory.getOperatingSystemMXBean()
                instanceof com.sun.management.OperatingSystemMXBean os ? os.getTotalMemorySize() : 0;
    }

    /**
     * {@link #step}, recorded by libtorch's profiler when {@code -Djtune.profileStep} names this step (0-based): the
     * operators' trace (Chrome trace JSON) goes to {@code -Djtune.profileOut} (default {@code profile.json}). For
     * finding where a step's time goes (bench/README); off unless asked for.
     */
    private StepLog.Outcome profiled(long k) {
        if (Long.getLong("jtune.profileStep", -1L) != k) {
            return step(k);
        }
        ai.djl.pytorch.jni.JniUtils.startProfile(false, true, false);
        try {
            return step(k);
        } finally {
            ai.djl.pytorch.jni.JniUtils.stopProfile(System.getProperty("jtune.profileOut", "profile.json"));
        }
    }

    /** The step loop, from {@code globalStep} to the end or a SIGTERM; true when stopped by the signal. */
    private boolean train(List<Double> losses) throws IOException {
        long runStart = System.nanoTime();
        long stepsThisRun = 0;
        while (globalStep < plan.totalSteps()) {
            trainable.stepBegins(globalStep);
            StepLog.Outcome o = profiled(globalStep);
            trainable.stepEnds(globalStep);
            globalStep++;
            stepsThisRun++;
            losses.add(o.loss());
            java.util.function.LongConsumer hook = afterStep;
            if (hook != null) {
                hook.accept(globalStep);
            }
            // Axolotl's watchdog runs in on_step_end, before this step's own log line exists.
            boolean lossTooHigh = watchdog != null && watchdog.stepEnded(metrics.newest());
            log.add(o);
            boolean last = globalStep == plan.totalSteps();
            if (globalStep % plan.loggingSteps() == 0 || last) {
                double elapsed = (System.nanoTime() - runStart) / 1e9;
                log.log(globalStep, elapsed / stepsThisRun * (plan.totalSteps() - globalStep));
            }
            boolean stopEarly = false;
            if (plan.evalEvery() > 0 && (globalStep % plan.evalEvery() == 0 || last)) {
                evaluate();
                stopEarly = early.evaluated(lastEval.getAsDouble(), globalStep, true);
            }
            if (globalStep % IDENTITY_CHECK_EVERY == 0 || last) {
                optimizer.checkReplicas(globalStep);
            }
            // Every rank stops at the same step boundary, whichever got the signal.
            boolean stop = Replicas.sum(group, root, stopRequested.get() ? 1 : 0)[0] > 0;
            if ((plan.saveEvery() > 0 && globalStep % plan.saveEvery() == 0) || last || stop) {
                save();
            }
            if (stop && !last) {
                progress.line("SIGTERM: checkpoint saved at step " + globalStep + "; stopping");
                return true;
            }
            if (lossTooHigh && !last) {
                progress.line("Loss is too high, stopping training (loss_watchdog_threshold): " + watchdog.violations()
                        + " steps in a row saw a logged loss above " + options.lossWatchdogThreshold() + "; stopped at"
                        + " step " + globalStep);
                return false;
            }
            if (stopEarly && !last) {
                progress.line(String.format(java.util.Locale.ROOT, "early_stopping_patience: %d evaluations without a"
                        + " lower eval loss than %.4f (step %d); stopping at step %d", early.counter(), early.best(),
                        early.bestStep(), globalStep));
                return false;
            }
        }
        return false;
    }

    private StepLog.Outcome step(long k) {
        long t0 = System.nanoTime();
        if (options.lisa() != null) {
            lisaSwitch(k);
        }
        if (relora != null && relora.restartsAt(k)) {
            progress.line(relora.restart(k));
        }
        int epoch = plan.epochOf(k);
        int first = plan.firstBatch(k);
        List<Integer> micro = plan.share(k, group.rank());
        List<Batch> batches = micro.stream().map(i -> train.batch(epoch, first + i)).toList();
        long n = batches.stream().mapToLong(Batch::trainedTokens).sum();
        long tokens = batches.stream().mapToLong(Batch::tokens).sum();
        // The global token count, before backward: every rank divides its NLL by the same N.
        double[] sums = Replicas.sum(group, root, n, tokens, batches.size());
        n = (long) sums[0];
        tokens = (long) sums[1];
        // The diffusion objective's micro-batch losses are each divided by the step's micro-batch count (see Diffusion).
        long denominator = options.diffusion() != null ? (long) sums[2] : n;
        tokensSeen += tokens;
        double lr = options.restarts() == null ? options.learningRate() * schedule.factor(schedulerStep)
                : options.restarts().schedule().lr(options.learningRate(), schedule, schedulerStep);
        if (n == 0) {
            // Nothing to learn from: no update, as a step with zero gradients would still decay the weights.
            progress.line("step " + (k + 1) + ": no trained tokens in the batch; skipped");
            return new StepLog.Outcome(Double.NaN, 0.0, lr, tokens, 0, true, (System.nanoTime() - t0) / 1e9);
        }
        double lossScale = scaler == null ? 1.0 : scaler.scale();
        double nll = 0;
        for (int i = 0; i < batches.size(); i++) {
            // The micro-batch's index within the global step seeds its dropout, whichever rank runs it.
            nll += fb.run(batches.get(i), denominator, lossScale, true, k, micro.get(i), root).nllSum();
        }
        // Sharded base weights are gathered in collectives, so every rank must run as many passes: a rank short
        // of a micro-batch (the end of an epoch) runs the step's first one again with a loss scaled by zero.
        for (int i = batches.size(); i < passes(plan.batchCount(k)); i++) {
            fb.run(train.batch(epoch, first), denominator, 0.0, true, k, group.rank() + i * world, root);
        }
        zeroFrozenRows();
        double loss = Replicas.sum(group, root, nll)[0] / denominator;
        if (!Double.isFinite(loss) && scaler == null) {
            throw diverged(k + 1, "loss is " + loss);
        }
        optimizer.reduceGradients();
        boolean skipped = false;
        if (scaler != null) {
            optimizer.scaleGradients(scaler.inverseScale());
            skipped = !optimizer.gradientsFinite();
        }
        double gradNorm = Double.NaN;
        if (!skipped) {
            gradNorm = optimizer.clipGradients(options.maxGradNorm());
            if (!Double.isFinite(gradNorm) && options.fp16InPlace()) {
                // Without loss scaling nothing skips the step (torch): an fp16 norm that overflowed (inf) has made
                // clip_grad_norm_'s coefficient 0 and the gradients 0 (an inf or nan value: nan), and the optimizer
                // steps on them. A loss that turns non-finite stops the run at the next step.
                progress.line("step " + (k + 1) + ": the fp16 gradient norm is " + gradNorm + " (float16: true, no loss"
                        + " scaling): " + (options.maxGradNorm() > 0 ? "clip_grad_norm_ multiplied the gradients by "
                        + (Double.isInfinite(gradNorm) ? "0" : "nan") + " and " : "") + "the optimizer steps, as torch's does");
            } else if (!Double.isFinite(gradNorm)) {
                throw diverged(k + 1, "gradient norm is " + gradNorm);
            }
            optimizer.step(lr);
            // transformers does not advance the scheduler when the (fp16) optimizer step was skipped.
            schedulerStep++;
        }
        if (scaler != null) {
            scaler.update(skipped);
            if (skipped) {
                log.fp16Overflow(k + 1);
            }
        }
        optimizer.zeroGradients();
        return new StepLog.Outcome(loss, gradNorm, lr, tokens, n, skipped, (System.nanoTime() - t0) / 1e9);
    }

    /**
     * LISA's on_step_begin before the step after {@code k} steps: the layers of the draw in effect train, the other
     * decoder layers are frozen in the optimizer. The draw depends on the step only, so a resumed run (starting at
     * any {@code k}) holds the uninterrupted run's layers.
     */
    private void lisaSwitch(long k) {
        Lisa lisa = options.lisa();
        long at = lisa.lastDraw(k);
        if (at == lisaDrawnAt) {
            return;
        }
        int[] layers = lisa.draw(options.seed(), at, lisaLayers);
        java.util.Set<Integer> active = new java.util.HashSet<>();
        for (int l : layers) active.add(l);
        optimizer.freeze(name -> {
            int layer = Lisa.layerOf(name);
            return layer >= 0 && !active.contains(layer);
        });
        lisaDrawnAt = at;
        progress.line("LISA: step " + (k + 1) + " on, decoder layers " + java.util.Arrays.toString(layers) + " of "
                + lisaLayers + " train (with everything outside model.layers)");
    }

    /**
     * Zeroes the gradient rows {@link TrainableModel#frozenRows()} names, as Axolotl's gradient hook does in each
     * backward: the sum over micro-batches of zeroed rows is zero, so once per step is the same.
     */
    private void zeroFrozenRows() {
        for (var e : trainable.frozenRows().entrySet()) {
            try (NDArray grad = dev.jtune.model.engine.Autograd.gradient(params.get(e.getKey()))) {
                if (grad == null) continue; // backward did not reach it: nothing to zero
                for (long[] r : e.getValue()) {
                    grad.set(new ai.djl.ndarray.index.NDIndex(r[0] + ":" + r[1]), 0f);
                }
            }
        }
    }

    /** Forward passes each rank runs for {@code count} micro-batches: its own share, or with FSDP the largest share. */
    private int passes(int count) {
        return baseShards == null && !shardOptimizer ? 0 : (count + world - 1) / world;
    }

    private TrainingDivergedException diverged(long step, String what) {
        optimizer.zeroGradients();
        String where = lastCheckpoint != null ? "the last checkpoint is " + lastCheckpoint
                : Checkpoints.describeLatest(outputDir);
        return new TrainingDivergedException(step, "step " + step + ": " + what + " (" + options.precision().label()
                + "); training stopped before updating the weights, nothing was saved for this step; " + where);
    }

    /** Eval loss = total NLL / total trained tokens over every eval batch, without autograd or dropout. */
    private void evaluate() {
        trainable.setTraining(false);
        try {
            double nll = 0;
            long tokens = 0;
            int mine = 0;
            for (int i = group.rank(); i < eval.batchesPerEpoch(); i += world) {
                Batch b = eval.batch(0, i);
                ForwardBackward.Result r = fb.run(b, 1, 1.0, false, globalStep, i, root);
                nll += r.nllSum();
                tokens += r.trainedTokens(); // the batch's trained tokens (its rows with the diffusion objective)
                mine++;
            }
            for (int i = mine; i < passes(eval.batchesPerEpoch()); i++) {
                fb.run(eval.batch(0, 0), 1, 1.0, false, globalStep, 0, root); // see step(): same passes everywhere
            }
            double[] sums = Replicas.sum(group, root, nll, tokens);
            nll = sums[0];
            tokens = (long) sums[1];
            double loss = tokens == 0 ? Double.NaN : nll / tokens;
            lastEval = OptionalDouble.of(loss);
            log.eval(globalStep, loss, tokens, options.diffusion() != null);
        } finally {
            trainable.setTraining(true);
        }
    }

    private void save() throws IOException {
        if (lastSavedStep == globalStep) {
            return;
        }
        optimizer.checkReplicas(globalStep);
        Optimizer.StateWriter moments = optimizer.gatherState(); // a collective: every rank
        optimizer.gatherAll(); // rank 0 writes the whole tensors
        // Rank 0 writes; the others learn whether the checkpoint exists before they train past it.
        early.saved(outputDir, globalStep); // before rotation, which keeps the best (transformers' order)
        RankZero.run(group, "write checkpoint-" + globalStep, () -> {
            lastCheckpoint = Checkpoints.write(outputDir, globalStep, dir -> {
                trainable.saveWeights(dir);
                moments.write(dir.resolve(Checkpoints.OPTIMIZER_FILE));
                Checkpoints.writeState(dir, state());
            });
            Checkpoints.prune(outputDir, options.saveTotalLimit(), loadBest ? early.bestCheckpoint() : null);
            progress.line("saved " + lastCheckpoint);
        });
        lastCheckpoint = outputDir.resolve("checkpoint-" + globalStep);
        lastSavedStep = globalStep;
        optimizer.releaseAll();
    }

    /** The state a checkpoint written now holds. */
    private TrainingState state() {
        return new TrainingState(globalStep, plan.epochAfter(globalStep), tokensSeen, metrics.history(),
                new TrainingState.Scheduler(schedule.label(), schedulerStep, options.learningRate(), plan.warmupSteps(),
                        plan.totalSteps(), options.learningRate() * schedule.factor(schedulerStep)),
                options.seed(),
                new TrainingState.DataPosition(plan.epochOf(globalStep),
                        globalStep < plan.totalSteps() ? plan.firstBatch(globalStep) : 0, plan.batchesPerEpoch(),
                        plan.gradientAccumulationSteps(), world),
                scaler == null ? Optional.empty()
                        : Optional.of(new TrainingState.Scaler(scaler.scale(), scaler.growthTracker(), scaler.skipped())),
                new TrainingState.Plan(plan.evalEvery(), plan.loggingSteps(), plan.totalSteps(),
                        (long) Math.ceil((double) plan.totalSteps() / plan.stepsPerEpoch()), plan.saveEvery(),
                        options.microBatchSize()));
    }

    private void restore(Path dir) throws IOException {
        TrainingState state = Checkpoints.readState(dir);
        state.data().requireResumableWith(plan, dir);
        // The weights were loaded (and broadcast) before the optimizer was built.
        optimizer.load(dir.resolve(Checkpoints.OPTIMIZER_FILE));
        schedulerStep = state.scheduler().lastEpoch();
        if (scaler != null && state.scaler().isPresent()) {
            TrainingState.Scaler s = state.scaler().get();
            scaler.restore(s.scale(), s.growthTracker(), s.skippedSteps());
        }
        globalStep = state.globalStep();
        tokensSeen = state.tokensSeen();
        lastSavedStep = globalStep;
        metrics.resume(globalStep, state.logHistory());
        early.replay(state.logHistory(), outputDir);
        progress.line("resuming from " + dir + " at step " + globalStep);
    }
}
