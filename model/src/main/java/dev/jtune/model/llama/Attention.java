package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Grouped-query self-attention: q/k/v projections (or Phi-3's fused {@code qkv_proj}) with their optional biases,
 * optional per-head q/k RMSNorm (Qwen3, Gemma 3), rotary embedding (of the first {@code rotaryDim} features),
 * scaled-dot-product attention — causal, causal within segments for packed rows, bidirectional within segments
 * ({@link ForwardContext#bidirectional}), or over a {@link KvCache} of earlier tokens; limited to the last {@code sliding_window} keys on sliding layers; with soft-capped scores where
 * the family caps them (Gemma 2) — and the output projection.
 */
public final class Attention implements AutoCloseable {
    /** The attention's weights; q, k, v are null when {@code qkv} holds them fused, and the reverse. */
    public record Parts(Linear q, Linear k, Linear v, Linear qkv, Linear o, NDArray qBias, NDArray kBias,
            NDArray vBias, NDArray oBias, RmsNorm qNorm, RmsNorm kNorm) {}

    private final Parts p;
    private final int index;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final double scale;
    private final int window; // 0: this layer sees every earlier token
    private final double softcap; // 0: none
    private final boolean local; // uses the local rotary tables (Gemma 3's sliding layers)
    private final Dtype castTo; // fp32 (master) biases are cast to this compute dtype at each use; null: none

    /** @param index the decoder layer's index: its slot in a {@link KvCache} */
    public Attention(LlamaConfig config, int index, Parts parts) {
        this(config, index, parts, null);
    }

    /**
     * @param castTo the compute dtype fp32 biases are cast to at each use (weights held as a trainer's fp32 master
     *     copy), or null when they are in the compute dtype
     */
    public Attention(LlamaConfig config, int index, Parts parts, Dtype castTo) {
        this.castTo = castTo;
        this.index = index;
        this.p = parts;
        this.heads = config.numAttentionHeads();
        this.kvHeads = config.numKeyValueHeads();
        this.headDim = config.headDim();
        this.scale = config.attentionScale();
        this.window = config.windowOf(index);
        this.softcap = config.architecture().attnLogitSoftcapping();
        this.local = config.architecture().localRopeTheta() > 0 && config.slidingLayer(index);
    }

    /** A plain attention of separate bias-free projections (Llama, Mistral). */
    public Attention(LlamaConfig config, int index, Linear q, Linear k, Linear v, Linear o) {
        this(config, index, new Parts(q, k, v, null, o, null, null, null, null, null, null));
    }

    /**
     * @param x hidden states [B,T,E]
     * @param context rotary tables, packing segments, and the cache of earlier tokens (whose keys and values
     *     this layer's new ones are appended to)
     * @return [B,T,E]
     */
    public NDArray forward(NDArray x, ForwardContext context) {
        Kernels kn = Kernels.get();
        long b = x.getShape().get(0);
        long t = x.getShape().get(1);
        NDArray qx;
        NDArray kx;
        NDArray vx;
        if (p.qkv() != null) {
            NDList parts = kn.splitLast(p.qkv().forward(x), (long) heads * headDim, (long) kvHeads * headDim,
                    (long) kvHeads * headDim);
            qx = parts.get(0);
            kx = parts.get(1);
            vx = parts.get(2);
        } else {
            qx = biased(p.q().forward(x), p.qBias());
            kx = biased(p.k().forward(x), p.kBias());
            vx = biased(p.v().forward(x), p.vBias());
        }
        NDArray qs = heads(qx, b, t, heads);
        NDArray ks = heads(kx, b, t, kvHeads);
        NDArray vs = heads(vx, b, t, kvHeads);
        if (p.qNorm() != null) {
            qs = p.qNorm().forward(qs);
            ks = p.kNorm().forward(ks);
        }
        NDArray cos = local ? context.localCos() : context.cos();
        NDArray sin = local ? context.localSin() : context.sin();
        qs = kn.rope(qs, cos, sin);
        ks = kn.rope(ks, cos, sin);
        NDArray attended = attend(kn, qs, ks, vs, t, context);
        return biased(p.o().forward(attended.transpose(0, 2, 1, 3).reshape(new Shape(b, t, (long) heads * headDim))),
                p.oBias());
    }

    private NDArray attend(Kernels kn, NDArray qs, NDArray ks, NDArray vs, long t, ForwardContext context) {
        if (context.cache() != null) {
            // The new tokens see every cached token and each other causally.
            long length = context.cache().length() + t;
            NDList kv = context.cache().append(index, ks, vs);
            if (softcap > 0) {
                return kn.attentionCapped(qs, kv.get(0), kv.get(1), null, length, window, scale, softcap);
            }
            return windowed(length)
                    ? kn.attentionWindow(qs, kv.get(0), kv.get(1), length, window, scale)
                    : kn.attentionWithPast(qs, kv.get(0), kv.get(1), length, scale);
        }
        if (context.bidirectional()) {
            // transformers uses a caller's 4D mask as it is, on sliding layers too: no window, no causality.
            if (softcap > 0) {
                throw new UnsupportedOperationException("bidirectional attention with soft-capped scores (Gemma 2)"
                        + " is not implemented");
            }
            return kn.attentionBidirectional(qs, ks, vs, context.segmentIds(), scale);
        }
        if (softcap > 0) {
            return kn.attentionCapped(qs, ks, vs, context.segmentIds(), t, window, scale, softcap);
        }
        if (context.segmentIds() != null) {
            return windowed(t)
                    ? kn.attentionWindowSegments(qs, ks, vs, context.segmentIds(), window, scale)
                    : kn.attentionSegments(qs, ks, vs, context.segmentIds(), scale);
        }
        return windowed(t) ? kn.attentionWindow(qs, ks, vs, t, window, scale) : kn.attentionCausal(qs, ks, vs, scale);
    }

    private NDArray biased(NDArray y, NDArray bias) {
        if (bias == null) {
            return y;
        }
        if (castTo == null) {
            return y.add(bias);
        }
        NDArray b = Kernels.get().cast(bias, castTo);
        NDArray out = y.add(b);
        b.close();
        return out;
    }

    /** Whether a sliding window hides some of {@code keys} keys from the last query (else plain causal is the same). */
    private boolean windowed(long keys) {
        return window > 0 && keys > window;
    }

    /** [B,T,n·D] → [B,n,T,D]. */
    private NDArray heads(NDArray projected, long b, long t, int n) {
        return projected.reshape(new Shape(b, t, n, headDim)).transpose(0, 2, 1, 3);
    }

    /** The projections by their transformers module names ({@code q_proj} ... or {@code qkv_proj}, {@code o_proj}). */
    public Map<String, Linear> linears() {
        Map<String, Linear> m = new LinkedHashMap<>();
        if (p.qkv() != null) {
            m.put("qkv_proj", p.qkv());
        } else {
            m.put("q_proj", p.q());
            m.put("k_proj", p.k());
            m.put("v_proj", p.v());
        }
        m.put("o_proj", p.o());
        return m;
    }

    /** The biases and norms by their names under {@code self_attn.} ({@code q_proj.bias}, {@code q_norm.weight}). */
    public Map<String, NDArray> tensors() {
        Map<String, NDArray> m = new LinkedHashMap<>();
        put(m, "q_proj.bias", p.qBias());
        put(m, "k_proj.bias", p.kBias());
        put(m, "v_proj.bias", p.vBias());
        put(m, "o_proj.bias", p.oBias());
        if (p.qNorm() != null) {
            m.put("q_norm.weight", p.qNorm().weight());
            m.put("k_norm.weight", p.kNorm().weight());
        }
        return m;
    }

    private static void put(Map<String, NDArray> m, String name, NDArray t) {
        if (t != null) {
            m.put(name, t);
        }
    }

    /** The window this layer attends within, or 0. */
    public int window() {
        return window;
    }

    public Linear q() {
        return p.q();
    }

    public Linear k() {
        return p.k();
    }

    public Linear v() {
        return p.v();
    }

    /** Phi-3's fused q/k/v projection, or null. */
    public Linear qkv() {
        return p.qkv();
    }

    public Linear o() {
        return p.o();
    }

    @Override
    public void close() {
        linears().values().forEach(Linear::close);
        tensors().values().forEach(NDArray::close);
    }
}
