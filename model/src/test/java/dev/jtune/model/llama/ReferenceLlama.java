package dev.jtune.model.llama;

import java.util.Arrays;
import java.util.function.Function;

/**
 * A plain, loop-based, double-precision transcription of Hugging Face transformers' {@code LlamaForCausalLM}
 * forward pass ({@code models/llama/modeling_llama.py}, eager attention, and the RoPE initialisers of
 * {@code modeling_rope_utils.py}), for tiny models in tests. No DJL, no libtorch: just arrays.
 *
 * <p>Per layer: {@code h += o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n)))} with
 * {@code n = input_layernorm(h)}, then {@code h += down_proj(silu(gate_proj(m)) * up_proj(m))} with
 * {@code m = post_attention_layernorm(h)}; finally {@code logits = lm_head(norm(h))} (or the embedding matrix
 * when {@code tie_word_embeddings}). Attention is causal softmax attention with scale {@code head_dim^-0.5},
 * grouped-query via transformers' {@code repeat_kv} (query head {@code h} reads key/value head
 * {@code h / (num_attention_heads / num_key_value_heads)}).
 *
 * <p>Precision: everything is computed in double, including {@code inv_freq} and cos/sin. transformers
 * computes {@code inv_freq}, the angles and cos/sin in fp32; for the small positions (&lt; a few hundred) and
 * head sizes used with this class, that fp32 rounding moves cos/sin by less than 1e-6, far below the 1e-4
 * tolerances the reference is compared with (the fp32 fixture logits agree with this class to ~1e-5). The
 * casts transformers performs in lower-precision runs (RMSNorm's {@code hidden.to(input_dtype)} before the
 * weight multiply, softmax in fp32 then {@code .to(query.dtype)}) are identities in double.
 *
 * <p>Weights come from a {@code Function<String, float[]>} by their transformers names
 * ({@code model.embed_tokens.weight}, {@code model.layers.{i}.self_attn.q_proj.weight}, ...), row-major;
 * a Linear weight is {@code [out_features, in_features]} and {@code y = x W^T}. {@code lm_head.weight} is not
 * asked for when the embeddings are tied.
 */
public final class ReferenceLlama {

    private final LlamaConfig config;
    private final int hidden;
    private final int inter;
    private final int vocab;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final double eps;
    private final double[] invFreq;
    private final double[][] embed;
    private final double[][] lmHead;
    private final double[] finalNorm;
    private final Layer[] layers;

    private record Layer(
            double[] inputNorm,
            double[][] q,
            double[][] k,
            double[][] v,
            double[][] o,
            double[] postNorm,
            double[][] gate,
            double[][] up,
            double[][] down) {}

    public ReferenceLlama(LlamaConfig config, Function<String, float[]> weights) {
        this.config = config;
        this.hidden = config.hiddenSize();
        this.inter = config.intermediateSize();
        this.vocab = config.vocabSize();
        this.heads = config.numAttentionHeads();
        this.kvHeads = config.numKeyValueHeads();
        this.headDim = config.headDim();
        this.eps = config.rmsNormEps();
        this.invFreq = inverseFrequencies(config);
        this.embed = matrix(weights, "model.embed_tokens.weight", vocab, hidden);
        this.lmHead = config.tieWordEmbeddings() ? embed : matrix(weights, "lm_head.weight", vocab, hidden);
        this.finalNorm = vector(weights, "model.norm.weight", hidden);
        this.layers = new Layer[config.numHiddenLayers()];
        for (int l = 0; l < layers.length; l++) {
            String p = "model.layers." + l + ".";
            layers[l] = new Layer(
                    vector(weights, p + "input_layernorm.weight", hidden),
                    matrix(weights, p + "self_attn.q_proj.weight", heads * headDim, hidden),
                    matrix(weights, p + "self_attn.k_proj.weight", kvHeads * headDim, hidden),
                    matrix(weights, p + "self_attn.v_proj.weight", kvHeads * headDim, hidden),
                    matrix(weights, p + "self_attn.o_proj.weight", hidden, heads * headDim),
                    vector(weights, p + "post_attention_layernorm.weight", hidden),
                    matrix(weights, p + "mlp.gate_proj.weight", inter, hidden),
                    matrix(weights, p + "mlp.up_proj.weight", inter, hidden),
                    matrix(weights, p + "mlp.down_proj.weight", hidden, inter));
        }
    }

    public LlamaConfig config() {
        return config;
    }

    /**
     * Logits {@code [T][vocab]} of one sequence. {@code positionIds} null means {@code 0..T-1}; otherwise one
     * position per token (e.g. restarting at 0 inside a packed row; attention is still causal over the row).
     */
    public double[][] logits(int[] tokenIds, int[] positionIds) {
        return logitsPacked(tokenIds, positionIds, new int[tokenIds.length]);
    }

    /**
     * Logits {@code [T][vocab]} of a packed row: token {@code i} attends to tokens {@code j <= i} with
     * {@code segmentIds[j] == segmentIds[i]} only. {@code positionIds} null means positions count from 0 and
     * restart at 0 wherever the segment id changes.
     */
    public double[][] logitsPacked(int[] ids, int[] positionIds, int[] segmentIds) {
        int t = ids.length;
        if (segmentIds.length != t) {
            throw new IllegalArgumentException("segmentIds has " + segmentIds.length + " entries for " + t + " tokens");
        }
        int[] pos = positionIds != null ? positionIds : restartingPositions(segmentIds);
        if (pos.length != t) {
            throw new IllegalArgumentException("positionIds has " + pos.length + " entries for " + t + " tokens");
        }
        double[][] h = new double[t][];
        for (int i = 0; i < t; i++) {
            if (ids[i] < 0 || ids[i] >= vocab) {
                throw new IllegalArgumentException("token id " + ids[i] + " outside [0, " + vocab + ")");
            }
            h[i] = embed[ids[i]].clone();
        }
        double[][] cos = new double[t][];
        double[][] sin = new double[t][];
        for (int i = 0; i < t; i++) {
            cos[i] = new double[headDim / 2];
            sin[i] = new double[headDim / 2];
            for (int f = 0; f < headDim / 2; f++) {
                double angle = pos[i] * invFreq[f];
                cos[i][f] = Math.cos(angle);
                sin[i][f] = Math.sin(angle);
            }
        }
        for (Layer layer : layers) {
            double[][] attn = attention(layer, h, cos, sin, segmentIds);
            for (int i = 0; i < t; i++) {
                add(h[i], attn[i]);
            }
            for (int i = 0; i < t; i++) {
                double[] m = rmsNorm(h[i], layer.postNorm());
                double[] g = matVec(layer.gate(), m);
                double[] u = matVec(layer.up(), m);
                double[] a = new double[inter];
                for (int j = 0; j < inter; j++) {
                    a[j] = silu(g[j]) * u[j];
                }
                add(h[i], matVec(layer.down(), a));
            }
        }
        double[][] logits = new double[t][];
        for (int i = 0; i < t; i++) {
            logits[i] = matVec(lmHead, rmsNorm(h[i], finalNorm));
        }
        return logits;
    }

    private double[][] attention(Layer layer, double[][] h, double[][] cos, double[][] sin, int[] seg) {
        int t = h.length;
        double[][] q = new double[t][];
        double[][] k = new double[t][];
        double[][] v = new double[t][];
        for (int i = 0; i < t; i++) {
            double[] n = rmsNorm(h[i], layer.inputNorm());
            q[i] = rope(matVec(layer.q(), n), heads, cos[i], sin[i]);
            k[i] = rope(matVec(layer.k(), n), kvHeads, cos[i], sin[i]);
            v[i] = matVec(layer.v(), n);
        }
        int group = heads / kvHeads;
        double scale = Math.pow(headDim, -0.5);
        double[][] out = new double[t][];
        for (int i = 0; i < t; i++) {
            double[] concat = new double[heads * headDim];
            for (int hq = 0; hq < heads; hq++) {
                int hk = hq / group; // repeat_kv: kv head hk serves query heads hk*group .. hk*group+group-1
                double[] scores = new double[i + 1];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j <= i; j++) {
                    if (seg[j] != seg[i]) {
                        scores[j] = Double.NEGATIVE_INFINITY;
                        continue;
                    }
                    double s = 0;
                    for (int d = 0; d < headDim; d++) {
                        s += q[i][hq * headDim + d] * k[j][hk * headDim + d];
                    }
                    scores[j] = s * scale;
                    max = Math.max(max, scores[j]);
                }
                double sum = 0;
                for (int j = 0; j <= i; j++) {
                    scores[j] = scores[j] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(scores[j] - max);
                    sum += scores[j];
                }
                for (int j = 0; j <= i; j++) {
                    double p = scores[j] / sum;
                    if (p == 0) {
                        continue;
                    }
                    for (int d = 0; d < headDim; d++) {
                        concat[hq * headDim + d] += p * v[j][hk * headDim + d];
                    }
                }
            }
            out[i] = matVec(layer.o(), concat);
        }
        return out;
    }

    /** apply_rotary_pos_emb on each head: {@code x * cos + rotate_half(x) * sin}, cos/sin = cat(freqs, freqs). */
    private double[] rope(double[] x, int numHeads, double[] cos, double[] sin) {
        int half = headDim / 2;
        double[] out = new double[x.length];
        for (int hh = 0; hh < numHeads; hh++) {
            int o = hh * headDim;
            for (int f = 0; f < half; f++) {
                double x1 = x[o + f];
                double x2 = x[o + half + f];
                out[o + f] = x1 * cos[f] - x2 * sin[f];
                out[o + half + f] = x2 * cos[f] + x1 * sin[f];
            }
        }
        return out;
    }

    /** LlamaRMSNorm: {@code weight * x / sqrt(mean(x^2) + eps)}. */
    private double[] rmsNorm(double[] x, double[] weight) {
        double ss = 0;
        for (double e : x) {
            ss += e * e;
        }
        double r = 1.0 / Math.sqrt(ss / x.length + eps);
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = weight[i] * (x[i] * r);
        }
        return out;
    }

    private static double silu(double x) {
        return x / (1.0 + Math.exp(-x));
    }

    /** {@code W x} for W {@code [out][in]} (nn.Linear without bias). */
    private static double[] matVec(double[][] w, double[] x) {
        double[] y = new double[w.length];
        for (int o = 0; o < w.length; o++) {
            double s = 0;
            double[] row = w[o];
            for (int i = 0; i < x.length; i++) {
                s += row[i] * x[i];
            }
            y[o] = s;
        }
        return y;
    }

    private static void add(double[] acc, double[] x) {
        for (int i = 0; i < acc.length; i++) {
            acc[i] += x[i];
        }
    }

    /** Positions 0, 1, ... restarting at 0 wherever the segment id changes. */
    public static int[] restartingPositions(int[] segmentIds) {
        int[] pos = new int[segmentIds.length];
        for (int i = 1; i < pos.length; i++) {
            pos[i] = segmentIds[i] == segmentIds[i - 1] ? pos[i - 1] + 1 : 0;
        }
        return pos;
    }

    /**
     * RoPE {@code inv_freq} ({@code head_dim / 2} values) as transformers' {@code ROPE_INIT_FUNCTIONS} compute
     * it, in double: default {@code 1 / theta^(2i/d)}; {@code linear} divides by {@code factor};
     * {@code llama3} is {@code _compute_llama3_parameters} (wavelengths shorter than
     * {@code original_max / high_freq_factor} kept, longer than {@code original_max / low_freq_factor} divided
     * by {@code factor}, smoothly interpolated in between).
     */
    public static double[] inverseFrequencies(LlamaConfig config) {
        int dim = config.headDim();
        double[] inv = new double[dim / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = 1.0 / Math.pow(config.ropeTheta(), (2.0 * i) / dim);
        }
        switch (config.ropeScaling()) {
            case RopeScaling.None n -> {}
            case RopeScaling.LongRope l -> throw new UnsupportedOperationException(
                    "the Java reference covers Llama's rotary; LongRoPE is checked against transformers' fixture");
            case RopeScaling.Linear l -> {
                for (int i = 0; i < inv.length; i++) {
                    inv[i] /= l.factor();
                }
            }
            case RopeScaling.Llama3 l -> {
                double oldContext = l.originalMaxPositionEmbeddings();
                double lowFreqWavelen = oldContext / l.lowFreqFactor();
                double highFreqWavelen = oldContext / l.highFreqFactor();
                for (int i = 0; i < inv.length; i++) {
                    double wavelen = 2 * Math.PI / inv[i];
                    if (wavelen < highFreqWavelen) {
                        continue; // high frequency: unchanged
                    }
                    if (wavelen > lowFreqWavelen) {
                        inv[i] = inv[i] / l.factor(); // low frequency: scaled like linear
                        continue;
                    }
                    double smooth = (oldContext / wavelen - l.lowFreqFactor()) / (l.highFreqFactor() - l.lowFreqFactor());
                    inv[i] = (1 - smooth) * inv[i] / l.factor() + smooth * inv[i];
                }
            }
        }
        return inv;
    }

    /** {@code -log softmax(logits)[target]}, computed stably in double. */
    public static double negLogProb(double[] logits, int target) {
        double max = Arrays.stream(logits).max().orElseThrow();
        double sum = 0;
        for (double x : logits) {
            sum += Math.exp(x - max);
        }
        return max + Math.log(sum) - logits[target];
    }

    /** Sum over {@code t >= from} of {@code -log p(ids[t] | ids[<t])}, from the logits of {@code ids}. */
    public static double sequenceNll(double[][] logits, int[] ids, int from) {
        if (from < 1) {
            throw new IllegalArgumentException("the first token has no prediction; from must be >= 1, got " + from);
        }
        double s = 0;
        for (int t = from; t < ids.length; t++) {
            s += negLogProb(logits[t - 1], ids[t]);
        }
        return s;
    }

    private static float[] fetch(Function<String, float[]> weights, String name, long expected) {
        float[] w = weights.apply(name);
        if (w == null) {
            throw new IllegalArgumentException("missing weight " + name);
        }
        if (w.length != expected) {
            throw new IllegalArgumentException(name + " has " + w.length + " values, expected " + expected);
        }
        return w;
    }

    private static double[][] matrix(Function<String, float[]> weights, String name, int rows, int cols) {
        float[] w = fetch(weights, name, (long) rows * cols);
        double[][] m = new double[rows][cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                m[r][c] = w[r * cols + c];
            }
        }
        return m;
    }

    private static double[] vector(Function<String, float[]> weights, String name, int n) {
        float[] w = fetch(weights, name, n);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = w[i];
        }
        return v;
    }
}
