package dev.jtune.trainer.train;

import dev.jtune.trainer.optim.LrSchedule;

/**
 * How a run divides into optimizer steps: {@code ceil(batches / gradient_accumulation_steps)} steps per epoch
 * (the last one of an epoch takes the leftover micro-batches, as transformers' Trainer), the total from
 * {@code max_steps} or {@code ceil(num_epochs * steps_per_epoch)}, and the logging, evaluation and save
 * intervals in steps (0 = never).
 *
 * <p>Optimizer step {@code k} (0-based) is micro-batches {@code [j*GA, min((j+1)*GA, B))} of epoch
 * {@code k / stepsPerEpoch} with {@code j = k % stepsPerEpoch}: the data position follows from the step alone.
 */
public record StepPlan(int batchesPerEpoch, int gradientAccumulationSteps, long stepsPerEpoch, long totalSteps,
        long warmupSteps, long loggingSteps, long evalEvery, long saveEvery) {

    /** The plan for {@code options} over {@code batchesPerEpoch} micro-batches per epoch. */
    public static StepPlan of(TrainerOptions o, int batchesPerEpoch, boolean hasEval) {
        if (batchesPerEpoch <= 0) {
            throw new IllegalArgumentException("the training data holds no batches");
        }
        int ga = o.gradientAccumulationSteps();
        long perEpoch = (batchesPerEpoch + ga - 1) / ga;
        long total = o.maxSteps() > 0 ? o.maxSteps() : (long) Math.ceil(o.numEpochs() * perEpoch);
        total = Math.max(total, 1);
        long warmup = LrSchedule.warmupSteps(o.warmupSteps(), o.warmupRatio(), total);
        long logging = o.loggingSteps() > 0 ? o.loggingSteps() : Math.max(Math.min((long) (0.005 * total), 10), 1);
        long eval = 0;
        if (hasEval) {
            eval = interval(o.evalSteps(), o.evalsPerEpoch(), perEpoch, total);
        }
        long save = interval(o.saveSteps(), o.savesPerEpoch(), perEpoch, total);
        return new StepPlan(batchesPerEpoch, ga, perEpoch, total, warmup, logging, eval, save);
    }

    /** {@code *_steps} (count or fraction of total, ceil as transformers), else per epoch ({@code *_per_epoch}, default 1). */
    private static long interval(double steps, long perEpochCount, long stepsPerEpoch, long total) {
        if (!Double.isNaN(steps)) {
            return steps < 1 ? Math.max(1, (long) Math.ceil(total * steps)) : (long) steps;
        }
        long n = perEpochCount > 0 ? perEpochCount : 1;
        return Math.max(1, stepsPerEpoch / n);
    }

    /** The 0-based epoch of 0-based step {@code k}. */
    public int epochOf(long k) {
        return (int) (k / stepsPerEpoch);
    }

    /** First micro-batch index (within its epoch) of 0-based step {@code k}. */
    public int firstBatch(long k) {
        return (int) ((k % stepsPerEpoch) * gradientAccumulationSteps);
    }

    /** Number of micro-batches of 0-based step {@code k}. */
    public int batchCount(long k) {
        int first = firstBatch(k);
        return Math.min(gradientAccumulationSteps, batchesPerEpoch - first);
    }

    /** Fractional epoch reached after completing {@code steps} steps, as transformers logs it. */
    public double epochAfter(long steps) {
        return (double) steps / stepsPerEpoch;
    }
}
