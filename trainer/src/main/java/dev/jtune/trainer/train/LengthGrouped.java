package dev.jtune.trainer.train;

import dev.jtune.data.dataset.Batch;
import dev.jtune.data.dataset.Batches;
import dev.jtune.data.dataset.Row;
import dev.jtune.data.dataset.Split;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * {@code group_by_length: true}: the training order of transformers' {@code LengthGroupedSampler}
 * ({@code get_length_grouped_indices}, trainer_pt_utils.py), which Axolotl asks for with
 * {@code train_sampling_strategy: group_by_length} when neither {@code sample_packing} nor
 * {@code curriculum_sampling} is on (its {@code _get_train_sampler} then defers to transformers').
 *
 * <p>Each epoch: a random permutation of the rows; cut into megabatches of {@code mult × B} rows, where B is
 * transformers' batch size for it, {@code per_device_train_batch_size × gradient_accumulation_steps} (the world size
 * does not enter: every rank draws the same order and the data loader deals its batches round-robin, which is the
 * order {@link StepPlan} deals micro-batches), and {@code mult = min(rows / (4 B), 50)}, at least 1; each megabatch
 * sorted by length, longest first ({@code sorted(..., reverse=True)}: stable, ties keep the permutation's order);
 * then the first row of the megabatch holding the longest row (the first such megabatch, as {@code torch.argmax})
 * swaps places with the very first row, so the longest batch comes first. Micro-batches are consecutive slices.
 *
 * <p>The permutation is jtune's ({@link Split#permutation} with the seed mixed per epoch exactly as {@link Batches}
 * mixes it, so the random part is the plain shuffle's), not {@code torch.randperm} from the global generator that
 * transformers' sampler draws: given the same permutation the order is the same ({@code LengthGroupedTest} checks
 * that against transformers' function), but the permutation itself differs from a PyTorch run's.
 */
public final class LengthGrouped implements BatchPlan {
    private final List<Row> rows;
    private final int[] lengths;
    private final int microBatchSize;
    private final int groupBatch;
    private final long seed;
    private final int padId;
    private final int padTo;
    private int cachedEpoch = -1;
    private int[] cachedOrder;

    /**
     * @param groupBatch transformers' batch size for the sampler: micro_batch_size × gradient_accumulation_steps
     * @param padId, padTo as {@link Batches#collate}
     */
    public LengthGrouped(List<Row> rows, int microBatchSize, int groupBatch, long seed, int padId, int padTo) {
        if (microBatchSize < 1 || groupBatch < 1) throw new IllegalArgumentException("batch sizes must be at least 1");
        this.rows = rows;
        this.lengths = new int[rows.size()];
        for (int i = 0; i < lengths.length; i++) lengths[i] = rows.get(i).length();
        this.microBatchSize = microBatchSize;
        this.groupBatch = groupBatch;
        this.seed = seed;
        this.padId = padId;
        this.padTo = padTo;
    }

    /** {@code mega_batch_mult × batch_size}: {@code min(n // (batch_size * 4), 50)} megabatch multiple, at least 1. */
    static int megabatchSize(int n, int batchSize) {
        int mult = Math.min(n / (batchSize * 4), 50);
        return Math.max(mult, 1) * batchSize;
    }

    /** {@code get_length_grouped_indices(lengths, batchSize)} with {@code permutation} as its {@code torch.randperm}. */
    public static int[] order(int[] lengths, int batchSize, int[] permutation) {
        int size = megabatchSize(lengths.length, batchSize);
        List<Integer[]> megabatches = new ArrayList<>();
        for (int from = 0; from < permutation.length; from += size) {
            Integer[] mb = Arrays.stream(permutation, from, Math.min(from + size, permutation.length)).boxed()
                    .toArray(Integer[]::new);
            Arrays.sort(mb, Comparator.comparingInt((Integer i) -> lengths[i]).reversed()); // stable, as sorted()
            megabatches.add(mb);
        }
        if (megabatches.isEmpty()) return new int[0];
        int maxIdx = 0;
        for (int i = 1; i < megabatches.size(); i++) {
            if (lengths[megabatches.get(i)[0]] > lengths[megabatches.get(maxIdx)[0]]) maxIdx = i; // first maximum
        }
        Integer t = megabatches.get(0)[0];
        megabatches.get(0)[0] = megabatches.get(maxIdx)[0];
        megabatches.get(maxIdx)[0] = t;
        return megabatches.stream().flatMap(Arrays::stream).mapToInt(Integer::intValue).toArray();
    }

    /** The row indices of {@code epoch} in visiting order. */
    public synchronized int[] order(int epoch) {
        if (epoch != cachedEpoch) {
            cachedOrder = order(lengths, groupBatch, Split.permutation(rows.size(), epochSeed(seed, epoch)));
            cachedEpoch = epoch;
        }
        return cachedOrder;
    }

    /** Batches' per-epoch seed (SplitMix64's finaliser over seed and epoch), so the permutation is the plain one's. */
    static long epochSeed(long seed, int epoch) {
        long z = seed + 0x9E3779B97F4A7C15L * (epoch + 1L);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    @Override
    public int batchesPerEpoch() {
        return (rows.size() + microBatchSize - 1) / microBatchSize;
    }

    @Override
    public Batch batch(int epoch, int index) {
        int[] order = order(epoch);
        int from = index * microBatchSize;
        int to = Math.min(order.length, from + microBatchSize);
        List<Row> members = new ArrayList<>(to - from);
        for (int i = from; i < to; i++) members.add(rows.get(order[i]));
        return Batches.collate(members, padId, padTo);
    }
}
