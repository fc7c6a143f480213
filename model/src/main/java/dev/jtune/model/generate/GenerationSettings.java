package dev.jtune.model.generate;

import java.util.List;

/**
 * How {@link Generator} picks tokens and when it stops.
 *
 * @param maxNewTokens the most tokens generated after the prompt (≥ 1)
 * @param temperature 0 for greedy decoding (argmax, no randomness); otherwise logits are divided by it
 *     before sampling
 * @param topP nucleus sampling threshold in (0, 1]; 1 disables it
 * @param topK keep only the k highest logits (ties with the k-th kept); 0 disables it
 * @param seed seeds the sampler's {@link java.util.Random}: the same seed, prompt and model give the same tokens
 * @param stopTokenIds generation ends after producing any of these (EOS ids); the stop token is part of the
 *     output ids
 */
public record GenerationSettings(int maxNewTokens, double temperature, double topP, int topK, long seed,
        List<Integer> stopTokenIds) {

    public GenerationSettings {
        if (maxNewTokens < 1) {
            throw new IllegalArgumentException("max_new_tokens must be at least 1, got " + maxNewTokens);
        }
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number ≥ 0 (0 = greedy), got " + temperature);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top_k must be ≥ 0 (0 = off), got " + topK);
        }
        stopTokenIds = List.copyOf(stopTokenIds);
    }

    /** Greedy decoding of at most {@code maxNewTokens}, stopping at any of {@code stopTokenIds}. */
    public static GenerationSettings greedy(int maxNewTokens, List<Integer> stopTokenIds) {
        return new GenerationSettings(maxNewTokens, 0, 1, 0, 0, stopTokenIds);
    }

    /** Whether tokens are drawn at random (temperature &gt; 0) rather than by argmax. */
    public boolean sampling() {
        return temperature > 0;
    }
}
