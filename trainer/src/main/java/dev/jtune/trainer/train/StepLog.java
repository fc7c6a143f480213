package dev.jtune.trainer.train;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.trainer.optim.GradScaler;

/**
 * The training log: steps accumulate between two log lines (transformers logs the mean loss of the interval),
 * then one progress line goes to the console and one JSON line to {@code metrics.jsonl}; evaluations likewise.
 */
final class StepLog {
    /** What one optimizer step reports. */
    record Outcome(double loss, double gradNorm, double lr, long tokens, long trainedTokens, boolean skipped,
            double seconds) {}

    private final Progress progress;
    private final Metrics metrics;
    private final StepPlan plan;
    private final GradScaler scaler; // null unless fp16
    private double lossSum;
    private int steps;
    private double lastGradNorm = Double.NaN;
    private double lastLr;
    private long tokens;
    private long trainedTokens;
    private double seconds;

    StepLog(Progress progress, Metrics metrics, StepPlan plan, GradScaler scaler) {
        this.progress = progress;
        this.metrics = metrics;
        this.plan = plan;
        this.scaler = scaler;
    }

    /** The line that opens a run (or a resumed one). */
    void start(TrainerOptions options, String schedule, boolean checkpointing, long resumedAt) {
        progress.line(String.format(java.util.Locale.ROOT,
                "training: %d steps (%d per epoch, %d micro-batches x %d accumulation), %s, lr %s %.3g, warmup %d%s%s%s",
                plan.totalSteps(), plan.stepsPerEpoch(), plan.batchesPerEpoch(), plan.gradientAccumulationSteps(),
                options.precision().label(), schedule, options.learningRate(), plan.warmupSteps(),
                checkpointing ? ", gradient checkpointing" : "",
                (options.eaft() == null ? "" : String.format(java.util.Locale.ROOT, ", EAFT loss (entropy^%s of the"
                        + " top-%d logits times each token's NLL)", options.eaft().alpha(), options.eaft().k()))
                        + (options.diffusion() == null ? "" : String.format(java.util.Locale.ROOT, ", diffusion"
                        + " objective (mask token %d, eps %s, importance weighting %s, bidirectional attention)",
                        options.diffusion().maskTokenId(), options.diffusion().eps(),
                        options.diffusion().importanceWeighting() ? "on" : "off")),
                resumedAt > 0 ? ", resumed at step " + resumedAt : ""));
    }

    void add(Outcome o) {
        lossSum += o.loss();
        steps++;
        lastGradNorm = o.gradNorm();
        lastLr = o.lr();
        tokens += o.tokens();
        trainedTokens += o.trainedTokens();
        seconds += o.seconds();
    }

    /** Writes the interval's line at {@code globalStep} and starts a new interval. */
    void log(long globalStep, double etaSeconds) {
        double loss = lossSum / steps;
        double epoch = plan.epochAfter(globalStep);
        double tps = seconds > 0 ? tokens / seconds : 0;
        double ttps = seconds > 0 ? trainedTokens / seconds : 0;
        long rss = Progress.rssBytes();
        progress.step(globalStep, plan.totalSteps(), epoch, loss, lastLr, lastGradNorm, tps, ttps, rss, etaSeconds);
        ObjectNode o = metrics.line(globalStep, epoch);
        Metrics.putNumber(o, "loss", loss);
        o.put("learning_rate", lastLr);
        Metrics.putNumber(o, "grad_norm", lastGradNorm);
        o.put("tokens_per_second", tps);
        o.put("trained_tokens_per_second", ttps);
        // The interval's raw counts, so a step's time is known even when rows are not full (bench/scale.sh).
        o.put("tokens", tokens);
        o.put("trained_tokens", trainedTokens);
        o.put("step_seconds", seconds / steps);
        o.put("memory_rss_mb", rss / (1024.0 * 1024.0));
        Metrics.putNumber(o, "eta_seconds", etaSeconds);
        if (scaler != null) {
            o.put("loss_scale", scaler.scale());
            o.put("skipped_steps", scaler.skipped());
        }
        metrics.add(o);
        lossSum = 0;
        steps = 0;
        lastGradNorm = Double.NaN;
        tokens = 0;
        trainedTokens = 0;
        seconds = 0;
    }

    /** A step whose fp16 gradients overflowed: skipped, the loss scale lowered. */
    void fp16Overflow(long step) {
        progress.line(String.format(java.util.Locale.ROOT,
                "step %d: inf/NaN gradients in fp16; skipped, loss scale now %s", step, scaler.scale()));
    }

    /** An evaluation's result at {@code globalStep}: eval loss (mean NLL per trained token) and perplexity. */
    void eval(long globalStep, double loss, long evalTokens) {
        eval(globalStep, loss, evalTokens, false);
    }

    /**
     * @param diffusionRows the diffusion objective's eval loss: a mean over {@code evalTokens} rows, whose exponential
     *     is no perplexity (none is printed or written)
     */
    void eval(long globalStep, double loss, long evalTokens, boolean diffusionRows) {
        ObjectNode o = metrics.line(globalStep, plan.epochAfter(globalStep));
        Metrics.putNumber(o, "eval_loss", loss);
        if (diffusionRows) {
            progress.line(String.format(java.util.Locale.ROOT, "eval at step %d: diffusion loss %.4f (%d rows)",
                    globalStep, loss, evalTokens));
            o.put("eval_rows", evalTokens);
        } else {
            double ppl = Math.exp(loss);
            progress.line(String.format(java.util.Locale.ROOT, "eval at step %d: loss %.4f, perplexity %.4f (%d tokens)",
                    globalStep, loss, ppl, evalTokens));
            Metrics.putNumber(o, "eval_perplexity", ppl);
            o.put("eval_tokens", evalTokens);
        }
        metrics.add(o);
    }
}
