package dev.jtune.trainer.train;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalDouble;

/**
 * How a run ended.
 *
 * @param globalStep optimizer steps completed (including those of a resumed-from checkpoint)
 * @param losses the loss of each step this process ran, in order (mean NLL over the step's trained tokens)
 * @param initialEvalLoss the evaluation loss before the first step, on a fresh (not resumed) run with eval data
 * @param evalLoss the last evaluation loss, if any evaluation ran
 * @param lastCheckpoint the newest checkpoint written by this process, if any
 * @param interrupted true when SIGTERM stopped the run early (after checkpointing)
 * @param skippedSteps fp16 steps skipped for inf/NaN gradients
 */
public record TrainingResult(long globalStep, List<Double> losses, OptionalDouble initialEvalLoss, OptionalDouble evalLoss,
        Optional<Path> lastCheckpoint, boolean interrupted, long skippedSteps) {
    public TrainingResult {
        losses = List.copyOf(losses);
    }
}
