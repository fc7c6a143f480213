package dev.jtune.model.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Self-checks of {@link ReferenceLlama} against hand computations and structural properties. */
class ReferenceLlamaTest {

    private static final double EXACT = 1e-12;

    private static LlamaConfig config(int layers, int heads, int kvHeads, RopeScaling rope, boolean tied) {
        // vocab 11, hidden 8, intermediate 12, head_dim 4
        return new LlamaConfig("llama", 11, 8, 12, layers, heads, kvHeads, 4, 64, 1e-5, 10000.0, rope, tied,
                null, 0, List.of(1), null, 0);
    }

    private static LlamaConfig config(int layers) {
        return config(layers, 2, 1, new RopeScaling.None(), false);
    }

    /** Random weights for every tensor of {@code c}; norm weights are 1 + N(0, 0.1). */
    private static Map<String, float[]> randomWeights(LlamaConfig c, long seed) {
        Random r = new Random(seed);
        Map<String, float[]> w = new HashMap<>();
        int h = c.hiddenSize();
        int q = c.numAttentionHeads() * c.headDim();
        int kv = c.numKeyValueHeads() * c.headDim();
        int i = c.intermediateSize();
        w.put("model.embed_tokens.weight", gaussian(r, c.vocabSize() * h, 1.0, 0));
        w.put("model.norm.weight", gaussian(r, h, 0.1, 1));
        if (!c.tieWordEmbeddings()) {
            w.put("lm_head.weight", gaussian(r, c.vocabSize() * h, 0.5, 0));
        }
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            w.put(p + "input_layernorm.weight", gaussian(r, h, 0.1, 1));
            w.put(p + "post_attention_layernorm.weight", gaussian(r, h, 0.1, 1));
            w.put(p + "self_attn.q_proj.weight", gaussian(r, q * h, 0.5, 0));
            w.put(p + "self_attn.k_proj.weight", gaussian(r, kv * h, 0.5, 0));
            w.put(p + "self_attn.v_proj.weight", gaussian(r, kv * h, 0.5, 0));
            w.put(p + "self_attn.o_proj.weight", gaussian(r, h * q, 0.5, 0));
            w.put(p + "mlp.gate_proj.weight", gaussian(r, i * h, 0.5, 0));
            w.put(p + "mlp.up_proj.weight", gaussian(r, i * h, 0.5, 0));
            w.put(p + "mlp.down_proj.weight", gaussian(r, h * i, 0.5, 0));
        }
        return w;
    }

    private static float[] gaussian(Random r, int n, double std, double mean) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (mean + std * r.nextGaussian());
        }
        return a;
    }

    private static void zero(Map<String, float[]> w, String... suffixes) {
        for (var e : w.entrySet()) {
            for (String s : suffixes) {
                if (e.getKey().endsWith(s)) {
                    java.util.Arrays.fill(e.getValue(), 0f);
                }
            }
        }
    }

    private static ReferenceLlama model(LlamaConfig c, Map<String, float[]> w) {
        return new ReferenceLlama(c, w::get);
    }

    // ---------------------------------------------------------------------------------------- hand algebra

    private static double[] row(float[] m, int r, int cols) {
        double[] out = new double[cols];
        for (int c = 0; c < cols; c++) {
            out[c] = m[r * cols + c];
        }
        return out;
    }

    private static double[] linear(float[] w, double[] x, int out) {
        double[] y = new double[out];
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < x.length; i++) {
                y[o] += w[o * x.length + i] * x[i];
            }
        }
        return y;
    }

    private static double[] rmsNorm(double[] x, float[] w, double eps) {
        double ms = 0;
        for (double e : x) {
            ms += e * e / x.length;
        }
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = w[i] * x[i] / Math.sqrt(ms + eps);
        }
        return y;
    }

    private static double[] plus(double[] a, double[] b) {
        double[] y = a.clone();
        for (int i = 0; i < y.length; i++) {
            y[i] += b[i];
        }
        return y;
    }

    private static double[] logitsOf(LlamaConfig c, Map<String, float[]> w, double[] h) {
        return linear(w.get("lm_head.weight"), rmsNorm(h, w.get("model.norm.weight"), c.rmsNormEps()), c.vocabSize());
    }

    private static void assertClose(double[] expected, double[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], tol, what + "[" + i + "]");
        }
    }

    private static void assertClose(double[][] expected, double[][] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what + ": rows");
        for (int t = 0; t < expected.length; t++) {
            assertClose(expected[t], actual[t], tol, what + "[" + t + "]");
        }
    }

    private static double maxAbsDiff(double[][] a, double[][] b) {
        double m = 0;
        for (int t = 0; t < a.length; t++) {
            for (int v = 0; v < a[t].length; v++) {
                m = Math.max(m, Math.abs(a[t][v] - b[t][v]));
            }
        }
        return m;
    }

    // ---------------------------------------------------------------------------------------- tests

    @Test
    void withZeroAttentionAndMlpLogitsAreLmHeadOfNormedEmbedding() {
        LlamaConfig c = config(1);
        Map<String, float[]> w = randomWeights(c, 1);
        zero(w, "_proj.weight");
        int[] ids = {3, 7, 0, 10};
        double[][] logits = model(c, w).logits(ids, null);
        for (int t = 0; t < ids.length; t++) {
            double[] e = row(w.get("model.embed_tokens.weight"), ids[t], c.hiddenSize());
            assertClose(logitsOf(c, w, e), logits[t], EXACT, "token " + t);
        }
    }

    @Test
    void mlpIsDownOfSiluGateTimesUp() {
        LlamaConfig c = config(1);
        Map<String, float[]> w = randomWeights(c, 2);
        zero(w, "self_attn.v_proj.weight"); // attention output is then exactly zero
        String p = "model.layers.0.";
        int[] ids = {5, 2};
        double[][] logits = model(c, w).logits(ids, null);
        for (int t = 0; t < ids.length; t++) {
            double[] e = row(w.get("model.embed_tokens.weight"), ids[t], c.hiddenSize());
            double[] m = rmsNorm(e, w.get(p + "post_attention_layernorm.weight"), c.rmsNormEps());
            double[] g = linear(w.get(p + "mlp.gate_proj.weight"), m, c.intermediateSize());
            double[] u = linear(w.get(p + "mlp.up_proj.weight"), m, c.intermediateSize());
            double[] a = new double[g.length];
            for (int j = 0; j < a.length; j++) {
                a[j] = g[j] / (1 + Math.exp(-g[j])) * u[j];
            }
            double[] h = plus(e, linear(w.get(p + "mlp.down_proj.weight"), a, c.hiddenSize()));
            assertClose(logitsOf(c, w, h), logits[t], EXACT, "token " + t);
        }
    }

    @Test
    void aSingleTokenAttendsOnlyToItselfWhateverItsPosition() {
        LlamaConfig c = config(1, 4, 2, new RopeScaling.None(), false); // 2 query heads per kv head
        Map<String, float[]> w = randomWeights(c, 3);
        zero(w, "mlp.down_proj.weight");
        String p = "model.layers.0.";
        int d = c.headDim();
        double[] e = row(w.get("model.embed_tokens.weight"), 6, c.hiddenSize());
        double[] n = rmsNorm(e, w.get(p + "input_layernorm.weight"), c.rmsNormEps());
        double[] v = linear(w.get(p + "self_attn.v_proj.weight"), n, c.numKeyValueHeads() * d);
        double[] concat = new double[c.numAttentionHeads() * d];
        for (int hq = 0; hq < c.numAttentionHeads(); hq++) {
            System.arraycopy(v, (hq / 2) * d, concat, hq * d, d); // repeat_kv: heads 0,1 <- kv 0; 2,3 <- kv 1
        }
        double[] h = plus(e, linear(w.get(p + "self_attn.o_proj.weight"), concat, c.hiddenSize()));
        double[] expected = logitsOf(c, w, h);
        ReferenceLlama m = model(c, w);
        assertClose(expected, m.logits(new int[] {6}, null)[0], EXACT, "position 0");
        assertClose(expected, m.logits(new int[] {6}, new int[] {29})[0], EXACT, "position 29");
    }

    /**
     * Token 1 of two, by hand, with RoPE written as complex rotation: pairs (x[f], x[f + d/2]) are the complex
     * numbers x[f] + i x[f + d/2], rotated by e^{i p theta_f}; so q_rot . k_rot = Re sum q conj(k) e^{i (p_q - p_k) theta_f}.
     */
    @Test
    void twoTokenAttentionMatchesComplexRotaryByHand() {
        LlamaConfig c = config(1, 2, 1, new RopeScaling.Linear(2.0), false);
        Map<String, float[]> w = randomWeights(c, 4);
        zero(w, "mlp.down_proj.weight");
        String p = "model.layers.0.";
        int d = c.headDim();
        int half = d / 2;
        int[] ids = {9, 4};
        int[] pos = {3, 8};
        double[][] e = new double[2][];
        double[][] n = new double[2][];
        for (int t = 0; t < 2; t++) {
            e[t] = row(w.get("model.embed_tokens.weight"), ids[t], c.hiddenSize());
            n[t] = rmsNorm(e[t], w.get(p + "input_layernorm.weight"), c.rmsNormEps());
        }
        double[] q = linear(w.get(p + "self_attn.q_proj.weight"), n[1], 2 * d);
        double[][] k = {linear(w.get(p + "self_attn.k_proj.weight"), n[0], d),
                linear(w.get(p + "self_attn.k_proj.weight"), n[1], d)};
        double[][] v = {linear(w.get(p + "self_attn.v_proj.weight"), n[0], d),
                linear(w.get(p + "self_attn.v_proj.weight"), n[1], d)};
        double[] concat = new double[2 * d];
        for (int hq = 0; hq < 2; hq++) {
            double[] s = new double[2];
            for (int j = 0; j < 2; j++) {
                for (int f = 0; f < half; f++) {
                    double theta = 1.0 / Math.pow(10000.0, 2.0 * f / d) / 2.0; // linear scaling, factor 2
                    double angle = (pos[1] - pos[j]) * theta;
                    double qr = q[hq * d + f];
                    double qi = q[hq * d + half + f];
                    double kr = k[j][f];
                    double ki = k[j][half + f];
                    // (qr + i qi)(kr - i ki) = (qr kr + qi ki) + i (qi kr - qr ki)
                    double re = qr * kr + qi * ki;
                    double im = qi * kr - qr * ki;
                    s[j] += re * Math.cos(angle) - im * Math.sin(angle);
                }
                s[j] /= Math.sqrt(d);
            }
            double p0 = 1 / (1 + Math.exp(s[1] - s[0]));
            for (int x = 0; x < d; x++) {
                concat[hq * d + x] = p0 * v[0][x] + (1 - p0) * v[1][x];
            }
        }
        double[] h = plus(e[1], linear(w.get(p + "self_attn.o_proj.weight"), concat, c.hiddenSize()));
        assertClose(logitsOf(c, w, h), model(c, w).logits(ids, pos)[1], 1e-10, "token 1");
    }

    @Test
    void laterTokensDoNotChangeEarlierLogits() {
        LlamaConfig c = config(2);
        ReferenceLlama m = model(c, randomWeights(c, 5));
        int[] a = {1, 4, 2, 8, 5, 3};
        int[] b = a.clone();
        b[3] = 9;
        b[5] = 0;
        double[][] la = m.logits(a, null);
        double[][] lb = m.logits(b, null);
        for (int t = 0; t < 3; t++) {
            assertArrayEquals(la[t], lb[t], 0.0, "position " + t);
        }
        assertTrue(maxAbsDiff(new double[][] {la[3]}, new double[][] {lb[3]}) > 1e-3, "the changed token matters");
    }

    @Test
    void packedSamplesEqualEachSampleAlone() {
        LlamaConfig c = config(2, 4, 2, new RopeScaling.Llama3(8, 1, 4, 16), false);
        ReferenceLlama m = model(c, randomWeights(c, 6));
        int[] a = {0, 5, 6, 7, 8};
        int[] b = {0, 10, 3, 2};
        int[] ids = {0, 5, 6, 7, 8, 0, 10, 3, 2};
        int[] seg = {0, 0, 0, 0, 0, 1, 1, 1, 1};
        int[] pos = {0, 1, 2, 3, 4, 0, 1, 2, 3};
        assertArrayEquals(pos, ReferenceLlama.restartingPositions(seg));
        double[][] alone = new double[ids.length][];
        double[][] la = m.logits(a, null);
        double[][] lb = m.logits(b, null);
        System.arraycopy(la, 0, alone, 0, a.length);
        System.arraycopy(lb, 0, alone, a.length, b.length);
        assertClose(alone, m.logitsPacked(ids, pos, seg), EXACT, "packed, explicit positions");
        assertClose(alone, m.logitsPacked(ids, null, seg), EXACT, "packed, default positions");
        // without the segment mask the second sample would see the first
        assertTrue(maxAbsDiff(alone, m.logits(ids, pos)) > 1e-3, "segment isolation matters");
    }

    @Test
    void groupedQueryAttentionEqualsMultiHeadWithDuplicatedKvHeads() {
        LlamaConfig gqa = config(2, 4, 2, new RopeScaling.None(), false);
        LlamaConfig mha = config(2, 4, 4, new RopeScaling.None(), false);
        Map<String, float[]> w = randomWeights(gqa, 7);
        Map<String, float[]> dup = new HashMap<>(w);
        int rowLen = gqa.headDim() * gqa.hiddenSize(); // one kv head's rows of k_proj / v_proj
        for (int l = 0; l < 2; l++) {
            for (String kv : List.of("k_proj", "v_proj")) {
                String name = "model.layers." + l + ".self_attn." + kv + ".weight";
                float[] src = w.get(name);
                float[] out = new float[4 * rowLen];
                for (int hq = 0; hq < 4; hq++) {
                    System.arraycopy(src, (hq / 2) * rowLen, out, hq * rowLen, rowLen);
                }
                dup.put(name, out);
            }
        }
        int[] ids = {0, 3, 9, 1, 1, 7, 2};
        assertClose(model(mha, dup).logits(ids, null), model(gqa, w).logits(ids, null), EXACT, "gqa vs mha");
    }

    @Test
    void rotaryEmbeddingIsAppliedAndOnlyRelativePositionsMatter() {
        LlamaConfig c = config(2, 2, 2, new RopeScaling.None(), false);
        ReferenceLlama m = model(c, randomWeights(c, 8));
        int[] ids = {2, 4, 6, 8, 10, 1};
        int[] shifted = {7, 8, 9, 10, 11, 12};
        double[][] base = m.logits(ids, null);
        assertClose(base, m.logits(ids, shifted), 1e-9, "uniform shift");
        assertTrue(maxAbsDiff(base, m.logits(ids, new int[ids.length])) > 1e-3, "positions matter");
    }

    @Test
    void tiedEmbeddingsUseTheEmbeddingMatrixAsLmHead() {
        LlamaConfig tied = config(1, 2, 1, new RopeScaling.None(), true);
        LlamaConfig untied = config(1, 2, 1, new RopeScaling.None(), false);
        Map<String, float[]> w = randomWeights(tied, 9);
        Map<String, float[]> withHead = new HashMap<>(w);
        withHead.put("lm_head.weight", w.get("model.embed_tokens.weight").clone());
        ReferenceLlama t = new ReferenceLlama(tied, name -> {
            if (name.equals("lm_head.weight")) {
                throw new AssertionError("lm_head.weight asked for with tied embeddings");
            }
            return w.get(name);
        });
        int[] ids = {1, 2, 3};
        assertClose(model(untied, withHead).logits(ids, null), t.logits(ids, null), EXACT, "tied");
    }

    @Test
    void defaultAndLinearInverseFrequencies() {
        LlamaConfig plain = new LlamaConfig("llama", 11, 64, 12, 1, 4, 4, 16, 64, 1e-5, 10000.0,
                new RopeScaling.None(), false, null, null, List.of(), null, 0);
        double[] inv = ReferenceLlama.inverseFrequencies(plain);
        assertEquals(8, inv.length);
        assertEquals(1.0, inv[0], 0);
        assertEquals(0.1, inv[2], 1e-15); // 10000^(-4/16)
        assertEquals(0.01, inv[4], 1e-15);
        assertEquals(0.001, inv[6], 1e-15);
        LlamaConfig linear = new LlamaConfig("llama", 11, 64, 12, 1, 4, 4, 16, 64, 1e-5, 10000.0,
                new RopeScaling.Linear(4.0), false, null, null, List.of(), null, 0);
        double[] lin = ReferenceLlama.inverseFrequencies(linear);
        for (int i = 0; i < 8; i++) {
            assertEquals(inv[i] / 4, lin[i], 1e-18);
        }
    }

    /**
     * head_dim 16, theta 10000, llama3 {factor 8, low 1, high 4, original 32}: wavelengths 2 pi 10000^(k/8) are
     * 6.28 (< 32/4: kept), 19.87 (between 8 and 32: smoothed) and >= 62.8 (> 32/1: divided by 8).
     */
    @Test
    void llama3InverseFrequencies() {
        LlamaConfig c = new LlamaConfig("llama", 259, 64, 128, 2, 4, 2, 16, 128, 1e-5, 10000.0,
                new RopeScaling.Llama3(8, 1, 4, 32), false, null, 0, List.of(1), 2, 0);
        double[] inv = ReferenceLlama.inverseFrequencies(c);
        double r = Math.pow(10000, -1.0 / 8); // 0.31622776601683794
        double smooth = (32 / (2 * Math.PI / r) - 1) / 3; // 0.2035...
        double[] expected = {
                1.0,
                (1 - smooth) * r / 8 + smooth * r,
                Math.pow(r, 2) / 8,
                Math.pow(r, 3) / 8,
                Math.pow(r, 4) / 8,
                Math.pow(r, 5) / 8,
                Math.pow(r, 6) / 8,
                Math.pow(r, 7) / 8,
        };
        assertClose(expected, inv, 1e-15, "inv_freq");
        // the same numbers, literally
        assertClose(new double[] {1.0, 0.09583998588296266, 0.0125, 0.003952847075210474, 0.00125,
                3.952847075210474e-4, 1.25e-4, 3.952847075210474e-5}, inv, 1e-15, "inv_freq literal");
    }

    @Test
    void wrongWeightShapesAndMissingWeightsAreRejected() {
        LlamaConfig c = config(1);
        Map<String, float[]> w = randomWeights(c, 10);
        w.put("model.layers.0.self_attn.k_proj.weight", new float[5]);
        var e = assertThrows(IllegalArgumentException.class, () -> model(c, w));
        assertTrue(e.getMessage().contains("k_proj"), e.getMessage());
        Map<String, float[]> missing = randomWeights(c, 10);
        missing.remove("model.norm.weight");
        assertThrows(IllegalArgumentException.class, () -> model(c, missing));
        Set<String> expectedNames = randomWeights(c, 0).keySet();
        assertEquals(12, expectedNames.size()); // embed, norm, lm_head + 9 per layer
    }

    @Test
    void sequenceNllSumsNegativeLogProbsOfTheNextTokens() {
        double[][] logits = {{0, 0, 0}, {Math.log(2), 0, 0}, {0, 0, 0}};
        int[] ids = {2, 0, 1};
        // p(ids[1]=0 | .) = 1/3 from row 0; p(ids[2]=1 | .) = 1/4 from row 1
        assertEquals(Math.log(3) + Math.log(4), ReferenceLlama.sequenceNll(logits, ids, 1), 1e-12);
        assertEquals(Math.log(4), ReferenceLlama.sequenceNll(logits, ids, 2), 1e-12);
    }
}
