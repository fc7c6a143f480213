package dev.jtune.data.dataset;

import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * The micro-batches of one split, epoch by epoch. Each epoch visits every row once, in an order that depends
 * only on {@code (seed, epoch)} (or in stored order when not shuffling), so a resumed run recomputes the same
 * batches and can start at batch {@code k} with {@link #epoch(int, int)}. The last batch of an epoch may hold
 * fewer rows (nothing is dropped).
 *
 * <p>Rows are right-padded ({@link #collate}) to the longest row in the batch, or to at least {@code padTo}
 * when it is positive ({@code pad_to_sequence_len: true} passes {@code sequence_len}).
 */
public final class Batches {
    private final List<Row> rows;
    private final int microBatchSize;
    private final long seed;
    private final boolean shuffle;
    private final int padId;
    private final int padTo;
    private int cachedEpoch = -1;
    private int[] cachedOrder;

    /**
     * @param rows the split's rows (random access; e.g. {@link PreparedDataset#train()})
     * @param microBatchSize rows per batch, at least 1
     * @param seed with the epoch number, picks each epoch's order
     * @param shuffle false keeps the stored order every epoch (evaluation)
     * @param padId the padding token: the tokenizer's pad, else its EOS, else 0
     * @param padTo pad every batch to at least this length; 0 for dynamic padding only
     */
    public Batches(List<Row> rows, int microBatchSize, long seed, boolean shuffle, int padId, int padTo) {
        if (microBatchSize < 1) throw new IllegalArgumentException("micro batch size must be at least 1, got " + microBatchSize);
        if (padTo < 0) throw new IllegalArgumentException("padTo must not be negative");
        this.rows = java.util.Objects.requireNonNull(rows, "rows"); // a view, not copied: may be memory-mapped
        this.microBatchSize = microBatchSize;
        this.seed = seed;
        this.shuffle = shuffle;
        this.padId = padId;
        this.padTo = padTo;
    }

    /** The padding id for {@code tokenizer}: its pad token, else its EOS, else 0. */
    public static int padId(dev.jtune.data.tokenizer.Tokenizer tokenizer) {
        return tokenizer.padId().orElse(tokenizer.eosId().orElse(0));
    }

    /** Batches per epoch. */
    public int size() {
        return (rows.size() + microBatchSize - 1) / microBatchSize;
    }

    /** The row indices of epoch {@code epoch} in visiting order. */
    public int[] order(int epoch) {
        return cachedOrder(epoch).clone();
    }

    /** The shared order array of {@code epoch}, computed once per epoch change (not to be modified). */
    private synchronized int[] cachedOrder(int epoch) {
        if (epoch < 0) throw new IllegalArgumentException("negative epoch " + epoch);
        if (epoch != cachedEpoch) {
            if (shuffle) {
                cachedOrder = Split.permutation(rows.size(), epochSeed(seed, epoch));
            } else {
                cachedOrder = new int[rows.size()];
                Arrays.setAll(cachedOrder, i -> i);
            }
            cachedEpoch = epoch;
        }
        return cachedOrder;
    }

    /** Batch {@code index} (from 0) of epoch {@code epoch}. */
    public Batch get(int epoch, int index) {
        if (index < 0 || index >= size()) throw new IndexOutOfBoundsException("batch " + index + " of " + size());
        int[] order = cachedOrder(epoch);
        int from = index * microBatchSize;
        int to = Math.min(order.length, from + microBatchSize);
        Row[] members = new Row[to - from];
        for (int i = from; i < to; i++) members[i - from] = rows.get(order[i]);
        return collate(List.of(members), padId, padTo);
    }

    /** The batches of {@code epoch} from batch {@code from} on (e.g. after resuming). */
    public Iterator<Batch> epoch(int epoch, int from) {
        return new Iterator<>() {
            int next = from;

            @Override
            public boolean hasNext() {
                return next < size();
            }

            @Override
            public Batch next() {
                if (!hasNext()) throw new NoSuchElementException();
                return get(epoch, next++);
            }
        };
    }

    /** A well-mixed seed per (seed, epoch) (SplitMix64's finaliser), so neighbouring epochs differ fully. */
    static long epochSeed(long seed, int epoch) {
        long z = seed + 0x9E3779B97F4A7C15L * (epoch + 1L);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /**
     * Right-pads {@code rows} to one length: the longest row, or {@code padTo} if that is longer. Padding gets
     * {@code padId}, label {@link Sample#IGNORE_INDEX}, mask 0, positions continuing the row's last sample, and
     * segment id = the row's sample count (see {@link Batch}).
     */
    public static Batch collate(List<Row> rows, int padId, int padTo) {
        if (rows.isEmpty()) throw new IllegalArgumentException("no rows to collate");
        int length = padTo;
        boolean packed = false;
        for (Row r : rows) {
            length = Math.max(length, r.length());
            packed |= r.samples() > 1;
        }
        int b = rows.size();
        int[] ids = new int[b * length];
        int[] labels = new int[b * length];
        int[] positions = new int[b * length];
        int[] segments = new int[b * length];
        int[] mask = new int[b * length];
        for (int r = 0; r < b; r++) {
            Row row = rows.get(r);
            int base = r * length;
            int n = row.length();
            System.arraycopy(row.inputIds(), 0, ids, base, n);
            System.arraycopy(row.labels(), 0, labels, base, n);
            System.arraycopy(row.positionIds(), 0, positions, base, n);
            int[] cu = row.cuSeqlens();
            for (int s = 0; s + 1 < cu.length; s++) Arrays.fill(segments, base + cu[s], base + cu[s + 1], s);
            Arrays.fill(mask, base, base + n, 1);
            Arrays.fill(ids, base + n, base + length, padId);
            Arrays.fill(labels, base + n, base + length, Sample.IGNORE_INDEX);
            Arrays.fill(segments, base + n, base + length, row.samples());
            int next = n == 0 ? 0 : row.positionIds()[n - 1] + 1;
            for (int i = n; i < length; i++) positions[base + i] = next++;
        }
        return new Batch(b, length, ids, labels, positions, segments, mask, packed);
    }
}
