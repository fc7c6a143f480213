package dev.jtune.model.generate;

import dev.jtune.data.tokenizer.Tokenizer;
import java.util.Arrays;

/**
 * The result of {@link Generator#generate}.
 *
 * @param newIds the generated tokens, the stop token included when there was one
 * @param stoppedAtStopToken true when the last token is a stop (EOS) token, false when max_new_tokens ended it
 */
public record Generation(int[] newIds, boolean stoppedAtStopToken) {
    public Generation {
        newIds = newIds.clone();
    }

    @Override
    public int[] newIds() {
        return newIds.clone();
    }

    /** The generated tokens without the final stop token. */
    public int[] contentIds() {
        return stoppedAtStopToken ? Arrays.copyOf(newIds, newIds.length - 1) : newIds.clone();
    }

    /** The generated text: {@link #contentIds()} decoded, special tokens skipped. */
    public String text(Tokenizer tokenizer) {
        return tokenizer.decode(contentIds(), true);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Generation g && g.stoppedAtStopToken == stoppedAtStopToken && Arrays.equals(g.newIds, newIds);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(newIds) + Boolean.hashCode(stoppedAtStopToken);
    }

    @Override
    public String toString() {
        return "Generation" + Arrays.toString(newIds) + (stoppedAtStopToken ? " (stop token)" : " (max_new_tokens)");
    }
}
