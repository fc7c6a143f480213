package dev.jtune.trainer.train;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * transformers' {@code EarlyStoppingCallback} as Axolotl wires it ({@code early_stopping_patience}, threshold 0,
 * {@code metric_for_best_model} {@code eval_loss}, lower is better) with the Trainer's best-model bookkeeping
 * ({@code _determine_best_metric}, {@code best_model_checkpoint}) for {@code load_best_model_at_end}.
 *
 * <p>After each evaluation: the callback first compares the loss with the best so far (before it is updated): if
 * there is none yet, or the loss is lower (by more than the threshold, 0), the patience counter resets, otherwise it
 * grows; training stops when it reaches the patience. Then the Trainer updates the best (strictly lower) and its
 * step. The evaluation before the first step ({@code eval_on_start}) reaches the callback but not the best-model
 * update. When a checkpoint is saved, the best checkpoint becomes {@code checkpoint-<best step>} if that folder
 * exists (a best step that was not a save step leaves the previous one).
 *
 * <p>Its state is a function of the evaluations so far, so a resumed run rebuilds it from the checkpoint's log
 * history ({@link #replay}).
 */
final class EarlyStopping {
    private final long patience;
    private long counter;
    private double best = Double.NaN; // NaN: None
    private long bestStep = -1;
    private Path bestCheckpoint;
    private boolean savedBest; // whether checkpoint-<bestStep> was written

    /** @param patience {@code early_stopping_patience}; 0 only tracks the best (load_best_model_at_end alone) */
    EarlyStopping(long patience) {
        this.patience = patience;
    }

    /**
     * One evaluation at {@code step}; {@code duringTraining} false for the one before the first step.
     *
     * @return whether training should stop
     */
    boolean evaluated(double loss, long step, boolean duringTraining) {
        // EarlyStoppingCallback.check_metric_value: best_metric is None, or np.less and |diff| > 0.0.
        if (Double.isNaN(best) || (loss < best && Math.abs(loss - best) > 0.0)) {
            counter = 0;
        } else {
            counter++;
        }
        if (duringTraining) {
            // Trainer._determine_best_metric: best starts at +inf; NaN is never less.
            if (Double.isNaN(best)) best = Double.POSITIVE_INFINITY;
            if (loss < best) {
                best = loss;
                bestStep = step;
                savedBest = false;
            }
        }
        return patience > 0 && counter >= patience;
    }

    /**
     * After a checkpoint was saved at {@code step}: the best checkpoint is the best step's folder when one was saved
     * (at this step or before: the best is never pruned).
     */
    void saved(Path outputDir, long step) {
        if (step == bestStep) savedBest = true;
        if (bestStep >= 0 && savedBest) bestCheckpoint = outputDir.resolve("checkpoint-" + bestStep);
    }

    /** Rebuilds the state from a resumed checkpoint's log history (its eval_loss lines, in order). */
    void replay(List<JsonNode> history, Path outputDir) {
        for (JsonNode line : history) {
            if (line.has("eval_loss")) {
                long step = line.get("step").asLong();
                JsonNode v = line.get("eval_loss");
                evaluated(v.isNumber() ? v.asDouble() : Double.NaN, step, step > 0);
            }
        }
        if (bestStep >= 0 && Files.isDirectory(outputDir.resolve("checkpoint-" + bestStep))) {
            savedBest = true;
            bestCheckpoint = outputDir.resolve("checkpoint-" + bestStep);
        }
    }

    long counter() {
        return counter;
    }

    double best() {
        return best;
    }

    long bestStep() {
        return bestStep;
    }

    /** The checkpoint load_best_model_at_end loads, or null. */
    Path bestCheckpoint() {
        return bestCheckpoint;
    }
}
