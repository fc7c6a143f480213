package dev.jtune.trainer.train;

import dev.jtune.data.dataset.Batch;

/**
 * The training data as micro-batches, in random access so that a resumed run can jump to its position:
 * {@code batch(epoch, index)} must be the same micro-batch every time it is asked for (the shuffle derives
 * from the seed and the epoch only).
 */
public interface BatchPlan {
    /** Micro-batches in one epoch (the same for every epoch). */
    int batchesPerEpoch();

    /** Micro-batch {@code index} (0-based) of {@code epoch} (0-based). */
    Batch batch(int epoch, int index);

    /** A plan over a fixed list of batches, the same every epoch (tests, evaluation sets). */
    static BatchPlan of(java.util.List<Batch> batches) {
        java.util.List<Batch> copy = java.util.List.copyOf(batches);
        return new BatchPlan() {
            @Override
            public int batchesPerEpoch() {
                return copy.size();
            }

            @Override
            public Batch batch(int epoch, int index) {
                return copy.get(index);
            }
        };
    }
}
