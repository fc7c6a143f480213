package dev.jtune.data.dataset;

/**
 * A micro-batch: {@code rows} {@link Row}s right-padded to a common {@code length}, flattened row-major
 * ({@code [rows, length]}), ready to become int64 tensors.
 *
 * <p>Padding positions hold the pad token id, label {@link Sample#IGNORE_INDEX}, attention mask 0, position
 * ids that continue counting, and a segment id one past the row's last sample. {@code segmentIds} number the
 * samples of each row from 0; {@code packed} says whether any row holds more than one sample (then the
 * attention must be isolated by segment; otherwise plain causal attention is exact, since right padding
 * comes after every real token).
 */
public record Batch(int rows, int length, int[] inputIds, int[] labels, int[] positionIds, int[] segmentIds,
        int[] attentionMask, boolean packed) {
    public Batch {
        int n = rows * length;
        if (rows <= 0 || length <= 0) throw new IllegalArgumentException("empty batch");
        if (inputIds.length != n || labels.length != n || positionIds.length != n || segmentIds.length != n
                || attentionMask.length != n) {
            throw new IllegalArgumentException("every array must hold rows * length = " + n + " values");
        }
    }

    /** Labels the loss uses (not ignored and not in column 0 of a row). */
    public int trainedTokens() {
        int count = 0;
        for (int r = 0; r < rows; r++) {
            for (int i = 1; i < length; i++) {
                if (labels[r * length + i] != Sample.IGNORE_INDEX) count++;
            }
        }
        return count;
    }

    /** Real (non-padding) tokens. */
    public int tokens() {
        int count = 0;
        for (int m : attentionMask) count += m;
        return count;
    }
}
