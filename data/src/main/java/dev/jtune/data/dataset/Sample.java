package dev.jtune.data.dataset;

import java.util.Objects;

/**
 * One tokenized, masked example: token ids and their labels, where a label is the token's own id if the
 * loss is computed on it and {@link #IGNORE_INDEX} if not. Labels are not shifted: the trainer compares
 * the logits at position {@code i} with the label at {@code i + 1}, as transformers does.
 */
public record Sample(int[] inputIds, int[] labels) {
    /** The label of a token the loss ignores (PyTorch's cross-entropy {@code ignore_index}). */
    public static final int IGNORE_INDEX = -100;

    public Sample {
        Objects.requireNonNull(inputIds, "inputIds");
        Objects.requireNonNull(labels, "labels");
        if (inputIds.length != labels.length) {
            throw new IllegalArgumentException("inputIds has " + inputIds.length + " tokens, labels " + labels.length);
        }
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] != IGNORE_INDEX && labels[i] != inputIds[i]) {
                throw new IllegalArgumentException("label " + i + " is " + labels[i] + ", neither the token "
                        + inputIds[i] + " nor " + IGNORE_INDEX);
            }
        }
    }

    public int length() {
        return inputIds.length;
    }

    /** Tokens whose label is not ignored. */
    public int trainedTokens() {
        int n = 0;
        for (int label : labels) {
            if (label != IGNORE_INDEX) n++;
        }
        return n;
    }
}
