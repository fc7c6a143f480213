package dev.jtune.trainer.train;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Optional;

/**
 * Everything besides the weights and the optimizer's moments that a checkpoint holds, so that a resumed run
 * continues bit for bit: written and read by {@link Checkpoints#writeState} / {@link Checkpoints#readState} as
 * transformers' {@code trainer_state.json} plus {@code scheduler.json}, {@code rng_state.json},
 * {@code data_state.json} and (fp16) {@code scaler.json}.
 *
 * @param globalStep optimizer steps done
 * @param epoch fractional epochs done ({@code trainer_state.json}'s {@code epoch})
 * @param tokensSeen input tokens of every step so far ({@code num_input_tokens_seen})
 * @param logHistory the metrics lines so far, as transformers' {@code log_history}
 * @param scheduler the learning-rate schedule and its position
 * @param seed the run's seed; dropout draws from libtorch's generator seeded per (seed, step, micro-batch, layer)
 * @param data where in the data the next step starts, and the batch layout that position assumes
 * @param scaler the fp16 loss scaler, when training in fp16
 * @param plan the run's step counts, recorded as transformers records them
 */
public record TrainingState(long globalStep, double epoch, long tokensSeen, List<JsonNode> logHistory,
        Scheduler scheduler, long seed, DataPosition data, Optional<Scaler> scaler, Plan plan) {

    public TrainingState {
        logHistory = List.copyOf(logHistory);
    }

    /**
     * @param name {@code lr_scheduler}
     * @param lastEpoch steps the scheduler has advanced (torch's {@code last_epoch}; skipped fp16 steps do not count)
     */
    public record Scheduler(String name, long lastEpoch, double baseLr, long warmupSteps, long totalSteps,
            double lastLr) {}

    /**
     * @param epoch the epoch of the next step
     * @param batchIndex its first micro-batch within that epoch's seeded order
     * @param worldSize ranks that took the micro-batches; with {@code gradientAccumulationSteps} it fixes the
     *     micro-batches per step, which a resumed run must keep
     */
    public record DataPosition(int epoch, int batchIndex, int batchesPerEpoch, int gradientAccumulationSteps,
            int worldSize) {
        /**
         * Refuses to resume a run whose data position would not match this one's: the position depends on the
         * micro-batches per epoch and per global step (GA x world size), not on GA or the world size alone.
         *
         * @throws IllegalArgumentException naming the checkpoint and both layouts
         */
        void requireResumableWith(StepPlan plan, java.nio.file.Path checkpoint) {
            if (batchesPerEpoch != plan.batchesPerEpoch()
                    || gradientAccumulationSteps * worldSize != plan.microBatchesPerStep()) {
                throw new IllegalArgumentException("resume_from_checkpoint: " + checkpoint + " was made with "
                        + batchesPerEpoch + " micro-batches per epoch and gradient_accumulation_steps "
                        + gradientAccumulationSteps + (worldSize != 1 ? " x " + worldSize + " ranks" : "")
                        + ", this run has " + plan.batchesPerEpoch() + " and " + plan.gradientAccumulationSteps()
                        + (plan.worldSize() != 1 ? " x " + plan.worldSize() + " ranks" : "")
                        + "; the data position would not match");
            }
        }
    }

    /** {@code torch.amp.GradScaler}'s state, and the steps it skipped. */
    public record Scaler(double scale, int growthTracker, long skippedSteps) {}

    /** The step counts transformers writes into {@code trainer_state.json}. */
    public record Plan(long evalSteps, long loggingSteps, long maxSteps, long numTrainEpochs, long saveSteps,
            long trainBatchSize) {}
}
