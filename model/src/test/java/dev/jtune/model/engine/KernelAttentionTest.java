package dev.jtune.model.engine;

import static dev.jtune.model.engine.KernelTestSupport.assertAllZero;
import static dev.jtune.model.engine.KernelTestSupport.assertClose;
import static dev.jtune.model.engine.KernelTestSupport.assertShape;
import static dev.jtune.model.engine.KernelTestSupport.checkForwardAndGradients;
import static dev.jtune.model.engine.KernelTestSupport.maxAbs;
import static dev.jtune.model.engine.KernelTestSupport.normal;
import static dev.jtune.model.engine.KernelTestSupport.runIn;
import static dev.jtune.model.engine.KernelTestSupport.toDouble;
import static dev.jtune.model.engine.KernelTestSupport.valuesIn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.jtune.model.engine.KernelTestSupport.Arg;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link Kernels#attentionCausal}, {@link Kernels#attentionSegments}, {@link Kernels#segmentsFromCuSeqlens}. */
class KernelAttentionTest {
    private final Kernels k = Kernels.get();

    /**
     * Reference attention in double. q [B,H,T,D], k and v [B,KV,T,D]; query head h reads kv head h / (H/KV);
     * token i sees token j iff j <= i and (seg == null or seg[b,i] == seg[b,j]).
     */
    static double[] attentionRef(double[] q, double[] k, double[] v, double[] seg, int b, int h, int kv, int t,
            int d, double scale) {
        return attentionRef(q, k, v, seg, b, h, kv, t, d, scale, 0);
    }

    /** As above, and token i sees token j only if {@code i - j < window} (0: no window). */
    static double[] attentionRef(double[] q, double[] k, double[] v, double[] seg, int b, int h, int kv, int t,
            int d, double scale, int window) {
        return attentionRef(q, k, v, seg, b, h, kv, t, d, scale, window, true);
    }

    /** As above; without {@code causal} token i also sees the tokens after it (within its segment). */
    static double[] attentionRef(double[] q, double[] k, double[] v, double[] seg, int b, int h, int kv, int t,
            int d, double scale, int window, boolean causal) {
        double[] out = new double[q.length];
        int group = h / kv;
        double[] p = new double[t];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                int kh = hi / group;
                for (int i = 0; i < t; i++) {
                    int qo = ((bi * h + hi) * t + i) * d;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < t; j++) {
                        boolean visible = (j <= i || !causal) && (seg == null || seg[bi * t + i] == seg[bi * t + j])
                                && (window == 0 || i - j < window);
                        if (!visible) {
                            p[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        int ko = ((bi * kv + kh) * t + j) * d;
                        double s = 0;
                        for (int c = 0; c < d; c++) {
                            s += q[qo + c] * k[ko + c];
                        }
                        p[j] = s * scale;
                        max = Math.max(max, p[j]);
                    }
                    double z = 0;
                    for (int j = 0; j < t; j++) {
                        p[j] = Math.exp(p[j] - max);
                        z += p[j];
                    }
                    for (int j = 0; j < t; j++) {
                        if (p[j] == 0) {
                            continue;
                        }
                        int vo = ((bi * kv + kh) * t + j) * d;
                        for (int c = 0; c < d; c++) {
                            out[qo + c] += p[j] / z * v[vo + c];
                        }
                    }
                }
            }
        }
        return out;
    }

    private static Arg[] qkv(Random r, int b, int h, int kv, int t, int d, boolean grad) {
        float[] q = normal(r, b * h * t * d, 1);
        float[] kk = normal(r, b * kv * t * d, 1);
        float[] v = normal(r, b * kv * t * d, 1);
        return grad
                ? new Arg[] {Arg.grad("q", q, b, h, t, d), Arg.grad("k", kk, b, kv, t, d), Arg.grad("v", v, b, kv, t, d)}
                : new Arg[] {Arg.fixed("q", q, b, h, t, d), Arg.fixed("k", kk, b, kv, t, d),
                    Arg.fixed("v", v, b, kv, t, d)};
    }

    // ---- causal ----

    @Test
    void causalGqaMatchesReferenceWithGradients() {
        int b = 2;
        int h = 4;
        int kv = 2;
        int t = 5;
        int d = 4;
        double scale = 0.7; // not 1/sqrt(D) = 0.5, so an ignored scale shows
        Arg[] a = qkv(new Random(71), b, h, kv, t, d, true);
        checkForwardAndGradients(in -> {
            NDArray out = k.attentionCausal(in[0], in[1], in[2], scale);
            assertShape(out, b, h, t, d);
            return out;
        }, in -> attentionRef(in[0], in[1], in[2], null, b, h, kv, t, d, scale), 1e-5, 1e-3, 72, a);
    }

    @Test
    void causalMhaAndMqaMatchReference() {
        int b = 1;
        int t = 6;
        int d = 8;
        double scale = 1 / Math.sqrt(d);
        int[][] heads = {{3, 3}, {4, 1}, {6, 3}, {6, 2}};
        for (int[] hk : heads) {
            Arg[] a = qkv(new Random(73 + hk[0] * 10 + hk[1]), b, hk[0], hk[1], t, d, false);
            float[] got = runIn(Dtype.FP32, in -> k.attentionCausal(in[0], in[1], in[2], scale), a);
            double[][] in = valuesIn(Dtype.FP32, a);
            assertClose("H=" + hk[0] + " KV=" + hk[1],
                    attentionRef(in[0], in[1], in[2], null, b, hk[0], hk[1], t, d, scale), got, 1e-5, 1e-5);
        }
    }

    @Test
    void causalOutputsDoNotDependOnFutureTokens() {
        int b = 1;
        int h = 4;
        int kv = 2;
        int t = 7;
        int d = 4;
        Random r = new Random(74);
        float[] q = normal(r, b * h * t * d, 1);
        float[] kk = normal(r, b * kv * t * d, 1);
        float[] v = normal(r, b * kv * t * d, 1);
        for (int future = 1; future < t; future++) {
            float[] k2 = kk.clone();
            float[] v2 = v.clone();
            float[] q2 = q.clone();
            for (int g = 0; g < kv; g++) {
                for (int c = 0; c < d; c++) {
                    k2[(g * t + future) * d + c] += 3f;
                    v2[(g * t + future) * d + c] -= 2f;
                }
            }
            for (int hh = 0; hh < h; hh++) {
                for (int c = 0; c < d; c++) {
                    q2[(hh * t + future) * d + c] *= -1.5f;
                }
            }
            float[] before = causal(q, kk, v, b, h, kv, t, d);
            float[] after = causal(q2, k2, v2, b, h, kv, t, d);
            for (int hh = 0; hh < h; hh++) {
                for (int i = 0; i < t; i++) {
                    for (int c = 0; c < d; c++) {
                        int o = (hh * t + i) * d + c;
                        if (i < future && Math.abs(before[o] - after[o]) > 1e-6) {
                            fail("head " + hh + " token " + i + " changed when token " + future + " did");
                        }
                    }
                }
                // The changed token itself sees the change (the test would be vacuous otherwise).
                double diff = 0;
                for (int c = 0; c < d; c++) {
                    diff += Math.abs(before[(hh * t + future) * d + c] - after[(hh * t + future) * d + c]);
                }
                if (diff < 1e-3) {
                    fail("token " + future + " of head " + hh + " did not change");
                }
            }
        }
    }

    private float[] causal(float[] q, float[] kk, float[] v, int b, int h, int kv, int t, int d) {
        try (NDManager m = Torch.newManager()) {
            return k.attentionCausal(m.create(q, new Shape(b, h, t, d)), m.create(kk, new Shape(b, kv, t, d)),
                    m.create(v, new Shape(b, kv, t, d)), 0.5).toFloatArray();
        }
    }

    @Test
    void causalInBf16AndFp16AgreesWithReference() {
        int b = 2;
        int h = 4;
        int kv = 2;
        int t = 6;
        int d = 8;
        double scale = 1 / Math.sqrt(d);
        Arg[] a = qkv(new Random(75), b, h, kv, t, d, false);
        for (Dtype dt : new Dtype[] {Dtype.BF16, Dtype.FP16}) {
            float[] got = runIn(dt, in -> {
                NDArray out = k.attentionCausal(in[0], in[1], in[2], scale);
                assertEquals(dt, k.dtypeOf(out));
                return out;
            }, a);
            double[][] in = valuesIn(dt, a);
            double[] expected = attentionRef(in[0], in[1], in[2], null, b, h, kv, t, d, scale);
            // Outputs are convex combinations of v: error a few roundings of max|v|.
            double ulp = dt == Dtype.BF16 ? 0x1p-8 : 0x1p-11;
            assertClose(dt + " attention", expected, got, 4 * ulp * maxAbs(in[2]), 0);
        }
    }

    // ---- sliding window ----

    @Test
    void slidingWindowMatchesReferenceWithGradients() {
        int b = 2;
        int h = 4;
        int kv = 2;
        int t = 9;
        int d = 4;
        double scale = 0.7;
        Arg[] a = qkv(new Random(171), b, h, kv, t, d, true);
        checkForwardAndGradients(in -> {
            NDArray out = k.attentionWindow(in[0], in[1], in[2], t, 3, scale);
            assertShape(out, b, h, t, d);
            return out;
        }, in -> attentionRef(in[0], in[1], in[2], null, b, h, kv, t, d, scale, 3), 1e-5, 1e-3, 172, a);
    }

    @Test
    void slidingWindowHidesOldKeysAndEqualsCausalWhenWide() {
        int b = 1;
        int h = 2;
        int kv = 1;
        int t = 7;
        int d = 4;
        double scale = 0.5;
        Arg[] a = qkv(new Random(173), b, h, kv, t, d, false);
        float[] wide = runIn(Dtype.FP32, in -> k.attentionWindow(in[0], in[1], in[2], t, t, scale), a);
        float[] causal = runIn(Dtype.FP32, in -> k.attentionCausal(in[0], in[1], in[2], scale), a);
        assertClose("window = T", toDouble(causal), wide, 1e-6, 1e-6);
        float[] narrow = runIn(Dtype.FP32, in -> k.attentionWindow(in[0], in[1], in[2], t, 2, scale), a);
        double[][] in = valuesIn(Dtype.FP32, a);
        assertClose("window 2", attentionRef(in[0], in[1], in[2], null, b, h, kv, t, d, scale, 2), narrow, 1e-5, 1e-5);
        // The first two queries see the same keys either way; the last one does not.
        assertTrue(Math.abs(narrow[narrow.length - 1] - causal[causal.length - 1]) > 1e-4);
    }

    @Test
    void slidingWindowWithSegmentsMatchesReferenceWithGradients() {
        int b = 2;
        int h = 4;
        int kv = 2;
        int t = 8;
        int d = 4;
        double scale = 0.6;
        long[] seg = {0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1};
        Arg[] qkv = qkv(new Random(181), b, h, kv, t, d, true);
        Arg[] a = {qkv[0], qkv[1], qkv[2], Arg.ids("segment_ids", seg, b, t)};
        checkForwardAndGradients(in -> {
            NDArray out = k.attentionWindowSegments(in[0], in[1], in[2], in[3], 3, scale);
            assertShape(out, b, h, t, d);
            return out;
        }, in -> attentionRef(in[0], in[1], in[2], in[3], b, h, kv, t, d, scale, 3), 1e-5, 1e-3, 182, a);
    }

    // ---- bidirectional (the diffusion objective) ----

    @Test
    void bidirectionalSegmentsMatchReferenceWithGradients() {
        int b = 2;
        int h = 4;
        int kv = 2;
        int t = 8;
        int d = 4;
        double scale = 0.6;
        // Row 0: three packed samples; row 1: one sample then padding (its own segment).
        long[] seg = {0, 0, 0, 1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0, 1, 1};
        Arg[] qkv = qkv(new Random(91), b, h, kv, t, d, true);
        Arg[] a = {qkv[0], qkv[1], qkv[2], Arg.ids("segment_ids", seg, b, t)};
        checkForwardAndGradients(in -> {
            NDArray out = k.attentionBidirectional(in[0], in[1], in[2], in[3], scale);
            assertShape(out, b, h, t, d);
            return out;
        }, in -> attentionRef(in[0], in[1], in[2], in[3], b, h, kv, t, d, scale, 0, false), 1e-5, 1e-3, 92, a);
        // It is not the causal kernel: the first token of a sample reads the ones after it.
        Arg[] fixed = qkv(new Random(93), b, h, kv, t, d, false);
        Arg[] f = {fixed[0], fixed[1], fixed[2], Arg.ids("segment_ids", seg, b, t)};
        float[] bi = runIn(Dtype.FP32, in -> k.attentionBidirectional(in[0], in[1], in[2], in[3], scale), f);
        float[] causal = runIn(Dtype.FP32, in -> k.attentionSegments(in[0], in[1], in[2], in[3], scale), f);
        double diff = 0;
        for (int i = 0; i < bi.length; i++) diff = Math.max(diff, Math.abs(bi[i] - causal[i]));
        assertTrue(diff > 1e-2, "bidirectional differs from causal: " + diff);
    }

    // ---- segments ----

    @Test
    void segmentsMatchReferenceWithGradients() {
        int b = 2;
        int h = 4;
        int kv = 2;
        int t = 8;
        int d = 4;
        double scale = 0.6;
        // Row 0: three packed samples; row 1: one sample then padding (its own segment).
        long[] seg = {0, 0, 0, 1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0, 1, 1};
        Arg[] qkv = qkv(new Random(81), b, h, kv, t, d, true);
        Arg[] a = {qkv[0], qkv[1], qkv[2], Arg.ids("segment_ids", seg, b, t)};
        checkForwardAndGradients(in -> {
            NDArray out = k.attentionSegments(in[0], in[1], in[2], in[3], scale);
            assertShape(out, b, h, t, d);
            return out;
        }, in -> attentionRef(in[0], in[1], in[2], in[3], b, h, kv, t, d, scale), 1e-5, 1e-3, 82, a);
    }

    @Test
    void segmentsWithOneSegmentEqualCausal() {
        int b = 2;
        int h = 4;
        int kv = 2;
        int t = 6;
        int d = 4;
        Arg[] a = qkv(new Random(83), b, h, kv, t, d, false);
        long[] seg = new long[b * t]; // all 0
        try (NDManager m = Torch.newManager()) {
            NDArray q = a[0].create(m);
            NDArray kk = a[1].create(m);
            NDArray v = a[2].create(m);
            float[] causal = k.attentionCausal(q, kk, v, 0.5).toFloatArray();
            float[] segs = k.attentionSegments(q, kk, v, m.create(seg, new Shape(b, t)), 0.5).toFloatArray();
            assertClose("one segment vs causal", causal, segs, 1e-6, 1e-5);
        }
    }

    /** Row 0 packs samples [0,3), [3,5), [5,8); row 1 packs [0,6) and padding [6,8). */
    private static final long[] SEG = {0, 0, 0, 1, 1, 2, 2, 2, 5, 5, 5, 5, 5, 5, 9, 9};

    private static final int[][][] SAMPLES = {{{0, 3}, {3, 5}, {5, 8}}, {{0, 6}, {6, 8}}};

    @Test
    void segmentsEqualCausalAttentionOnEachSampleAlone() {
        int b = 2;
        int h = 4;
        int kv = 2;
        int t = 8;
        int d = 4;
        double scale = 0.45;
        Arg[] a = qkv(new Random(84), b, h, kv, t, d, false);
        try (NDManager m = Torch.newManager()) {
            NDArray q = a[0].create(m);
            NDArray kk = a[1].create(m);
            NDArray v = a[2].create(m);
            NDArray packed = k.attentionSegments(q, kk, v, m.create(SEG, new Shape(b, t)), scale);
            for (int bi = 0; bi < b; bi++) {
                for (int[] s : SAMPLES[bi]) {
                    String idx = bi + ":" + (bi + 1) + ", :, " + s[0] + ":" + s[1] + ", :";
                    NDArray alone = k.attentionCausal(q.get(idx), kk.get(idx), v.get(idx), scale);
                    assertClose("row " + bi + " sample " + s[0] + ".." + s[1], alone.toFloatArray(),
                            packed.get(idx).toFloatArray(), 1e-6, 1e-5);
                }
            }
        }
    }

    @Test
    void segmentsIsolatePackedSamples() {
        int b = 2;
        int h = 4;
        int kv = 2;
        int t = 8;
        int d = 4;
        Random r = new Random(85);
        Arg[] a = qkv(r, b, h, kv, t, d, false);
        for (int bi = 0; bi < b; bi++) {
            for (int[] sa : SAMPLES[bi]) {
                for (int token = sa[0]; token < sa[1]; token++) {
                    // Change q, k and v of one token of sample A.
                    float[][] changed = new float[3][];
                    for (int n = 0; n < 3; n++) {
                        changed[n] = toFloat(a[n].values());
                        int heads = n == 0 ? h : kv;
                        for (int hh = 0; hh < heads; hh++) {
                            for (int c = 0; c < d; c++) {
                                changed[n][((bi * heads + hh) * t + token) * d + c] += (float) r.nextGaussian() * 2;
                            }
                        }
                    }
                    float[] before = segments(toFloat(a[0].values()), toFloat(a[1].values()), toFloat(a[2].values()),
                            b, h, kv, t, d);
                    float[] after = segments(changed[0], changed[1], changed[2], b, h, kv, t, d);
                    for (int bj = 0; bj < b; bj++) {
                        for (int hh = 0; hh < h; hh++) {
                            for (int i = 0; i < t; i++) {
                                boolean inA = bj == bi && i >= sa[0] && i < sa[1];
                                double diff = 0;
                                for (int c = 0; c < d; c++) {
                                    int o = ((bj * h + hh) * t + i) * d + c;
                                    diff = Math.max(diff, Math.abs(before[o] - after[o]));
                                }
                                if (!inA && diff > 1e-6) {
                                    fail("changing row " + bi + " token " + token + " changed row " + bj + " token "
                                            + i + " (another sample) by " + diff);
                                }
                                if (inA && i == token && diff < 1e-4) {
                                    fail("changing row " + bi + " token " + token + " did not change it");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    private float[] segments(float[] q, float[] kk, float[] v, int b, int h, int kv, int t, int d) {
        try (NDManager m = Torch.newManager()) {
            return k.attentionSegments(m.create(q, new Shape(b, h, t, d)), m.create(kk, new Shape(b, kv, t, d)),
                    m.create(v, new Shape(b, kv, t, d)), m.create(SEG, new Shape(b, t)), 0.5).toFloatArray();
        }
    }

    private static float[] toFloat(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = (float) v[i];
        }
        return f;
    }

    @Test
    void segmentGradientsDoNotCrossSamples() {
        // Loss on the outputs of row 0's middle sample [3,5) only: every other token's q, k, v gets exactly 0.
        int b = 2;
        int h = 4;
        int kv = 2;
        int t = 8;
        int d = 4;
        Arg[] a = qkv(new Random(86), b, h, kv, t, d, false);
        try (NDManager m = Torch.newManager()) {
            NDArray[] in = new NDArray[3];
            for (int n = 0; n < 3; n++) {
                in[n] = a[n].create(m);
                in[n].setRequiresGradient(true);
            }
            try (GradientCollector gc = Torch.engine().newGradientCollector()) {
                NDArray out = k.attentionSegments(in[0], in[1], in[2], m.create(SEG, new Shape(b, t)), 0.5);
                NDArray part = out.get("0, :, 3:5, :");
                gc.backward(part.mul(m.randomNormal(part.getShape())).sum());
                for (int n = 0; n < 3; n++) {
                    NDArray g = in[n].getGradient();
                    String name = "qkv".substring(n, n + 1);
                    assertAllZero(name + " grad, row 0 before the sample", g.get("0, :, 0:3, :").toFloatArray());
                    assertAllZero(name + " grad, row 0 after the sample", g.get("0, :, 5:8, :").toFloatArray());
                    assertAllZero(name + " grad, row 1", g.get("1").toFloatArray());
                    if (maxAbs(KernelTestSupport.toDouble(g.get("0, :, 3:5, :").toFloatArray())) == 0) {
                        fail(name + " grad of the sample itself is zero");
                    }
                }
            }
        }
    }

    @Test
    void segmentsInBf16AgreeWithReference() {
        int b = 2;
        int h = 4;
        int kv = 2;
        int t = 8;
        int d = 8;
        double scale = 1 / Math.sqrt(d);
        Arg[] qkv = qkv(new Random(87), b, h, kv, t, d, false);
        Arg[] a = {qkv[0], qkv[1], qkv[2], Arg.ids("segment_ids", SEG, b, t)};
        float[] got = runIn(Dtype.BF16, in -> {
            NDArray out = k.attentionSegments(in[0], in[1], in[2], in[3], scale);
            assertEquals(Dtype.BF16, k.dtypeOf(out));
            return out;
        }, a);
        double[][] in = valuesIn(Dtype.BF16, a);
        double[] expected = attentionRef(in[0], in[1], in[2], in[3], b, h, kv, t, d, scale);
        assertClose("bf16 segments", expected, got, 4 * 0x1p-8 * maxAbs(in[2]), 0);
    }

    // ---- cu_seqlens -> segment ids ----

    /** Segment of token p: the number of sample ends cu[1..n] that are <= p. */
    private static long[] segmentsRef(long[] cu, int total) {
        long[] s = new long[total];
        for (int p = 0; p < total; p++) {
            for (int i = 1; i < cu.length; i++) {
                if (cu[i] <= p) {
                    s[p]++;
                }
            }
        }
        return s;
    }

    @Test
    void segmentsFromCuSeqlensMatchesReference() {
        long[][] cus = {{0, 3, 5}, {0, 3, 5, 8}, {0, 8}, {0, 1, 2, 3, 4}, {0, 2, 2, 5}, {0}, {0, 4}};
        int[] totals = {7, 8, 8, 6, 6, 3, 4};
        try (NDManager m = Torch.newManager()) {
            for (int c = 0; c < cus.length; c++) {
                NDArray s = k.segmentsFromCuSeqlens(m.create(cus[c]), totals[c]);
                assertEquals(DataType.INT64, s.getDataType());
                assertShape(s, totals[c]);
                assertArrayEquals(segmentsRef(cus[c], totals[c]), s.toLongArray(), "cu_seqlens case " + c);
            }
            // Hand-worked: two samples of 3 and 2 tokens, then 2 padding tokens in their own segment.
            assertArrayEquals(new long[] {0, 0, 0, 1, 1, 2, 2},
                    k.segmentsFromCuSeqlens(m.create(new long[] {0, 3, 5}), 7).toLongArray());
            // int32 boundaries, as flash-attention style code keeps them.
            assertArrayEquals(new long[] {0, 1, 1, 1, 2},
                    k.segmentsFromCuSeqlens(m.create(new int[] {0, 1, 4}), 5).toLongArray());
        }
    }

    @Test
    void cuSeqlensSegmentsDriveAttentionIsolation() {
        // End to end: segments from cu_seqlens, reshaped to [1,T], give the per-sample causal result.
        int h = 2;
        int t = 7;
        int d = 4;
        Arg[] a = qkv(new Random(88), 1, h, h, t, d, false);
        try (NDManager m = Torch.newManager()) {
            NDArray seg = k.segmentsFromCuSeqlens(m.create(new long[] {0, 4, 7}), t).reshape(1, t);
            NDArray q = a[0].create(m);
            NDArray kk = a[1].create(m);
            NDArray v = a[2].create(m);
            NDArray packed = k.attentionSegments(q, kk, v, seg, 0.5);
            for (int[] s : new int[][] {{0, 4}, {4, 7}}) {
                NDIndex idx = new NDIndex(":, :, {}:{}, :", s[0], s[1]);
                assertClose("sample " + s[0], k.attentionCausal(q.get(idx), kk.get(idx), v.get(idx), 0.5).toFloatArray(),
                        packed.get(idx).toFloatArray(), 1e-6, 1e-5);
            }
        }
    }
}
