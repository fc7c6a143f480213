package dev.jtune.data.dataset;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * First-fit-decreasing bin packing of samples into rows of at most {@code capacity} tokens ({@code
 * sample_packing}), as Axolotl's multipack sampler does: samples are taken longest first (ties in input
 * order) and each goes into the first row, in creation order, that still has room; a new row is opened when
 * none has. FFD uses at most {@code 11/9 OPT + 6/9} rows. Deterministic: the result depends only on the
 * lengths and their order.
 *
 * <p>A segment tree over the rows' free space finds the first row with room in {@code O(log n)}, so packing
 * is {@code O(n log n)}.
 */
public final class Packer {
    private Packer() {}

    /**
     * The FFD assignment: for each row, the indices into {@code lengths} of its samples in the order they
     * were placed (longest first).
     *
     * @throws IllegalArgumentException if a length is not in {@code [1, capacity]}
     */
    public static List<int[]> assign(int[] lengths, int capacity) {
        if (capacity <= 0) throw new IllegalArgumentException("capacity must be positive, got " + capacity);
        int n = lengths.length;
        for (int i = 0; i < n; i++) {
            if (lengths[i] < 1 || lengths[i] > capacity) {
                throw new IllegalArgumentException("sample " + i + " has length " + lengths[i] + ", not in [1, " + capacity + "]");
            }
        }
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        // Stable sort: equal lengths keep input order.
        Arrays.sort(order, (a, b) -> Integer.compare(lengths[b], lengths[a]));

        int leaves = 1;
        while (leaves < Math.max(n, 1)) leaves <<= 1;
        // tree[leaves + b] = free space of row b; unopened rows are empty, so the first fit among them is
        // the next new row. Inner nodes hold the max of their children.
        int[] tree = new int[2 * leaves];
        Arrays.fill(tree, leaves, 2 * leaves, capacity);
        for (int i = leaves - 1; i >= 1; i--) tree[i] = Math.max(tree[2 * i], tree[2 * i + 1]);

        List<IntList> rows = new ArrayList<>();
        for (int idx : order) {
            int len = lengths[idx];
            int node = 1;
            while (node < leaves) {
                node = tree[2 * node] >= len ? 2 * node : 2 * node + 1;
            }
            int row = node - leaves;
            if (row == rows.size()) rows.add(new IntList());
            rows.get(row).add(idx);
            tree[node] -= len;
            for (node >>= 1; node >= 1; node >>= 1) tree[node] = Math.max(tree[2 * node], tree[2 * node + 1]);
        }
        List<int[]> out = new ArrayList<>(rows.size());
        for (IntList r : rows) out.add(r.toArray());
        return out;
    }

    /**
     * Axolotl's {@code pack_group} (utils/samplers/multipack.py at {@link dev.jtune.data.config.AxolotlKeys#COMMIT}),
     * as its streamed path uses it: first fit in the given order, no sorting; a bin takes a sample when it has room
     * and fewer than {@code binSize} samples ({@code sample_packing_bin_size}); a new bin is opened otherwise.
     *
     * @return for each bin, the indices into {@code lengths} in the order placed
     * @throws IllegalArgumentException if a length is not in {@code [1, capacity]}
     */
    public static List<int[]> firstFit(int[] lengths, int capacity, int binSize) {
        if (capacity <= 0 || binSize <= 0) throw new IllegalArgumentException("capacity and binSize must be positive");
        List<IntList> bins = new ArrayList<>();
        List<Integer> space = new ArrayList<>();
        for (int i = 0; i < lengths.length; i++) {
            int len = lengths[i];
            if (len < 1 || len > capacity) {
                throw new IllegalArgumentException("sample " + i + " has length " + len + ", not in [1, " + capacity + "]");
            }
            int b = 0;
            while (b < bins.size() && (space.get(b) < len || bins.get(b).n >= binSize)) b++;
            if (b == bins.size()) {
                bins.add(new IntList());
                space.add(capacity);
            }
            bins.get(b).add(i);
            space.set(b, space.get(b) - len);
        }
        List<int[]> out = new ArrayList<>(bins.size());
        for (IntList bin : bins) out.add(bin.toArray());
        return out;
    }

    /** Packs {@code samples} into rows with {@link Row#pack} following {@link #assign}. */
    public static List<Row> pack(List<Sample> samples, int capacity) {
        int[] lengths = new int[samples.size()];
        for (int i = 0; i < lengths.length; i++) lengths[i] = samples.get(i).length();
        List<int[]> bins = assign(lengths, capacity);
        List<Row> rows = new ArrayList<>(bins.size());
        for (int[] bin : bins) {
            List<Sample> members = new ArrayList<>(bin.length);
            for (int i : bin) members.add(samples.get(i));
            rows.add(Row.pack(members));
        }
        return rows;
    }

    /** One row per sample, in order (no packing). */
    public static List<Row> single(List<Sample> samples) {
        List<Row> rows = new ArrayList<>(samples.size());
        for (Sample s : samples) rows.add(Row.of(s));
        return rows;
    }

    /** Real tokens over {@code rows × capacity}: the share of a {@code capacity}-wide batch that is not padding. */
    public static double efficiency(List<Row> rows, int capacity) {
        if (rows.isEmpty()) return 0;
        long tokens = 0;
        for (Row r : rows) tokens += r.length();
        return tokens / ((double) rows.size() * capacity);
    }

    private static final class IntList {
        private int[] a = new int[4];
        private int n;

        void add(int v) {
            if (n == a.length) a = Arrays.copyOf(a, n * 2);
            a[n++] = v;
        }

        int[] toArray() {
            return Arrays.copyOf(a, n);
        }
    }
}
