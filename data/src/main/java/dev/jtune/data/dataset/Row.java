package dev.jtune.data.dataset;

import java.util.List;
import java.util.Objects;

/**
 * One sequence as the model sees it, before padding: a single {@link Sample}, or several packed together
 * ({@code sample_packing}). {@code positionIds} restart at 0 for each sample; {@code cuSeqlens} are the
 * sample boundaries {@code [0, l0, l0+l1, ..., length]} (flash attention's varlen form), from which the
 * attention kernel builds the mask that keeps packed samples from seeing each other.
 *
 * <p>Because the loss compares position {@code i}'s logits with label {@code i + 1}, a packed row's label at
 * the first token of a sample would be predicted from the previous sample's last token. {@link #pack} sets
 * every sample's first label to {@link Sample#IGNORE_INDEX}, so no label crosses a sample boundary; for a
 * single sample that label is never used anyway, so packing does not change what is trained.
 */
public record Row(int[] inputIds, int[] labels, int[] positionIds, int[] cuSeqlens) {
    public Row {
        Objects.requireNonNull(inputIds, "inputIds");
        int n = inputIds.length;
        if (labels.length != n || positionIds.length != n) {
            throw new IllegalArgumentException("inputIds, labels and positionIds must have the same length");
        }
        if (cuSeqlens.length < 2 || cuSeqlens[0] != 0 || cuSeqlens[cuSeqlens.length - 1] != n) {
            throw new IllegalArgumentException("cuSeqlens must run from 0 to " + n);
        }
        for (int i = 1; i < cuSeqlens.length; i++) {
            if (cuSeqlens[i] <= cuSeqlens[i - 1]) throw new IllegalArgumentException("cuSeqlens must increase");
        }
    }

    /** A row holding one sample (its labels as they are). */
    public static Row of(Sample sample) {
        int n = sample.length();
        int[] positions = new int[n];
        for (int i = 0; i < n; i++) positions[i] = i;
        return new Row(sample.inputIds().clone(), sample.labels().clone(), positions, new int[] {0, n});
    }

    /** Samples packed in order into one row; see the class comment for the labels at sample starts. */
    public static Row pack(List<Sample> samples) {
        if (samples.isEmpty()) throw new IllegalArgumentException("nothing to pack");
        int total = 0;
        for (Sample s : samples) total += s.length();
        int[] ids = new int[total];
        int[] labels = new int[total];
        int[] positions = new int[total];
        int[] cu = new int[samples.size() + 1];
        int at = 0;
        for (int k = 0; k < samples.size(); k++) {
            Sample s = samples.get(k);
            System.arraycopy(s.inputIds(), 0, ids, at, s.length());
            System.arraycopy(s.labels(), 0, labels, at, s.length());
            labels[at] = Sample.IGNORE_INDEX;
            for (int i = 0; i < s.length(); i++) positions[at + i] = i;
            at += s.length();
            cu[k + 1] = at;
        }
        return new Row(ids, labels, positions, cu);
    }

    public int length() {
        return inputIds.length;
    }

    /** Number of samples in the row. */
    public int samples() {
        return cuSeqlens.length - 1;
    }

    /** Labels the loss will use: not ignored, and not at position 0 (nothing predicts it). */
    public int trainedTokens() {
        int n = 0;
        for (int i = 1; i < labels.length; i++) {
            if (labels[i] != Sample.IGNORE_INDEX) n++;
        }
        return n;
    }
}
