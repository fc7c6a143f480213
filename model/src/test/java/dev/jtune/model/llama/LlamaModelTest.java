package dev.jtune.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The libtorch Llama against {@link ReferenceLlama}, a loop-based double-precision transcription of transformers. */
class LlamaModelTest {

    static LlamaConfig config(int layers, int heads, int kvHeads, RopeScaling rope, boolean tied) {
        return new LlamaConfig("llama", 37, 24, 40, layers, heads, kvHeads, 8, 64, 1e-5, 10000.0, rope, tied,
                Dtype.FP32, 0, List.of(1), null, 0);
    }

    /** Random weights with scales large enough that attention is far from uniform. */
    static Map<String, float[]> randomWeights(LlamaConfig c, long seed) {
        Random r = new Random(seed);
        Map<String, float[]> w = new LinkedHashMap<>();
        int e = c.hiddenSize();
        int q = c.numAttentionHeads() * c.headDim();
        int kv = c.numKeyValueHeads() * c.headDim();
        int ff = c.intermediateSize();
        w.put("model.embed_tokens.weight", gaussian(r, c.vocabSize() * e, 0.7, 0));
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = "model.layers." + i + ".";
            w.put(p + "input_layernorm.weight", gaussian(r, e, 0.1, 1));
            w.put(p + "self_attn.q_proj.weight", gaussian(r, q * e, 0.3, 0));
            w.put(p + "self_attn.k_proj.weight", gaussian(r, kv * e, 0.3, 0));
            w.put(p + "self_attn.v_proj.weight", gaussian(r, kv * e, 0.2, 0));
            w.put(p + "self_attn.o_proj.weight", gaussian(r, e * q, 0.2, 0));
            w.put(p + "post_attention_layernorm.weight", gaussian(r, e, 0.1, 1));
            w.put(p + "mlp.gate_proj.weight", gaussian(r, ff * e, 0.2, 0));
            w.put(p + "mlp.up_proj.weight", gaussian(r, ff * e, 0.2, 0));
            w.put(p + "mlp.down_proj.weight", gaussian(r, e * ff, 0.15, 0));
        }
        w.put("model.norm.weight", gaussian(r, e, 0.1, 1));
        if (!c.tieWordEmbeddings()) {
            w.put("lm_head.weight", gaussian(r, c.vocabSize() * e, 0.3, 0));
        }
        return w;
    }

    private static float[] gaussian(Random r, int n, double std, double mean) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (mean + std * r.nextGaussian());
        }
        return out;
    }

    /** Weights from a map, with shapes derived from the config as a checkpoint would declare them. */
    static WeightSource source(LlamaConfig c, Map<String, float[]> w) {
        return new WeightSource() {
            @Override
            public boolean contains(String name) {
                return w.containsKey(name);
            }

            @Override
            public long[] shape(String name) {
                int e = c.hiddenSize();
                int n = w.get(name).length;
                if (name.endsWith("norm.weight")) {
                    return new long[] {n};
                }
                if (name.endsWith("o_proj.weight") || name.endsWith("down_proj.weight")) {
                    return new long[] {e, n / e};
                }
                return new long[] {n / e, e};
            }

            @Override
            public float[] floats(String name) {
                return w.get(name);
            }

            @Override
            public String describe() {
                return "test weights";
            }
        };
    }

    private static int[] randomIds(Random r, int t, int vocab) {
        int[] ids = new int[t];
        for (int i = 0; i < t; i++) {
            ids[i] = r.nextInt(vocab);
        }
        return ids;
    }

    /** Logits [T][V] of one row run through the libtorch model. */
    private static float[][] run(LlamaModel model, NDManager m, int[] ids, int[] positions, int[] segments) {
        int t = ids.length;
        NDArray input = m.create(Arrays.stream(ids).asLongStream().toArray()).reshape(1, t);
        NDArray pos = positions == null
                ? LlamaModel.defaultPositions(input)
                : m.create(Arrays.stream(positions).asLongStream().toArray()).reshape(1, t);
        NDArray seg = segments == null ? null : m.create(Arrays.stream(segments).asLongStream().toArray()).reshape(1, t);
        NDArray logits = model.forward(input, pos, seg);
        if (model.dtype() != Dtype.FP32) {
            logits = Kernels.get().cast(logits, Dtype.FP32);
        }
        float[] flat = logits.toFloatArray();
        int v = flat.length / t;
        float[][] out = new float[t][v];
        for (int i = 0; i < t; i++) {
            System.arraycopy(flat, i * v, out[i], 0, v);
        }
        return out;
    }

    private static double maxAbsDiff(double[][] expected, float[][] actual) {
        assertEquals(expected.length, actual.length);
        double max = 0;
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i].length, actual[i].length);
            for (int j = 0; j < expected[i].length; j++) {
                max = Math.max(max, Math.abs(expected[i][j] - actual[i][j]));
            }
        }
        return max;
    }

    private static double maxAbs(double[][] a) {
        return Arrays.stream(a).flatMapToDouble(Arrays::stream).map(Math::abs).max().orElse(0);
    }

    private void checkAgainstReference(LlamaConfig c, long seed) {
        Map<String, float[]> w = randomWeights(c, seed);
        ReferenceLlama reference = new ReferenceLlama(c, w::get);
        int[] ids = randomIds(new Random(seed + 1), 13, c.vocabSize());
        double[][] expected = reference.logits(ids, null);
        assertTrue(maxAbs(expected) > 1, "logits large enough to be a meaningful check");
        try (NDManager m = Torch.newManager(); LlamaModel model = LlamaModel.load(c, source(c, w), Dtype.FP32, m)) {
            double diff = maxAbsDiff(expected, run(model, m, ids, null, null));
            assertTrue(diff <= 1e-4, "max |Δlogit| = " + diff + " for " + c);
        }
    }

    @Test
    void fp32LogitsMatchReferenceWithGroupedQueryAttentionAndLlama3Rope() {
        checkAgainstReference(config(2, 4, 2, new RopeScaling.Llama3(8, 1, 4, 16), false), 11);
    }

    @Test
    void fp32LogitsMatchReferenceMultiHeadLinearRopeTied() {
        checkAgainstReference(config(2, 3, 3, new RopeScaling.Linear(2.0), true), 12);
    }

    @Test
    void fp32LogitsMatchReferenceMultiQuery() {
        checkAgainstReference(config(1, 4, 1, new RopeScaling.None(), false), 13);
    }

    @Test
    void packedRowMatchesReferenceAndIsolatesSamples() {
        LlamaConfig c = config(2, 4, 2, new RopeScaling.None(), false);
        Map<String, float[]> w = randomWeights(c, 21);
        ReferenceLlama reference = new ReferenceLlama(c, w::get);
        int[] segments = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2};
        int[] positions = ReferenceLlama.restartingPositions(segments);
        int[] ids = randomIds(new Random(22), segments.length, c.vocabSize());
        double[][] expected = reference.logitsPacked(ids, positions, segments);
        try (NDManager m = Torch.newManager(); LlamaModel model = LlamaModel.load(c, source(c, w), Dtype.FP32, m)) {
            float[][] packed = run(model, m, ids, positions, segments);
            assertTrue(maxAbsDiff(expected, packed) <= 1e-4, "packed logits vs reference");
            // The second sample alone, positions from 0, gives the same logits as inside the packed row.
            int[] alone = Arrays.copyOfRange(ids, 5, 12);
            float[][] single = run(model, m, alone, null, null);
            for (int i = 0; i < alone.length; i++) {
                for (int j = 0; j < single[i].length; j++) {
                    assertEquals(single[i][j], packed[5 + i][j], 1e-4);
                }
            }
        }
    }

    @Test
    void halfPrecisionsStayCloseToFp32Reference() {
        LlamaConfig c = config(2, 4, 2, new RopeScaling.Llama3(8, 1, 4, 16), false);
        Map<String, float[]> w = randomWeights(c, 31);
        double[][] expected = new ReferenceLlama(c, w::get).logits(randomIds(new Random(32), 9, c.vocabSize()), null);
        int[] ids = randomIds(new Random(32), 9, c.vocabSize());
        try (NDManager m = Torch.newManager()) {
            for (Dtype d : List.of(Dtype.BF16, Dtype.FP16)) {
                try (LlamaModel model = LlamaModel.load(c, source(c, w), d, m)) {
                    double diff = maxAbsDiff(expected, run(model, m, ids, null, null));
                    double scale = maxAbs(expected);
                    // bf16 keeps 8 mantissa bits: a few percent of the logit range after two layers.
                    assertTrue(diff <= (d == Dtype.BF16 ? 0.08 : 0.01) * scale, d + ": max |Δlogit| = " + diff);
                    assertTrue(diff > 0, d + " must actually compute in reduced precision");
                }
            }
        }
    }

    @Test
    void wrongShapeOrMissingTensorIsAClearError() {
        LlamaConfig c = config(1, 4, 2, new RopeScaling.None(), false);
        Map<String, float[]> w = randomWeights(c, 41);
        w.remove("model.layers.0.mlp.up_proj.weight");
        try (NDManager m = Torch.newManager()) {
            var e = assertThrows(ConfigException.class, () -> LlamaModel.load(c, source(c, w), Dtype.FP32, m));
            assertTrue(e.getMessage().contains("model.layers.0.mlp.up_proj.weight"), e.getMessage());
            Map<String, float[]> w2 = randomWeights(c, 41);
            w2.put("model.norm.weight", new float[c.hiddenSize() + 1]);
            var e2 = assertThrows(ConfigException.class, () -> LlamaModel.load(c, source(c, w2), Dtype.FP32, m));
            assertTrue(e2.getMessage().contains("model.norm.weight") && e2.getMessage().contains("shape"), e2.getMessage());
        }
    }
}
