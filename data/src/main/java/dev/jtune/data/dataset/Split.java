package dev.jtune.data.dataset;

import dev.jtune.data.config.ValSetSize;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Training and evaluation samples, and the seeded shuffles that make them.
 *
 * <p>{@link #of} holds out {@code val_set_size} samples the way Hugging Face's
 * {@code train_test_split(test_size, shuffle=True, seed)} does in spirit: a seeded random permutation of all
 * samples, whose first {@code k} become the evaluation set (in permutation order). The permutation is not
 * numpy's: it is a Fisher–Yates shuffle driven by {@link java.util.Random} (whose algorithm the JDK specifies),
 * so the same seed gives the same split on every JVM. Training samples keep their original relative order;
 * {@code shuffle_merged_datasets} shuffles them afterwards with {@link #shuffled}.
 */
public record Split(List<Sample> train, List<Sample> eval) {
    public Split {
        train = List.copyOf(train);
        eval = List.copyOf(eval);
    }

    /** Holds out {@code size.examplesOutOf(n)} samples chosen by {@code seed}; the rest are training samples. */
    public static Split of(List<Sample> samples, ValSetSize size, long seed) {
        int n = samples.size();
        int k = Math.toIntExact(size.examplesOutOf(n));
        if (k == 0) return new Split(samples, List.of());
        int[] perm = permutation(n, seed);
        boolean[] held = new boolean[n];
        List<Sample> eval = new ArrayList<>(k);
        for (int i = 0; i < k; i++) {
            held[perm[i]] = true;
            eval.add(samples.get(perm[i]));
        }
        List<Sample> train = new ArrayList<>(n - k);
        for (int i = 0; i < n; i++) {
            if (!held[i]) train.add(samples.get(i));
        }
        return new Split(train, eval);
    }

    /** {@code items} in the order of {@link #permutation permutation(size, seed)}. */
    public static <T> List<T> shuffled(List<T> items, long seed) {
        int[] perm = permutation(items.size(), seed);
        List<T> out = new ArrayList<>(perm.length);
        for (int i : perm) out.add(items.get(i));
        return out;
    }

    /**
     * A permutation of {@code 0..n-1}: Fisher–Yates from the last position down, swapping position {@code i}
     * with {@code new Random(seed).nextInt(i + 1)} drawn in turn.
     */
    public static int[] permutation(int n, long seed) {
        int[] perm = new int[n];
        Arrays.setAll(perm, i -> i);
        Random random = new Random(seed);
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        return perm;
    }
}
