package dev.jtune.model.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.KvCache;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.llama.LlamaPresets;
import dev.jtune.model.llama.RandomInit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The cached forward against the model's own full forward (which has its own, already tested, causal
 * attention): logits per step, chunks after a prefill, and whole greedy generations.
 */
class CachedDecoderTest {
    private static final int VOCAB = 300;
    private static NDManager manager;
    private static LlamaModel fp32;
    private static LlamaModel bf16;

    @BeforeAll
    static void load() {
        manager = Torch.newManager();
        // Gain 12: logit gaps well above rounding, so greedy choices do not hinge on it (RandomInit.weights(gain)).
        LlamaConfig config = LlamaPresets.tiny(VOCAB);
        fp32 = LlamaModel.load(config, new RandomInit(config, 5).weights(12), Dtype.FP32, manager);
        bf16 = LlamaModel.load(config, new RandomInit(config, 5).weights(12), Dtype.BF16, manager);
    }

    @AfterAll
    static void free() {
        fp32.close();
        bf16.close();
        manager.close();
    }

    private static int[] randomIds(long seed, int n) {
        Random r = new Random(seed);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = 3 + r.nextInt(VOCAB - 3);
        }
        return ids;
    }

    private static NDArray ids(NDManager m, int[] ids) {
        return m.create(Arrays.stream(ids).asLongStream().toArray()).reshape(1, ids.length);
    }

    /** Full-forward logits [T][V] of a sequence. */
    private static float[][] full(LlamaModel model, NDManager m, int[] sequence) {
        NDArray input = ids(m, sequence);
        float[] flat = Generator.toFloats(model.forward(input, LlamaModel.defaultPositions(input), null));
        int v = flat.length / sequence.length;
        float[][] out = new float[sequence.length][];
        for (int i = 0; i < sequence.length; i++) {
            out[i] = Arrays.copyOfRange(flat, i * v, (i + 1) * v);
        }
        return out;
    }

    private static double maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs(a[i] - b[i]));
        }
        return max;
    }

    /**
     * 1e-5 relative to the largest logit: the cached and full passes multiply differently shaped matrices,
     * so fp32 sums round in another order (a wrong mask or position moves logits by O(1)).
     */
    private static double tolerance(float[] expected) {
        return 1e-5 * Math.max(1, maxAbs(expected));
    }

    private static double maxAbs(float[] a) {
        double max = 0;
        for (float x : a) {
            max = Math.max(max, Math.abs(x));
        }
        return max;
    }

    @Test
    void everyCachedStepGivesTheLogitsOfTheFullForwardFp32() {
        for (KvCache.Layout layout : KvCache.Layout.values()) {
            int[] sequence = randomIds(11, 14);
            int prompt = 6;
            CachedDecoder decoder = new CachedDecoder(fp32);
            try (NDManager m = Torch.newManager(); KvCache cache = layout == KvCache.Layout.PREALLOCATED ? decoder.newCache(1, sequence.length, m)
                            : KvCache.concatenated(fp32.config(), Dtype.FP32, 1, m)) {
                float[][] expected = full(fp32, m, sequence);
                assertTrue(maxAbs(expected[prompt - 1]) > 1, "logits large enough to mean something");
                // Prefill: logits of every prompt position.
                float[] prefill = Generator.toFloats(decoder.forward(ids(m, Arrays.copyOf(sequence, prompt)), null, cache));
                int v = VOCAB;
                for (int i = 0; i < prompt; i++) {
                    double d = maxAbsDiff(expected[i], Arrays.copyOfRange(prefill, i * v, (i + 1) * v));
                    assertTrue(d <= tolerance(expected[i]), layout + " prefill position " + i + ": max |Δlogit| " + d);
                }
                assertEquals(prompt, cache.length());
                for (int i = prompt; i < sequence.length; i++) {
                    float[] step = Generator.toFloats(decoder.lastLogits(ids(m, new int[] {sequence[i]}), null, cache));
                    double d = maxAbsDiff(expected[i], step);
                    assertTrue(d <= tolerance(expected[i]), layout + " step at position " + i + ": max |Δlogit| " + d
                            + " of max |logit| " + maxAbs(expected[i]));
                }
                assertEquals(sequence.length, cache.length());
            }
        }
    }

    @Test
    void severalNewTokensAfterAPrefillSeeThePastAndEachOtherCausally() {
        // The offset mask: 5 cached tokens, then 4 at once; each must equal the full forward's position.
        int[] sequence = randomIds(12, 9);
        CachedDecoder decoder = new CachedDecoder(fp32);
        try (NDManager m = Torch.newManager(); KvCache cache = decoder.newCache(1, 16, m)) {
            float[][] expected = full(fp32, m, sequence);
            decoder.forward(ids(m, Arrays.copyOf(sequence, 5)), null, cache);
            float[] chunk = Generator.toFloats(decoder.forward(ids(m, Arrays.copyOfRange(sequence, 5, 9)), null, cache));
            int v = VOCAB;
            for (int i = 0; i < 4; i++) {
                double d = maxAbsDiff(expected[5 + i], Arrays.copyOfRange(chunk, i * v, (i + 1) * v));
                assertTrue(d <= tolerance(expected[5 + i]), "chunk token " + i + ": max |Δlogit| " + d);
            }
        }
    }

    @Test
    void cacheRefusesTokensBeyondItsCapacity() {
        CachedDecoder decoder = new CachedDecoder(fp32);
        try (NDManager m = Torch.newManager(); KvCache cache = decoder.newCache(1, 4, m)) {
            decoder.forward(ids(m, randomIds(13, 3)), null, cache);
            var e = assertThrows(IllegalStateException.class,
                    () -> decoder.forward(ids(m, randomIds(14, 2)), null, cache));
            assertTrue(e.getMessage().contains("capacity of 4"), e.getMessage());
        }
    }

    @Test
    void greedyGenerationWithCacheEqualsRecomputingEverythingFp32AndBf16() {
        for (LlamaModel model : List.of(fp32, bf16)) {
            try (Generator g = new Generator(model, manager)) {
                int[] prompt = randomIds(21, 7);
                GenerationSettings greedy = GenerationSettings.greedy(14, List.of());
                Generation reference = g.generateWithoutCache(prompt, greedy, null);
                assertEquals(14, reference.newIds().length);
                assertTrue(Arrays.stream(reference.newIds()).distinct().count() > 3, "a non-degenerate sequence");
                // Each new sequence length costs libtorch a re-specialisation of the kernels: the growing
                // layout is checked in fp32 only.
                var layouts = model == fp32 ? List.of(KvCache.Layout.values()) : List.of(KvCache.Layout.PREALLOCATED);
                for (KvCache.Layout layout : layouts) {
                    List<Integer> streamed = new ArrayList<>();
                    Generation cached = g.generate(prompt, greedy, layout, streamed::add);
                    assertArrayEquals(reference.newIds(), cached.newIds(), model.dtype() + " " + layout);
                    assertEquals(Arrays.stream(cached.newIds()).boxed().toList(), streamed);
                }
            }
        }
    }

    @Test
    void stopsAtAStopTokenAndAtMaxNewTokens() {
        try (Generator g = new Generator(fp32, manager)) {
            int[] prompt = randomIds(31, 5);
            int[] free = g.generate(prompt, GenerationSettings.greedy(12, List.of()), null).newIds();
            assertEquals(12, free.length);
            // Stop at the token the free run produced 4th: generation ends at its first occurrence, inclusive.
            int stopToken = free[3];
            int first = 0;
            while (free[first] != stopToken) {
                first++;
            }
            Generation stopped = g.generate(prompt, GenerationSettings.greedy(12, List.of(999_999, stopToken)), null);
            assertTrue(stopped.stoppedAtStopToken());
            assertArrayEquals(Arrays.copyOf(free, first + 1), stopped.newIds());
            assertArrayEquals(Arrays.copyOf(free, first), stopped.contentIds());
            Generation capped = g.generate(prompt, GenerationSettings.greedy(5, List.of()), null);
            assertTrue(!capped.stoppedAtStopToken());
            assertArrayEquals(Arrays.copyOf(free, 5), capped.newIds());
        }
    }

    @Test
    void seededSamplingIsReproducibleAndMatchesTheUncachedPath() {
        try (Generator g = new Generator(fp32, manager)) {
            int[] prompt = randomIds(41, 6);
            GenerationSettings s = new GenerationSettings(8, 1.5, 0.95, 50, 1234, List.of());
            Generation a = g.generate(prompt, s, null);
            Generation b = g.generate(prompt, s, null);
            assertArrayEquals(a.newIds(), b.newIds());
            assertArrayEquals(a.newIds(), g.generateWithoutCache(prompt, s, null).newIds());
            Generation other = g.generate(prompt, new GenerationSettings(8, 1.5, 0.95, 50, 99, List.of()), null);
            assertTrue(!Arrays.equals(a.newIds(), other.newIds()), "another seed draws other tokens");
        }
    }

    @Test
    void promptOutsideTheVocabularyIsRefused() {
        try (Generator g = new Generator(fp32, manager)) {
            var e = assertThrows(IllegalArgumentException.class,
                    () -> g.generate(new int[] {1, VOCAB}, GenerationSettings.greedy(2, List.of()), null));
            assertTrue(e.getMessage().contains("index 1"), e.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> g.generate(new int[0], GenerationSettings.greedy(2, List.of()), null));
        }
    }
}
