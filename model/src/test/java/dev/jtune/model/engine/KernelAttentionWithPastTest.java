package dev.jtune.model.engine;

import static dev.jtune.model.engine.KernelTestSupport.assertClose;
import static dev.jtune.model.engine.KernelTestSupport.normal;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link Kernels#attentionWithPast}, {@link Kernels#kvCacheWrite}, {@link Kernels#kvCacheAlloc}. */
class KernelAttentionWithPastTest {
    private final Kernels k = Kernels.get();

    /**
     * Reference in double: q [B,H,Tn,D] are the tokens at positions {@code length-Tn+i}; k, v [B,KV,Tmax,D];
     * query i sees key j iff {@code j <= length-Tn+i}; query head h reads kv head h / (H/KV).
     */
    static double[] reference(float[] q, float[] kk, float[] v, int b, int h, int kv, int tn, int tmax, int length,
            int d, double scale) {
        double[] out = new double[q.length];
        int group = h / kv;
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                int kh = hi / group;
                for (int i = 0; i < tn; i++) {
                    int qo = ((bi * h + hi) * tn + i) * d;
                    int last = length - tn + i;
                    double[] p = new double[last + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= last; j++) {
                        int ko = ((bi * kv + kh) * tmax + j) * d;
                        double s = 0;
                        for (int c = 0; c < d; c++) {
                            s += (double) q[qo + c] * kk[ko + c];
                        }
                        p[j] = s * scale;
                        max = Math.max(max, p[j]);
                    }
                    double z = 0;
                    for (int j = 0; j <= last; j++) {
                        p[j] = Math.exp(p[j] - max);
                        z += p[j];
                    }
                    for (int j = 0; j <= last; j++) {
                        int vo = ((bi * kv + kh) * tmax + j) * d;
                        for (int c = 0; c < d; c++) {
                            out[qo + c] += p[j] / z * v[vo + c];
                        }
                    }
                }
            }
        }
        return out;
    }

    /** Slots at or past {@code length} hold large junk, so reading them would show. */
    private static float[] cacheValues(Random r, int b, int kv, int tmax, int length, int d) {
        float[] x = normal(r, b * kv * tmax * d, 1);
        for (int bi = 0; bi < b; bi++) {
            for (int g = 0; g < kv; g++) {
                for (int t = length; t < tmax; t++) {
                    for (int c = 0; c < d; c++) {
                        x[((bi * kv + g) * tmax + t) * d + c] = 50f + t;
                    }
                }
            }
        }
        return x;
    }

    private void check(int b, int h, int kv, int tn, int tmax, int length, long seed) {
        int d = 8;
        double scale = 0.4;
        Random r = new Random(seed);
        float[] q = normal(r, b * h * tn * d, 1);
        float[] kk = cacheValues(r, b, kv, tmax, length, d);
        float[] v = cacheValues(r, b, kv, tmax, length, d);
        try (NDManager m = Torch.newManager()) {
            NDArray out = k.attentionWithPast(m.create(q, new Shape(b, h, tn, d)), m.create(kk, new Shape(b, kv, tmax, d)),
                    m.create(v, new Shape(b, kv, tmax, d)), length, scale);
            assertEquals(new Shape(b, h, tn, d), out.getShape());
            assertClose("B=" + b + " H=" + h + " KV=" + kv + " Tn=" + tn + " length=" + length + " Tmax=" + tmax,
                    reference(q, kk, v, b, h, kv, tn, tmax, length, d, scale), out.toFloatArray(), 1e-5, 1e-5);
        }
    }

    @Test
    void oneNewTokenSeesTheWholePastButNotUnfilledSlots() {
        check(1, 4, 2, 1, 12, 7, 1);
        check(2, 4, 1, 1, 5, 5, 2);
        check(1, 3, 3, 1, 9, 1, 3);
    }

    @Test
    void severalNewTokensSeeThePastAndEachOtherCausally() {
        check(1, 4, 2, 3, 12, 7, 4); // positions 4..6 after 4 cached tokens
        check(2, 6, 2, 4, 10, 10, 5);
    }

    @Test
    void withoutPastItIsPlainCausalAttention() {
        int b = 2;
        int h = 4;
        int kv = 2;
        int t = 6;
        int d = 8;
        Random r = new Random(6);
        try (NDManager m = Torch.newManager()) {
            NDArray q = m.create(normal(r, b * h * t * d, 1), new Shape(b, h, t, d));
            NDArray kk = m.create(normal(r, b * kv * t * d, 1), new Shape(b, kv, t, d));
            NDArray v = m.create(normal(r, b * kv * t * d, 1), new Shape(b, kv, t, d));
            assertClose("prefill vs causal", k.attentionCausal(q, kk, v, 0.3).toFloatArray(),
                    k.attentionWithPast(q, kk, v, t, 0.3).toFloatArray(), 1e-6, 1e-5);
        }
    }

    @Test
    void bf16CacheWriteAndAttentionAgreeWithReference() {
        int b = 1;
        int h = 4;
        int kv = 2;
        int tmax = 8;
        int d = 8;
        Random r = new Random(7);
        float[] first = normal(r, b * kv * 5 * d, 1);
        float[] second = normal(r, b * kv * 2 * d, 1);
        float[] q = normal(r, b * h * 2 * d, 1);
        try (NDManager m = Torch.newManager()) {
            NDArray anchor = m.zeros(new Shape(1));
            NDArray cache = k.kvCacheAlloc(anchor, b, kv, tmax, d, Dtype.BF16);
            assertEquals(Dtype.BF16, k.dtypeOf(cache));
            NDArray a = k.cast(m.create(first, new Shape(b, kv, 5, d)), Dtype.BF16);
            NDArray c = k.cast(m.create(second, new Shape(b, kv, 2, d)), Dtype.BF16);
            assertEquals(5, k.kvCacheWrite(cache, a, 0));
            assertEquals(7, k.kvCacheWrite(cache, c, 5));
            // The cache now holds first ++ second along T (bf16-rounded), then a zero slot.
            float[] stored = k.cast(cache, Dtype.FP32).toFloatArray();
            float[] expected = new float[b * kv * tmax * d];
            float[] ra = k.cast(a, Dtype.FP32).toFloatArray();
            float[] rc = k.cast(c, Dtype.FP32).toFloatArray();
            for (int g = 0; g < kv; g++) {
                System.arraycopy(ra, g * 5 * d, expected, g * tmax * d, 5 * d);
                System.arraycopy(rc, g * 2 * d, expected, (g * tmax + 5) * d, 2 * d);
            }
            assertClose("cache contents", toDouble(expected), stored, 0, 0);
            NDArray qb = k.cast(m.create(q, new Shape(b, h, 2, d)), Dtype.BF16);
            NDArray out = k.attentionWithPast(qb, cache, cache, 7, 0.35);
            assertEquals(Dtype.BF16, k.dtypeOf(out));
            float[] rq = k.cast(qb, Dtype.FP32).toFloatArray();
            double[] want = reference(rq, stored, stored, b, h, kv, 2, tmax, 7, d, 0.35);
            // Outputs are convex combinations of v: a few bf16 roundings of max|v|.
            assertClose("bf16 attention with past", want, k.cast(out, Dtype.FP32).toFloatArray(), 0.05, 0);
        }
    }

    private static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }
}
