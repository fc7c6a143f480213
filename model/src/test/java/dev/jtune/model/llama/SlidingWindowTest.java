package dev.jtune.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.generate.CachedDecoder;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Mistral's {@code sliding_window} in every path of the one decoder forward: the full forward (where the window
 * changes what late tokens see), cached generation (equal to the full forward step by step) and packed rows (each
 * sample equal to itself alone: isolation and window together).
 */
class SlidingWindowTest {
    private static final int VOCAB = 96;
    private static final int WINDOW = 4;

    private static LlamaConfig withWindow(LlamaConfig c, int window) {
        return new LlamaConfig("mistral", c.vocabSize(), c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(),
                c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), c.maxPositionEmbeddings(), c.rmsNormEps(),
                c.ropeTheta(), c.ropeScaling(), c.tieWordEmbeddings(), c.torchDtype(), c.bosTokenId(), c.eosTokenIds(),
                c.padTokenId(), window);
    }

    private static long[] randomIds(long seed, int n) {
        Random r = new Random(seed);
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = 1 + r.nextInt(VOCAB - 1);
        return ids;
    }

    /** Logits [T*V] of one row. */
    private static float[] logits(LlamaModel model, NDManager m, long[] ids) {
        NDArray input = m.create(ids).reshape(1, ids.length);
        return model.forward(input, LlamaModel.defaultPositions(input), null).toFloatArray();
    }

    private static double maxAbsDiff(float[] a, int aFrom, float[] b, int bFrom, int n) {
        double max = 0;
        for (int i = 0; i < n; i++) max = Math.max(max, Math.abs(a[aFrom + i] - b[bFrom + i]));
        return max;
    }

    @Test
    void theWindowHidesOldTokensInEveryPath() {
        LlamaConfig plain = LlamaPresets.tiny(VOCAB);
        LlamaConfig windowed = withWindow(plain, WINDOW);
        int t = 11;
        try (NDManager m = Torch.newManager();
                LlamaModel noWindow = LlamaModel.load(plain, new RandomInit(plain, 3).weights(8), Dtype.FP32, m);
                LlamaModel model = LlamaModel.load(windowed, new RandomInit(windowed, 3).weights(8), Dtype.FP32, m)) {
            long[] ids = randomIds(5, t);
            float[] full = logits(model, m, ids);
            float[] without = logits(noWindow, m, ids);
            int v = VOCAB;
            // Positions 0..WINDOW-1 see every earlier token either way; the last one sees only the last WINDOW.
            assertTrue(maxAbsDiff(full, 0, without, 0, WINDOW * v) < 1e-5, "inside the window nothing changes");
            assertTrue(maxAbsDiff(full, (t - 1) * v, without, (t - 1) * v, v) > 1e-2, "the window hides old tokens");

            // Cached generation: a prefill of 6, then one token at a time, equals the full forward.
            CachedDecoder decoder = new CachedDecoder(model);
            try (KvCache cache = decoder.newCache(1, t, m)) {
                float[] prefill = decoder.forward(m.create(Arrays.copyOf(ids, 6)).reshape(1, 6), null, cache)
                        .toFloatArray();
                assertTrue(maxAbsDiff(full, 0, prefill, 0, 6 * v) < 1e-4, "prefill");
                for (int i = 6; i < t; i++) {
                    float[] step = decoder.lastLogits(m.create(new long[] {ids[i]}).reshape(1, 1), null, cache)
                            .toFloatArray();
                    assertTrue(maxAbsDiff(full, i * v, step, 0, v) < 1e-4, "cached step " + i);
                }
            }

            // Packed: two samples in one row (positions restart, segments isolate) each equal themselves alone.
            long[] other = randomIds(6, 7);
            long[] row = new long[t + other.length];
            long[] pos = new long[row.length];
            long[] seg = new long[row.length];
            for (int i = 0; i < row.length; i++) {
                row[i] = i < t ? ids[i] : other[i - t];
                pos[i] = i < t ? i : i - t;
                seg[i] = i < t ? 0 : 1;
            }
            NDArray input = m.create(row).reshape(1, row.length);
            float[] packed = model.forward(input, m.create(pos).reshape(1, row.length),
                    m.create(seg).reshape(1, row.length)).toFloatArray();
            float[] alone = logits(model, m, other);
            assertTrue(maxAbsDiff(packed, 0, full, 0, t * v) < 1e-4, "first sample packed vs alone");
            assertTrue(maxAbsDiff(packed, t * v, alone, 0, other.length * v) < 1e-4, "second sample packed vs alone");
            assertEquals(WINDOW, model.config().slidingWindow());
        }
    }
}
