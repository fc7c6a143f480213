package dev.jtune.model.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * The warpers against an independent formulation: top-p as "keep the most probable tokens while the mass
 * strictly above a token is below top_p" (descending order; transformers' ascending rule
 * {@code cumsum <= 1 - top_p} removes exactly the complement, ties of the bound aside), top-k by counting
 * strictly larger scores, and closed-form cases.
 */
class SamplerTest {

    /** The set of tokens kept: descending formulation, in double, on logits / temperature. */
    private static boolean[] referenceKept(float[] logits, double temperature, int topK, double topP) {
        int n = logits.length;
        double[] s = new double[n];
        for (int i = 0; i < n; i++) {
            s[i] = logits[i] / temperature;
        }
        boolean[] kept = new boolean[n];
        Arrays.fill(kept, true);
        if (topK > 0) {
            for (int i = 0; i < n; i++) {
                int larger = 0;
                for (int j = 0; j < n; j++) {
                    if (s[j] > s[i]) {
                        larger++;
                    }
                }
                kept[i] = larger < topK; // fewer than k strictly larger: i ties with or beats the k-th
            }
        }
        if (topP < 1) {
            double max = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < n; i++) {
                if (kept[i]) {
                    max = Math.max(max, s[i]);
                }
            }
            double z = 0;
            double[] p = new double[n];
            for (int i = 0; i < n; i++) {
                p[i] = kept[i] ? Math.exp(s[i] - max) : 0;
                z += p[i];
            }
            boolean[] after = new boolean[n];
            for (int i = 0; i < n; i++) {
                double above = 0; // mass of tokens ranked before i (higher score; equal scores: lower id first)
                for (int j = 0; j < n; j++) {
                    if (s[j] > s[i] || (s[j] == s[i] && j > i)) {
                        above += p[j] / z;
                    }
                }
                after[i] = kept[i] && above < topP; // the best token has nothing above it: always kept
            }
            kept = after;
        }
        return kept;
    }

    private static boolean[] keptBy(double[] warped) {
        boolean[] kept = new boolean[warped.length];
        for (int i = 0; i < warped.length; i++) {
            kept[i] = warped[i] != Double.NEGATIVE_INFINITY;
        }
        return kept;
    }

    private static float[] logOf(double... probs) {
        float[] l = new float[probs.length];
        for (int i = 0; i < probs.length; i++) {
            l[i] = (float) Math.log(probs[i]);
        }
        return l;
    }

    @Test
    void topPClosedForms() {
        float[] l = logOf(0.1, 0.5, 0.15, 0.25);
        // top_p 0.7: 0.5 then 0.25 (0.5 above it < 0.7) kept; 0.15 has 0.75 above: removed.
        assertArrayEquals(new boolean[] {false, true, false, true}, keptBy(Sampler.warp(l, 1, 0, 0.7)));
        assertArrayEquals(new boolean[] {false, true, true, true}, keptBy(Sampler.warp(l, 1, 0, 0.8)));
        // A tiny top_p keeps the single best token (min_tokens_to_keep = 1).
        assertArrayEquals(new boolean[] {false, true, false, false}, keptBy(Sampler.warp(l, 1, 0, 1e-6)));
        assertArrayEquals(new boolean[] {true, true, true, true}, keptBy(Sampler.warp(l, 1, 0, 1)));
    }

    @Test
    void topKKeepsTiesWithTheKth() {
        float[] l = {3, 1, 3, 2, 0};
        assertArrayEquals(new boolean[] {true, false, true, false, false}, keptBy(Sampler.warp(l, 1, 2, 1)));
        assertArrayEquals(new boolean[] {true, false, true, false, false}, keptBy(Sampler.warp(l, 1, 1, 1)));
        assertArrayEquals(new boolean[] {true, false, true, true, false}, keptBy(Sampler.warp(l, 1, 3, 1)));
        assertArrayEquals(new boolean[] {true, true, true, true, true}, keptBy(Sampler.warp(l, 1, 10, 1)));
    }

    @Test
    void temperatureDividesTheLogitsAndWidensTheNucleus() {
        float[] l = {2f, -1f, 0.5f, 1.25f};
        double[] w = Sampler.warp(l, 0.5, 0, 1);
        for (int i = 0; i < l.length; i++) {
            assertEquals(l[i] / 0.5, w[i], 0);
        }
        int coldKept = count(keptBy(Sampler.warp(l, 0.5, 0, 0.9)));
        int hotKept = count(keptBy(Sampler.warp(l, 3, 0, 0.9)));
        assertTrue(hotKept > coldKept, "a higher temperature flattens the distribution: " + hotKept + " vs " + coldKept);
    }

    @Test
    void randomLogitsAgreeWithTheReferenceForManySettings() {
        Random r = new Random(17);
        for (int trial = 0; trial < 300; trial++) {
            int n = 2 + r.nextInt(60);
            float[] l = new float[n];
            for (int i = 0; i < n; i++) {
                // Some repeated values, to exercise ties.
                l[i] = r.nextInt(4) == 0 ? 1.5f : (float) (r.nextGaussian() * 3);
            }
            double temperature = 0.3 + 2 * r.nextDouble();
            int topK = r.nextInt(3) == 0 ? 0 : 1 + r.nextInt(n);
            double topP = r.nextInt(4) == 0 ? 1 : 0.05 + 0.9 * r.nextDouble();
            String what = "trial " + trial + " T=" + temperature + " k=" + topK + " p=" + topP;
            double[] w = Sampler.warp(l, temperature, topK, topP);
            assertArrayEquals(referenceKept(l, temperature, topK, topP), keptBy(w), what);
            assertTrue(count(keptBy(w)) >= 1, what);
            for (int i = 0; i < n; i++) {
                if (w[i] != Double.NEGATIVE_INFINITY) {
                    assertEquals(l[i] / temperature, w[i], 0, what);
                }
            }
        }
    }

    @Test
    void drawsFollowTheWarpedDistributionAndNeverARemovedToken() {
        float[] l = logOf(0.05, 0.4, 0.1, 0.3, 0.15);
        double[] w = Sampler.warp(l, 1, 0, 0.8); // keeps 0.4, 0.3, 0.15 (mass above 0.1 is 0.85)
        double[] p = Sampler.softmax(w);
        assertEquals(0.4 / 0.85, p[1], 1e-6);
        Random random = new Random(5);
        int draws = 40_000;
        int[] counts = new int[l.length];
        for (int i = 0; i < draws; i++) {
            counts[Sampler.draw(w, random)]++;
        }
        assertEquals(0, counts[0]);
        assertEquals(0, counts[2]);
        for (int i = 0; i < l.length; i++) {
            // 4.5 standard deviations of a binomial proportion.
            double sd = Math.sqrt(p[i] * (1 - p[i]) / draws);
            assertEquals(p[i], counts[i] / (double) draws, 4.5 * sd + 1e-12, "token " + i);
        }
    }

    @Test
    void greedyIsTheFirstArgmaxAndSeededSamplingRepeats() {
        assertEquals(1, Sampler.argmax(new float[] {0, 2, 2, -1}));
        GenerationSettings greedy = GenerationSettings.greedy(1, List.of());
        assertEquals(3, new Sampler(greedy).next(new float[] {0, 1, 2, 5, 4}));
        float[] l = new float[50];
        for (int i = 0; i < l.length; i++) {
            l[i] = (float) Math.sin(i);
        }
        GenerationSettings s = new GenerationSettings(1, 1.0, 0.95, 0, 77, List.of());
        int[] a = draws(new Sampler(s), l);
        assertArrayEquals(a, draws(new Sampler(s), l));
        assertTrue(!Arrays.equals(a, draws(new Sampler(new GenerationSettings(1, 1.0, 0.95, 0, 78, List.of())), l)));
    }

    @Test
    void settingsAreChecked() {
        assertThrows(IllegalArgumentException.class, () -> new GenerationSettings(0, 0, 1, 0, 0, List.of()));
        assertThrows(IllegalArgumentException.class, () -> new GenerationSettings(1, -1, 1, 0, 0, List.of()));
        assertThrows(IllegalArgumentException.class, () -> new GenerationSettings(1, 1, 0, 0, 0, List.of()));
        assertThrows(IllegalArgumentException.class, () -> new GenerationSettings(1, 1, 1.5, 0, 0, List.of()));
        assertThrows(IllegalArgumentException.class, () -> new GenerationSettings(1, 1, 1, -2, 0, List.of()));
    }

    private static int[] draws(Sampler sampler, float[] logits) {
        return IntStream.range(0, 40).map(i -> sampler.next(logits)).toArray();
    }

    private static int count(boolean[] b) {
        int n = 0;
        for (boolean x : b) {
            n += x ? 1 : 0;
        }
        return n;
    }
}
