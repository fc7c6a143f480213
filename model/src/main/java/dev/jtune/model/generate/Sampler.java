package dev.jtune.model.generate;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * Picks the next token from the last position's logits, as transformers' {@code generate} does: greedy argmax
 * when the temperature is 0; otherwise its logits warpers in its order (temperature → top-k → top-p, see
 * {@code transformers/generation/logits_process.py}: {@code TemperatureLogitsWarper}, {@code TopKLogitsWarper},
 * {@code TopPLogitsWarper}, each keeping at least one token), then one draw from the softmax of what is left.
 *
 * <p>Differences from PyTorch, none of which change which tokens are allowed: the arithmetic is in double
 * (transformers uses the fp32 logits), ties in the top-p sort are broken by token id (torch.sort is not
 * stable), and the draw is inverse-CDF sampling in token-id order with {@link Random#nextDouble()} seeded by
 * {@link GenerationSettings#seed()} — reproducible across runs and machines, not bit-compatible with
 * {@code torch.multinomial}.
 */
public final class Sampler {
    private final GenerationSettings settings;
    private final Random random;

    public Sampler(GenerationSettings settings) {
        this.settings = settings;
        this.random = new Random(settings.seed());
    }

    /** The next token for {@code logits} [vocab]; draws from this sampler's random stream when sampling. */
    public int next(float[] logits) {
        if (!settings.sampling()) {
            return argmax(logits);
        }
        return draw(warp(logits, settings.temperature(), settings.topK(), settings.topP()), random);
    }

    /** The index of the largest logit, the first on ties (as {@code torch.argmax}). */
    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    /**
     * The warped scores: {@code logits / temperature}, then {@code -∞} for every token top-k or top-p removes.
     *
     * @param temperature &gt; 0
     * @param topK 0 for no top-k filtering
     * @param topP 1 for no top-p filtering
     */
    public static double[] warp(float[] logits, double temperature, int topK, double topP) {
        if (!(temperature > 0)) {
            throw new IllegalArgumentException("temperature must be > 0 to sample, got " + temperature);
        }
        int n = logits.length;
        double[] scores = new double[n];
        for (int i = 0; i < n; i++) {
            scores[i] = logits[i] / temperature;
        }
        if (topK > 0 && topK < n) {
            // TopKLogitsWarper: remove scores < the k-th largest (ties with it stay).
            double[] sorted = scores.clone();
            Arrays.sort(sorted);
            double kth = sorted[n - topK];
            for (int i = 0; i < n; i++) {
                if (scores[i] < kth) {
                    scores[i] = Double.NEGATIVE_INFINITY;
                }
            }
        }
        if (topP < 1) {
            // TopPLogitsWarper: sort ascending, cumulative softmax, remove while cumsum <= 1 - top_p; the
            // highest-scoring token is always kept (min_tokens_to_keep = 1).
            Integer[] order = IntStream.range(0, n).boxed().toArray(Integer[]::new);
            Arrays.sort(order, Comparator.<Integer>comparingDouble(i -> scores[i]).thenComparingInt(i -> i));
            double[] probs = softmax(scores);
            double cumulative = 0;
            boolean[] remove = new boolean[n];
            for (int r = 0; r < n; r++) {
                cumulative += probs[order[r]];
                remove[r] = cumulative <= 1 - topP;
            }
            remove[n - 1] = false;
            for (int r = 0; r < n; r++) {
                if (remove[r]) {
                    scores[order[r]] = Double.NEGATIVE_INFINITY;
                }
            }
        }
        return scores;
    }

    /** softmax of scores, {@code -∞} giving 0. */
    public static double[] softmax(double[] scores) {
        double max = Double.NEGATIVE_INFINITY;
        for (double s : scores) {
            max = Math.max(max, s);
        }
        double[] p = new double[scores.length];
        double z = 0;
        for (int i = 0; i < scores.length; i++) {
            p[i] = scores[i] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(scores[i] - max);
            z += p[i];
        }
        for (int i = 0; i < p.length; i++) {
            p[i] /= z;
        }
        return p;
    }

    /** One token from softmax(scores) by inverse CDF in id order, with one {@code random.nextDouble()}. */
    static int draw(double[] scores, Random random) {
        double[] p = softmax(scores);
        double u = random.nextDouble();
        double cumulative = 0;
        int last = -1;
        for (int i = 0; i < p.length; i++) {
            if (p[i] == 0) {
                continue;
            }
            cumulative += p[i];
            last = i;
            if (u < cumulative) {
                return i;
            }
        }
        return last; // u just below 1 and the probabilities summing to slightly less
    }
}
