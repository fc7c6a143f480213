package dev.jtune.trainer.score;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.data.tokenizer.Tokenizer;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.llama.LlamaModel;

/**
 * Log-likelihood scoring as evaluation harnesses do it: the summed negative log-likelihood (natural log)
 * of chosen tokens, each conditioned on every token before it.
 */
public final class Scorer {
    private final LlamaModel model;
    private final Tokenizer tokenizer;
    private final NDManager manager;

    /** @param manager parent for each call's scratch memory (freed before the call returns) */
    public Scorer(LlamaModel model, Tokenizer tokenizer, NDManager manager) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.manager = manager;
    }

    /** Scored token count and summed NLL. */
    public record Score(int tokens, double nll) {
        /** NLL per scored token, or NaN when nothing was scored. */
        public double meanNll() {
            return tokens == 0 ? Double.NaN : nll / tokens;
        }
    }

    /** Every token of {@code text} after the first (the BOS the tokenizer adds, if it adds one). */
    public Score scoreText(String text) {
        return score(tokenizer.encode(text, true), 1);
    }

    /**
     * Only the completion's tokens, conditioned on the prompt. The whole string is tokenized once; the
     * scored tokens are those after the longest prefix it shares with the prompt's own tokenization, so a
     * token that a tokenizer merges across the prompt/completion boundary counts as completion, never lost.
     */
    public Score scoreCompletion(String prompt, String completion) {
        int[] whole = tokenizer.encode(prompt + completion, true);
        int[] alone = tokenizer.encode(prompt, true);
        int shared = 0;
        while (shared < alone.length && shared < whole.length && alone[shared] == whole[shared]) {
            shared++;
        }
        return score(whole, Math.max(1, shared));
    }

    /** Scores {@code ids[firstScored..]}, each given the ids before it. */
    public Score score(int[] ids, int firstScored) {
        if (firstScored < 1) {
            throw new IllegalArgumentException("the first token has no context and cannot be scored");
        }
        int t = ids.length;
        if (t - firstScored <= 0) {
            return new Score(0, 0);
        }
        try (NDManager step = manager.newSubManager()) {
            long[] input = new long[t];
            long[] labels = new long[t];
            for (int i = 0; i < t; i++) {
                input[i] = ids[i];
                // Position i predicts token i+1; positions whose next token is not scored are ignored.
                labels[i] = i + 1 < t && i + 1 >= firstScored ? ids[i + 1] : Kernels.IGNORE_INDEX;
            }
            NDArray inputIds = step.create(input).reshape(1, t);
            NDArray logits = model.forward(inputIds, LlamaModel.defaultPositions(inputIds), null);
            NDArray nll = Kernels.get().tokenNll(logits.reshape(t, -1), step.create(labels));
            double sum = 0;
            for (float v : nll.toFloatArray()) {
                sum += v;
            }
            return new Score(t - firstScored, sum);
        }
    }
}
