package dev.jtune.trainer.train;

import dev.jtune.trainer.optim.LrSchedule;
import java.util.ArrayList;
import java.util.List;

/**
 * How a run divides into optimizer steps: {@code ceil(batches / gradient_accumulation_steps)} steps per epoch
 * (the last one of an epoch takes the leftover micro-batches, as transformers' Trainer), the total from
 * {@code max_steps} or {@code ceil(num_epochs * steps_per_epoch)}, and the logging, evaluation and save
 * intervals in steps (0 = never).
 *
 * <p>Optimizer step {@code k} (0-based) is micro-batches {@code [j*S, min((j+1)*S, B))} of epoch
 * {@code k / stepsPerEpoch} with {@code j = k % stepsPerEpoch} and S = GA × world size micro-batches per
 * (global) step: the data position follows from the step alone. In a world of W ranks, rank r takes the
 * micro-batches {@code r, r+W, r+2W, ...} of the step, so the union is what one process with
 * {@code gradient_accumulation_steps = GA × W} sees.
 */
public record StepPlan(int batchesPerEpoch, int gradientAccumulationSteps, long stepsPerEpoch, long totalSteps,
        long warmupSteps, long loggingSteps, long evalEvery, long saveEvery, int worldSize) {

    /** The plan for {@code options} over {@code batchesPerEpoch} micro-batches per epoch, one process. */
    public static StepPlan of(TrainerOptions o, int batchesPerEpoch, boolean hasEval) {
        return of(o, batchesPerEpoch, hasEval, 1);
    }

    /** The plan for {@code worldSize} ranks sharing each step's micro-batches. */
    public static StepPlan of(TrainerOptions o, int batchesPerEpoch, boolean hasEval, int worldSize) {
        if (batchesPerEpoch <= 0) {
            throw new IllegalArgumentException("the training data holds no batches");
        }
        if (worldSize < 1) {
            throw new IllegalArgumentException("world size must be at least 1, got " + worldSize);
        }
        int ga = o.gradientAccumulationSteps();
        int perStep = Math.multiplyExact(ga, worldSize);
        long perEpoch = (batchesPerEpoch + perStep - 1) / perStep;
        long total = o.maxSteps() > 0 ? o.maxSteps() : (long) Math.ceil(o.numEpochs() * perEpoch);
        total = Math.max(total, 1);
        long warmup = LrSchedule.warmupSteps(o.warmupSteps(), o.warmupRatio(), total);
        long logging = o.loggingSteps() > 0 ? o.loggingSteps() : Math.max(Math.min((long) (0.005 * total), 10), 1);
        long eval = 0;
        if (hasEval) {
            eval = interval(o.evalSteps(), o.evalsPerEpoch(), perEpoch, total);
        }
        long save = interval(o.saveSteps(), o.savesPerEpoch(), perEpoch, total);
        return new StepPlan(batchesPerEpoch, ga, perEpoch, total, warmup, logging, eval, save, worldSize);
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

    /** Micro-batches of one full step over all ranks: GA × world size. */
    public int microBatchesPerStep() {
        return gradientAccumulationSteps * worldSize;
    }

    /** First micro-batch index (within its epoch) of 0-based step {@code k}. */
    public int firstBatch(long k) {
        return (int) ((k % stepsPerEpoch) * microBatchesPerStep());
    }

    /** Number of micro-batches of 0-based step {@code k}, over all ranks. */
    public int batchCount(long k) {
        int first = firstBatch(k);
        return Math.min(microBatchesPerStep(), batchesPerEpoch - first);
    }

    /**
     * The micro-batches of 0-based step {@code k} that rank {@code rank} runs, as indices within the step (add
     * {@link #firstBatch} for the epoch's index): r, r+W, r+2W, ... The index also seeds the micro-batch's dropout.
     */
    public List<Integer> share(long k, int rank) {
        List<Integer> mine = new ArrayList<>();
        for (int i = rank; i < batchCount(k); i += worldSize) {
            mine.add(i);
        }
        return mine;
    }

    /** Fractional epoch reached after completing {@code steps} steps, as transformers logs it. */
    public double epochAfter(long steps) {
        return (double) steps / stepsPerEpoch;
    }
}
