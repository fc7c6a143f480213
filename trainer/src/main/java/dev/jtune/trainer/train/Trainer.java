package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.Rope;
import dev.jtune.trainer.dist.ProcessGroup;
import dev.jtune.trainer.dist.RankZero;
import dev.jtune.trainer.dist.ShardedWeights;
import dev.jtune.trainer.optim.AdamW;
import dev.jtune.trainer.optim.GradClipping;
import dev.jtune.trainer.optim.GradScaler;
import dev.jtune.trainer.optim.Gradients;
import dev.jtune.trainer.optim.LrSchedule;
import dev.jtune.trainer.optim.ShardedAdamW;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
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
 * checkpointing). The tensors are whole again when {@code run} returns.
 */
public final class Trainer {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final ObjectMapper JSON_LINE = new ObjectMapper();
    public static final String METRICS_FILE = "metrics.jsonl";
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
    private final boolean main;
    private final ShardedWeights baseShards;
    private final boolean shardOptimizer;

    private AdamW optimizer;
    private ShardedAdamW sharded;
    private GradScaler scaler;
    private ForwardBackward fb;
    private NDManager root;
    private long globalStep;
    private long schedulerStep;
    private long tokensSeen;
    private final ArrayNode logHistory = JSON.createArrayNode();
    private Path lastCheckpoint;
    private long lastSavedStep = -1;
    private OptionalDouble lastEval = OptionalDouble.empty();
    private OptionalDouble firstEval = OptionalDouble.empty();

    private Trainer(TrainerOptions options, TrainableModel trainable, BatchPlan train, BatchPlan eval, Path outputDir,
            PrintStream console, ProcessGroup group, ShardedWeights baseShards) {
        this.options = options;
        this.trainable = trainable;
        this.train = train;
        this.eval = eval;
        this.outputDir = outputDir;
        this.group = group;
        this.world = group.worldSize();
        this.main = group.rank() == 0;
        this.baseShards = baseShards;
        this.shardOptimizer = options.fsdp() && world > 1;
        this.progress = new Progress(main ? console : new PrintStream(java.io.OutputStream.nullOutputStream()));
        this.plan = StepPlan.of(options, train.batchesPerEpoch(), eval != null && eval.batchesPerEpoch() > 0, world);
        this.schedule = LrSchedule.of(options.lrScheduler(), plan.warmupSteps(), plan.totalSteps());
        this.params = trainable.parameters();
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
        for (var e : params.entrySet()) {
            if (Kernels.get().dtypeOf(e.getValue()) != Dtype.FP32) {
                throw new IllegalArgumentException("trainable parameter " + e.getKey() + " is not fp32");
            }
            e.getValue().setRequiresGradient(true);
        }
        // TorchScript's profiling executor swaps in optimized graphs after the first calls of each kernel; the
        // optimized and the unoptimized graphs may round differently, so a resumed process (fresh executor)
        // would not reproduce an uninterrupted one bit for bit. The plain interpreter is the same every time.
        JniUtils.setGraphExecutorOptimize(false);
        Files.createDirectories(outputDir);
        RankZero.run(group, "clean up " + outputDir, () -> Checkpoints.cleanStale(outputDir));
        Object previousHandler = options.handleSigterm() ? SigtermFlag.install(stopRequested) : null;
        List<Double> losses = new ArrayList<>();
        try (NDManager m = Torch.newManager()) {
            root = m;
            Rope rope = Rope.of(trainable.model().config(), m);
            // FSDP gathers layer by layer, in forward and again in the recompute: it implies checkpointing.
            boolean checkpointing = options.gradientCheckpointing() || baseShards != null || shardOptimizer;
            fb = new ForwardBackward(trainable.model(), rope, checkpointing, options.seed(), fsdpHooks());
            scaler = options.precision() == Dtype.FP16 ? new GradScaler() : null;
            Optional<Path> resume = options.resumeFromCheckpoint().isPresent()
                    ? Checkpoints.resolve(options.resumeFromCheckpoint().get(), outputDir)
                    : Optional.empty();
            if (resume.isPresent()) {
                trainable.loadWeights(resume.get());
            }
            if (world > 1) {
                // Sharded layers' gradients never reach .grad (FSDP hands them to the optimizer's chunks).
                Replicas.materializeGradients(params.entrySet().stream()
                        .filter(e -> !shardOptimizer || ShardedAdamW.unitOf(e.getKey()) < 0)
                        .map(Map.Entry::getValue).toList(), m);
                Replicas.broadcast(group, params.values(), m);
            }
            if (shardOptimizer) {
                sharded = new ShardedAdamW(params, options.adam(), trainable::decays, group, m, true);
            } else {
                optimizer = new AdamW(params, options.adam(), trainable::decays, m);
            }
            if (resume.isPresent()) {
                restore(resume.get());
            } else {
                truncateMetrics(0);
            }
            trainable.setTraining(true);
            Gradients.zero(params.values());
            progress.line(String.format(Locale.ROOT,
                    "training: %d steps (%d per epoch, %d micro-batches x %d accumulation), %s, lr %s %.3g, "
                            + "warmup %d%s%s",
                    plan.totalSteps(), plan.stepsPerEpoch(), plan.batchesPerEpoch(), plan.gradientAccumulationSteps(),
                    options.precision().label(), schedule.label(), options.learningRate(), plan.warmupSteps(),
                    checkpointing ? ", gradient checkpointing" : "",
                    globalStep > 0 ? ", resumed at step " + globalStep : ""));
            if (world > 1) {
                progress.line(String.format(Locale.ROOT, "distributed: %d ranks, %s, %d micro-batches per step%s%s",
                        world, shardOptimizer ? "FSDP (trainable tensors, gradients and optimizer state sharded)"
                                : "data parallel",
                        plan.microBatchesPerStep(), sharded != null ? String.format(Locale.ROOT,
                                ", trainable tensors held: %.2f of %.2f MiB per rank", sharded.heldBytes() / 1048576.0,
                                sharded.totalBytes() / 1048576.0) : "",
                        baseShards != null ? String.format(Locale.ROOT,
                                ", base weights sharded: %.1f of %.1f MiB per rank", baseShards.shardBytes() / 1048576.0,
                                baseShards.totalBytes() / 1048576.0) : ""));
            }
            if (globalStep == 0 && eval != null && eval.batchesPerEpoch() > 0) {
                evaluate(); // the baseline, as transformers' eval_on_start: what training is measured against
                firstEval = lastEval;
            }
            Interval interval = new Interval();
            long runStart = System.nanoTime();
            long stepsThisRun = 0;
            boolean interrupted = false;
            while (globalStep < plan.totalSteps()) {
                long k = globalStep;
                StepOutcome o = step(k);
                globalStep = k + 1;
                stepsThisRun++;
                losses.add(o.loss);
                java.util.function.LongConsumer hook = afterStep;
                if (hook != null) {
                    hook.accept(globalStep);
                }
                interval.add(o);
                boolean last = globalStep == plan.totalSteps();
                if (globalStep % plan.loggingSteps() == 0 || last) {
                    double elapsed = (System.nanoTime() - runStart) / 1e9;
                    double eta = elapsed / stepsThisRun * (plan.totalSteps() - globalStep);
                    log(interval, eta);
                    interval = new Interval();
                }
                if (plan.evalEvery() > 0 && (globalStep % plan.evalEvery() == 0 || last)) {
                    evaluate();
                }
                // Sharded tensors have one owner per element: nothing to compare.
                if (sharded == null && (globalStep % IDENTITY_CHECK_EVERY == 0 || last)) {
                    Replicas.checkIdentical(group, params.values(), globalStep, root);
                }
                // Every rank stops at the same step boundary, whichever got the signal.
                boolean stop = world > 1
                        ? Replicas.sum(group, root, stopRequested.get() ? 1 : 0)[0] > 0
                        : stopRequested.get();
                if ((plan.saveEvery() > 0 && globalStep % plan.saveEvery() == 0) || last || stop) {
                    save();
                }
                if (stop && !last) {
                    progress.line("SIGTERM: checkpoint saved at step " + globalStep + "; stopping");
                    interrupted = true;
                    break;
                }
            }
            progress.finish();
            if (sharded != null) {
                sharded.gatherAll(); // the caller gets whole tensors (to export, generate, merge)
            }
            return new TrainingResult(globalStep, losses, firstEval, lastEval, Optional.ofNullable(lastCheckpoint), interrupted,
                    scaler == null ? 0 : scaler.skipped());
        } finally {
            progress.finish();
            if (optimizer != null) {
                optimizer.close();
            }
            if (sharded != null) {
                sharded.close();
            }
            if (baseShards != null) {
                baseShards.releaseAll();
            }
            if (options.handleSigterm()) {
                SigtermFlag.restore(previousHandler);
            }
        }
    }

    private record StepOutcome(double loss, double gradNorm, double lr, long tokens, long trainedTokens,
            boolean skipped, double seconds) {}

    /** Loss and throughput accumulated between two log lines (transformers logs the mean loss of the interval). */
    private static final class Interval {
        double lossSum;
        int steps;
        double lastGradNorm = Double.NaN;
        double lastLr;
        long tokens;
        long trainedTokens;
        double seconds;

        void add(StepOutcome o) {
            lossSum += o.loss;
            steps++;
            lastGradNorm = o.gradNorm;
            lastLr = o.lr;
            tokens += o.tokens;
            trainedTokens += o.trainedTokens;
            seconds += o.seconds;
        }
    }

    private StepOutcome step(long k) {
        long t0 = System.nanoTime();
        int epoch = plan.epochOf(k);
        int first = plan.firstBatch(k);
        int count = plan.batchCount(k);
        List<Batch> batches = new ArrayList<>(count);
        List<Integer> micro = new ArrayList<>(count);
        long n = 0;
        long tokens = 0;
        for (int i = group.rank(); i < count; i += world) {
            Batch b = train.batch(epoch, first + i);
            batches.add(b);
            micro.add(i);
            n += b.trainedTokens();
            tokens += b.tokens();
        }
        if (world > 1) {
            // The global token count, before backward: every rank divides its NLL by the same N.
            double[] sums = Replicas.sum(group, root, n, tokens);
            n = (long) sums[0];
            tokens = (long) sums[1];
        }
        tokensSeen += tokens;
        double lr = options.learningRate() * schedule.factor(schedulerStep);
        if (n == 0) {
            // Nothing to learn from: no update, as a step with zero gradients would still decay the weights.
            progress.line("step " + (k + 1) + ": no trained tokens in the batch; skipped");
            return new StepOutcome(Double.NaN, 0.0, lr, tokens, 0, true, (System.nanoTime() - t0) / 1e9);
        }
        double lossScale = scaler == null ? 1.0 : scaler.scale();
        double nll = 0;
        for (int i = 0; i < batches.size(); i++) {
            // The micro-batch's index within the global step seeds its dropout, whichever rank runs it.
            nll += fb.run(batches.get(i), n, lossScale, true, k, micro.get(i), root).nllSum();
        }
        // Sharded base weights are gathered in collectives, so every rank must run as many passes: a rank short
        // of a micro-batch (the end of an epoch) runs the step's first one again with a loss scaled by zero.
        for (int i = batches.size(); i < passes(count); i++) {
            fb.run(train.batch(epoch, first), n, 0.0, true, k, group.rank() + i * world, root);
        }
        if (world > 1) {
            nll = Replicas.sum(group, root, nll)[0];
        }
        double loss = nll / n;
        Collection<NDArray> values = params.values();
        if (!Double.isFinite(loss) && scaler == null) {
            throw diverged(k + 1, "loss is " + loss);
        }
        boolean skipped = false;
        double gradNorm;
        if (sharded != null) {
            sharded.reduceScatter();
            if (scaler != null) {
                sharded.scaleGradient(scaler.inverseScale());
                skipped = !sharded.gradientFinite();
            }
            if (skipped) {
                gradNorm = Double.NaN;
            } else {
                gradNorm = sharded.clip(options.maxGradNorm());
                if (!Double.isFinite(gradNorm)) {
                    throw diverged(k + 1, "gradient norm is " + gradNorm);
                }
                sharded.step(lr);
                schedulerStep++;
            }
            afterUpdate(k, skipped);
            Gradients.zero(values);
            return new StepOutcome(loss, gradNorm, lr, tokens, n, skipped, (System.nanoTime() - t0) / 1e9);
        }
        if (world > 1) {
            Replicas.allReduceGradients(group, values, root);
        }
        if (scaler != null) {
            Gradients.scale(values, scaler.inverseScale());
            skipped = !Gradients.allFinite(values);
        }
        if (skipped) {
            gradNorm = Double.NaN;
        } else {
            gradNorm = GradClipping.clip(values, options.maxGradNorm(), root);
            if (!Double.isFinite(gradNorm)) {
                throw diverged(k + 1, "gradient norm is " + gradNorm);
            }
            optimizer.step(lr);
            // transformers does not advance the scheduler when the (fp16) optimizer step was skipped.
            schedulerStep++;
        }
        afterUpdate(k, skipped);
        Gradients.zero(values);
        return new StepOutcome(loss, gradNorm, lr, tokens, n, skipped, (System.nanoTime() - t0) / 1e9);
    }

    /** Forward passes each rank runs for {@code count} micro-batches: its own share, or with FSDP the largest share. */
    private int passes(int count) {
        return baseShards == null && sharded == null ? 0 : (count + world - 1) / world;
    }

    private void afterUpdate(long k, boolean skipped) {
        if (scaler != null) {
            scaler.update(skipped);
            if (skipped) {
                progress.line(String.format(Locale.ROOT, "step %d: inf/NaN gradients in fp16; skipped, loss scale now %s",
                        k + 1, scaler.scale()));
            }
        }
    }

    private TrainingDivergedException diverged(long step, String what) {
        Gradients.zero(params.values());
        String where = lastCheckpoint != null ? "the last checkpoint is " + lastCheckpoint
                : latestCheckpointText();
        return new TrainingDivergedException(step, "step " + step + ": " + what + " (" + options.precision().label()
                + "); training stopped before updating the weights, nothing was saved for this step; " + where);
    }

    private String latestCheckpointText() {
        try {
            return Checkpoints.latest(outputDir).map(p -> "the last checkpoint is " + p).orElse("no checkpoint was saved");
        } catch (IOException e) {
            return "no checkpoint was saved";
        }
    }

    private void log(Interval in, double eta) {
        double loss = in.lossSum / in.steps;
        double epoch = plan.epochAfter(globalStep);
        double tps = in.seconds > 0 ? in.tokens / in.seconds : 0;
        double ttps = in.seconds > 0 ? in.trainedTokens / in.seconds : 0;
        long rss = Progress.rssBytes();
        progress.step(globalStep, plan.totalSteps(), epoch, loss, in.lastLr, in.lastGradNorm, tps, ttps, rss, eta);
        ObjectNode o = JSON_LINE.createObjectNode();
        o.put("step", globalStep);
        o.put("epoch", epoch);
        putNumber(o, "loss", loss);
        o.put("learning_rate", in.lastLr);
        putNumber(o, "grad_norm", in.lastGradNorm);
        o.put("tokens_per_second", tps);
        o.put("trained_tokens_per_second", ttps);
        o.put("memory_rss_mb", rss / (1024.0 * 1024.0));
        putNumber(o, "eta_seconds", eta);
        if (scaler != null) {
            o.put("loss_scale", scaler.scale());
            o.put("skipped_steps", scaler.skipped());
        }
        appendMetrics(o);
        logHistory.add(o);
    }

    /** JSON has no NaN/inf: such values are written as null. */
    private static void putNumber(ObjectNode o, String key, double v) {
        if (Double.isFinite(v)) {
            o.put(key, v);
        } else {
            o.putNull(key);
        }
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
                nll += fb.run(b, 1, 1.0, false, globalStep, i, root).nllSum();
                tokens += b.trainedTokens();
                mine++;
            }
            for (int i = mine; i < passes(eval.batchesPerEpoch()); i++) {
                fb.run(eval.batch(0, 0), 1, 1.0, false, globalStep, 0, root); // see step(): same passes everywhere
            }
            if (world > 1) {
                double[] sums = Replicas.sum(group, root, nll, tokens);
                nll = sums[0];
                tokens = (long) sums[1];
            }
            double loss = tokens == 0 ? Double.NaN : nll / tokens;
            double ppl = Math.exp(loss);
            lastEval = OptionalDouble.of(loss);
            progress.line(String.format(Locale.ROOT, "eval at step %d: loss %.4f, perplexity %.4f (%d tokens)",
                    globalStep, loss, ppl, tokens));
            ObjectNode o = JSON_LINE.createObjectNode();
            o.put("step", globalStep);
            o.put("epoch", plan.epochAfter(globalStep));
            putNumber(o, "eval_loss", loss);
            putNumber(o, "eval_perplexity", ppl);
            o.put("eval_tokens", tokens);
            appendMetrics(o);
            logHistory.add(o);
        } finally {
            trainable.setTraining(true);
        }
    }

    private void appendMetrics(ObjectNode o) {
        if (!main) {
            return;
        }
        try {
            Files.writeString(outputDir.resolve(METRICS_FILE), JSON_LINE.writeValueAsString(o) + "\n",
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(outputDir.resolve(METRICS_FILE) + ": " + e.getMessage(), e);
        }
    }

    /** Keeps the metrics lines of steps up to {@code step}: a resumed run rewrites what came after. */
    private void truncateMetrics(long step) throws IOException {
        Path file = outputDir.resolve(METRICS_FILE);
        if (!main || !Files.exists(file)) {
            return;
        }
        StringBuilder kept = new StringBuilder();
        for (String line : Files.readAllLines(file)) {
            if (line.isBlank()) continue;
            JsonNode n;
            try {
                n = JSON_LINE.readTree(line);
            } catch (IOException e) {
                continue; // a line cut by a crash
            }
            if (n.path("step").asLong(Long.MAX_VALUE) <= step) {
                kept.append(line).append('\n');
            }
        }
        Checkpoints.writeAtomically(file, kept.toString());
    }

    private void save() throws IOException {
        if (lastSavedStep == globalStep) {
            return;
        }
        if (sharded == null) {
            Replicas.checkIdentical(group, params.values(), globalStep, root);
        }
        ShardedAdamW.State state = sharded != null ? sharded.gatherState() : null; // a collective: every rank
        if (sharded != null) {
            sharded.gatherAll(); // rank 0 writes the whole tensors
        }
        // Rank 0 writes; the others learn whether the checkpoint exists before they train past it.
        RankZero.run(group, "write checkpoint-" + globalStep, () -> save(state));
        if (!main) {
            lastCheckpoint = outputDir.resolve("checkpoint-" + globalStep);
            lastSavedStep = globalStep;
        }
        if (sharded != null) {
            sharded.releaseAll();
        }
    }

    /** What ForwardBackward does around each decoder layer under FSDP: gather and free, and where gradients go. */
    private ForwardBackward.LayerHooks fsdpHooks() {
        return new ForwardBackward.LayerHooks() {
            @Override
            public void before(int layer) {
                if (sharded != null) {
                    sharded.gather(layer);
                }
            }

            @Override
            public void after(int layer) {
                if (baseShards != null) {
                    baseShards.release(layer);
                }
                if (sharded != null) {
                    sharded.release(layer);
                }
            }

            @Override
            public List<NDArray> shardedParameters(int layer) {
                return sharded == null ? List.of() : sharded.layerParameters(layer);
            }

            @Override
            public void gradients(int layer, NDList grads) {
                sharded.addGradients(layer, grads);
            }
        };
    }

    private void save(ShardedAdamW.State state) throws IOException {
        lastCheckpoint = Checkpoints.write(outputDir, globalStep, dir -> {
            trainable.saveWeights(dir);
            if (sharded != null) {
                sharded.write(dir.resolve(Checkpoints.OPTIMIZER_FILE), state);
            } else {
                optimizer.save(dir.resolve(Checkpoints.OPTIMIZER_FILE));
            }
            ObjectNode sched = JSON.createObjectNode();
            sched.put("lr_scheduler", schedule.label());
            sched.put("last_epoch", schedulerStep);
            sched.put("base_lr", options.learningRate());
            sched.put("warmup_steps", plan.warmupSteps());
            sched.put("total_steps", plan.totalSteps());
            sched.put("last_lr", options.learningRate() * schedule.factor(schedulerStep));
            writeJson(dir.resolve(Checkpoints.SCHEDULER_FILE), sched);
            ObjectNode rng = JSON.createObjectNode();
            rng.put("seed", options.seed());
            rng.put("global_step", globalStep);
            rng.put("scheme", "libtorch manual_seed(splitmix64(seed, step, micro_batch, layer)) before each decoder layer");
            writeJson(dir.resolve(Checkpoints.RNG_FILE), rng);
            ObjectNode data = JSON.createObjectNode();
            data.put("epoch", plan.epochOf(globalStep));
            data.put("batch_index", globalStep < plan.totalSteps() ? plan.firstBatch(globalStep) : 0);
            data.put("batches_per_epoch", plan.batchesPerEpoch());
            data.put("gradient_accumulation_steps", plan.gradientAccumulationSteps());
            data.put("world_size", world);
            writeJson(dir.resolve(Checkpoints.DATA_FILE), data);
            if (scaler != null) {
                ObjectNode s = JSON.createObjectNode();
                s.put("scale", scaler.scale());
                s.put("growth_tracker", scaler.growthTracker());
                s.put("skipped_steps", scaler.skipped());
                writeJson(dir.resolve(Checkpoints.SCALER_FILE), s);
            }
            writeJson(dir.resolve(Checkpoints.TRAINER_STATE), trainerState());
        });
        lastSavedStep = globalStep;
        Checkpoints.prune(outputDir, options.saveTotalLimit());
        progress.line("saved " + lastCheckpoint);
    }

    /** transformers' TrainerState fields (trainer_callback.py), plus jtune's scheduler position. */
    private ObjectNode trainerState() {
        ObjectNode s = JSON.createObjectNode();
        s.putNull("best_global_step");
        s.putNull("best_metric");
        s.putNull("best_model_checkpoint");
        s.put("epoch", plan.epochAfter(globalStep));
        s.put("eval_steps", plan.evalEvery());
        s.put("global_step", globalStep);
        s.put("is_hyper_param_search", false);
        s.put("is_local_process_zero", true);
        s.put("is_world_process_zero", true);
        s.set("log_history", logHistory.deepCopy());
        s.put("logging_steps", plan.loggingSteps());
        s.put("max_steps", plan.totalSteps());
        s.put("num_input_tokens_seen", tokensSeen);
        s.put("num_train_epochs", (long) Math.ceil((double) plan.totalSteps() / plan.stepsPerEpoch()));
        s.put("save_steps", plan.saveEvery());
        s.set("stateful_callbacks", JSON.createObjectNode());
        s.put("total_flos", 0);
        s.put("train_batch_size", options.microBatchSize());
        s.putNull("trial_name");
        s.putNull("trial_params");
        return s;
    }

    private void restore(Path dir) throws IOException {
        JsonNode state = JSON.readTree(dir.resolve(Checkpoints.TRAINER_STATE).toFile());
        JsonNode data = JSON.readTree(dir.resolve(Checkpoints.DATA_FILE).toFile());
        // The data position depends on the micro-batches per global step, GA x world size, not on either alone.
        int savedWorld = data.path("world_size").asInt(1);
        if (data.path("batches_per_epoch").asInt() != plan.batchesPerEpoch()
                || data.path("gradient_accumulation_steps").asInt() * savedWorld != plan.microBatchesPerStep()) {
            throw new IllegalArgumentException("resume_from_checkpoint: " + dir + " was made with "
                    + data.path("batches_per_epoch") + " micro-batches per epoch and gradient_accumulation_steps "
                    + data.path("gradient_accumulation_steps") + (savedWorld != 1 ? " x " + savedWorld + " ranks" : "")
                    + ", this run has " + plan.batchesPerEpoch() + " and " + plan.gradientAccumulationSteps()
                    + (world != 1 ? " x " + world + " ranks" : "") + "; the data position would not match");
        }
        // The weights were loaded (and broadcast) before the optimizer was built.
        if (sharded != null) {
            sharded.load(dir.resolve(Checkpoints.OPTIMIZER_FILE));
        } else {
            optimizer.load(dir.resolve(Checkpoints.OPTIMIZER_FILE));
        }
        JsonNode sched = JSON.readTree(dir.resolve(Checkpoints.SCHEDULER_FILE).toFile());
        schedulerStep = sched.path("last_epoch").asLong();
        if (scaler != null) {
            Path sf = dir.resolve(Checkpoints.SCALER_FILE);
            if (Files.exists(sf)) {
                JsonNode s = JSON.readTree(sf.toFile());
                scaler.restore(s.path("scale").asDouble(), s.path("growth_tracker").asInt(),
                        s.path("skipped_steps").asLong());
            }
        }
        globalStep = state.path("global_step").asLong();
        tokensSeen = state.path("num_input_tokens_seen").asLong();
        for (JsonNode n : state.path("log_history")) {
            logHistory.add(n);
        }
        lastSavedStep = globalStep;
        truncateMetrics(globalStep);
        progress.line("resuming from " + dir + " at step " + globalStep);
    }

    private static void writeJson(Path file, JsonNode node) throws IOException {
        Files.writeString(file, JSON.writeValueAsString(node) + "\n");
    }
}
