package dev.jtune.model.engine;

import static dev.jtune.model.engine.KernelTestSupport.checkForwardAndGradients;
import static dev.jtune.model.engine.KernelTestSupport.normal;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.KernelTestSupport.Arg;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The kernels other families add to Llama's — Gemma's (1 + w) RMSNorm, GeGLU-tanh, soft-capping, √hidden embeddings and
 * eager soft-capped attention, Phi-3's partial rotary — each against a pure-Java reference in double, gradients against
 * finite differences of that reference.
 */
class KernelFamilyTest {
    private final Kernels k = Kernels.get();

    @Test
    void gemmaRmsNormScalesByOnePlusWeight() {
        int rows = 3;
        int e = 6;
        double eps = 1e-6;
        Random r = new Random(31);
        checkForwardAndGradients(in -> k.rmsNormGemma(in[0], in[1], eps), in -> {
            double[] x = in[0];
            double[] w = in[1];
            double[] out = new double[x.length];
            for (int i = 0; i < rows; i++) {
                double ms = 0;
                for (int j = 0; j < e; j++) {
                    ms += x[i * e + j] * x[i * e + j];
                }
                double inv = 1 / Math.sqrt(ms / e + eps);
                for (int j = 0; j < e; j++) {
                    out[i * e + j] = x[i * e + j] * inv * (1 + w[j]);
                }
            }
            return out;
        }, 1e-5, 2e-3, 32, Arg.grad("x", normal(r, rows * e, 1), rows, e), Arg.grad("weight", normal(r, e, 0.3), e));
    }

    @Test
    void gegluIsTanhGeluOfGateTimesUp() {
        Random r = new Random(33);
        int n = 10;
        checkForwardAndGradients(in -> k.gegluTanh(in[0], in[1]), in -> {
            double[] out = new double[n];
            for (int i = 0; i < n; i++) {
                double g = in[0][i];
                double gelu = 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g * g * g)));
                out[i] = gelu * in[1][i];
            }
            return out;
        }, 1e-5, 2e-3, 34, Arg.grad("gate", normal(r, n, 1.5), n), Arg.grad("up", normal(r, n, 1), n));
    }

    @Test
    void softcapBoundsByCap() {
        Random r = new Random(35);
        int n = 12;
        double cap = 3.0;
        checkForwardAndGradients(in -> k.softcap(in[0], cap), in -> {
            double[] out = new double[n];
            for (int i = 0; i < n; i++) {
                out[i] = cap * Math.tanh(in[0][i] / cap);
            }
            return out;
        }, 1e-5, 2e-3, 36, Arg.grad("x", normal(r, n, 4), n));
    }

    @Test
    void scaledEmbeddingMultipliesRowsByTheScaleInTheWeightsDtype() {
        int v = 5;
        int e = 4;
        long[] ids = {4, 0, 4, 2};
        double scale = Math.sqrt(48);
        checkForwardAndGradients(in -> k.embeddingScaled(in[1], in[0], scale), in -> {
            double[] out = new double[ids.length * e];
            for (int p = 0; p < ids.length; p++) {
                for (int j = 0; j < e; j++) {
                    out[p * e + j] = in[0][(int) in[1][p] * e + j] * (float) scale;
                }
            }
            return out;
        }, 1e-5, 2e-3, 38, Arg.grad("weight", normal(new Random(37), v * e, 1), v, e), Arg.ids("ids", ids, 1, 4));
        // In bf16 the scale itself is rounded to bf16 first, as Gemma's embed_scale.to(weight.dtype): √48 → 6.9375.
        try (NDManager m = Torch.newManager()) {
            NDArray w = k.cast(m.create(new float[] {1, 1, 1, 1}, new Shape(1, 4)), Dtype.BF16);
            float got = k.cast(k.embeddingScaled(m.create(new long[] {0}), w, scale), Dtype.FP32).toFloatArray()[0];
            assertEquals(KernelTestSupport.bf16((float) scale), got, 0f);
        }
    }

    @Test
    void partialRotaryRotatesOnlyTheFirstFeatures() {
        int b = 1;
        int h = 2;
        int t = 3;
        int d = 8;
        int rot = 4;
        Random r = new Random(39);
        float[] cos = new float[b * t * rot];
        float[] sin = new float[b * t * rot];
        for (int p = 0; p < t; p++) {
            for (int i = 0; i < rot / 2; i++) {
                double angle = p / Math.pow(10000, 2.0 * i / rot);
                cos[p * rot + i] = cos[p * rot + i + rot / 2] = (float) Math.cos(angle);
                sin[p * rot + i] = sin[p * rot + i + rot / 2] = (float) Math.sin(angle);
            }
        }
        checkForwardAndGradients(in -> k.rope(in[0], in[1], in[2]), in -> {
            double[] x = in[0];
            double[] out = x.clone();
            for (int hh = 0; hh < h; hh++) {
                for (int p = 0; p < t; p++) {
                    int base = (hh * t + p) * d;
                    for (int i = 0; i < rot; i++) {
                        double rotated = i < rot / 2 ? -x[base + i + rot / 2] : x[base + i - rot / 2];
                        out[base + i] = x[base + i] * in[1][p * rot + i] + rotated * in[2][p * rot + i];
                    }
                }
            }
            return out;
        }, 1e-5, 2e-3, 40, Arg.grad("x", normal(r, b * h * t * d, 1), b, h, t, d),
                Arg.fixed("cos", cos, b, t, rot), Arg.fixed("sin", sin, b, t, rot));
    }

    /** Soft-capped attention with GQA, a window and packed segments, against the eager formula in double. */
    @Test
    void cappedAttentionMatchesEagerFormulaWithWindowAndSegments() {
        int b = 1;
        int h = 4;
        int kv = 2;
        int t = 6;
        int d = 4;
        double scale = 0.4;
        double cap = 2.0;
        int window = 3;
        long[] segments = {0, 0, 0, 0, 1, 1};
        Random r = new Random(41);
        checkForwardAndGradients(in -> k.attentionCapped(in[0], in[1], in[2], in[3], t, window, scale, cap),
                in -> eager(in[0], in[1], in[2], segments, h, kv, t, d, scale, cap, window), 1e-5, 3e-3, 42,
                Arg.grad("q", normal(r, b * h * t * d, 1.5), b, h, t, d),
                Arg.grad("k", normal(r, b * kv * t * d, 1.5), b, kv, t, d),
                Arg.grad("v", normal(r, b * kv * t * d, 1), b, kv, t, d),
                Arg.ids("segments", segments, b, t));
    }

    /** Without a window or segments, and with the cache's layout (keys longer than length), plain causal. */
    @Test
    void cappedAttentionOverACacheSeesEveryEarlierToken() {
        int h = 2;
        int t = 5;
        int d = 4;
        Random r = new Random(43);
        float[] q = normal(r, h * 2 * d, 1);
        float[] kk = normal(r, h * 8 * d, 1);
        float[] v = normal(r, h * 8 * d, 1);
        try (NDManager m = Torch.newManager()) {
            // The 2 newest of 5 tokens, keys and values in a cache of capacity 8 (slots 5..7 unused).
            NDArray out = k.attentionCapped(m.create(q, new Shape(1, h, 2, d)), m.create(kk, new Shape(1, h, 8, d)),
                    m.create(v, new Shape(1, h, 8, d)), null, t, 0, 0.5, 0);
            NDArray full = k.attentionWithPast(m.create(q, new Shape(1, h, 2, d)), m.create(kk, new Shape(1, h, 8, d)),
                    m.create(v, new Shape(1, h, 8, d)), t, 0.5);
            KernelTestSupport.assertClose("capped without a cap = attention with past",
                    KernelTestSupport.toDouble(full.toFloatArray()), out.toFloatArray(), 1e-6, 1e-5);
        }
    }

    private static double[] eager(double[] q, double[] k, double[] v, long[] seg, int h, int kv, int t, int d,
            double scale, double cap, int window) {
        double[] out = new double[h * t * d];
        int rep = h / kv;
        for (int hh = 0; hh < h; hh++) {
            int g = hh / rep;
            for (int i = 0; i < t; i++) {
                double[] s = new double[t];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < t; j++) {
                    boolean seen = j <= i && i - j < window && seg[i] == seg[j];
                    if (!seen) {
                        s[j] = Double.NEGATIVE_INFINITY;
                        continue;
                    }
                    double dot = 0;
                    for (int x = 0; x < d; x++) {
                        dot += q[(hh * t + i) * d + x] * k[(g * t + j) * d + x];
                    }
                    s[j] = cap * Math.tanh(dot * scale / cap);
                    max = Math.max(max, s[j]);
                }
                double sum = 0;
                for (int j = 0; j < t; j++) {
                    s[j] = Double.isInfinite(s[j]) ? 0 : Math.exp(s[j] - max);
                    sum += s[j];
                }
                for (int j = 0; j < t; j++) {
                    for (int x = 0; x < d; x++) {
                        out[(hh * t + i) * d + x] += s[j] / sum * v[(g * t + j) * d + x];
                    }
                }
            }
        }
        return out;
    }

    @Test
    void splitLastCutsAFusedProjection() {
        try (NDManager m = Torch.newManager()) {
            NDArray x = m.arange(0f, 12f).reshape(2, 6);
            NDList parts = k.splitLast(x, 3, 2, 1);
            assertEquals(3, parts.size());
            org.junit.jupiter.api.Assertions.assertArrayEquals(new float[] {0, 1, 2, 6, 7, 8}, parts.get(0).toFloatArray());
            org.junit.jupiter.api.Assertions.assertArrayEquals(new float[] {3, 4, 9, 10}, parts.get(1).toFloatArray());
            org.junit.jupiter.api.Assertions.assertArrayEquals(new float[] {5, 11}, parts.get(2).toFloatArray());
        }
    }
}
