package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Kernels;

/**
 * Grouped-query self-attention: q/k/v projections, rotary embedding, scaled-dot-product attention
 * (causal, causal within segments for packed rows, or over a {@link KvCache} of earlier tokens; limited to the last
 * {@code sliding_window} keys where the config sets one, as Mistral), output projection.
 */
public final class Attention implements AutoCloseable {
    private final Linear q;
    private final Linear k;
    private final Linear v;
    private final Linear o;
    private final int index;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final double scale;
    private final int window; // Mistral's sliding_window, 0 for none

    /** @param index the decoder layer's index: its slot in a {@link KvCache} */
    public Attention(LlamaConfig config, int index, Linear q, Linear k, Linear v, Linear o) {
        this.index = index;
        this.q = q;
        this.k = k;
        this.v = v;
        this.o = o;
        this.heads = config.numAttentionHeads();
        this.kvHeads = config.numKeyValueHeads();
        this.headDim = config.headDim();
        this.scale = 1.0 / Math.sqrt(headDim);
        this.window = config.slidingWindow();
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
        NDArray qs = kn.rope(heads(q.forward(x), b, t, heads), context.cos(), context.sin());
        NDArray ks = kn.rope(heads(k.forward(x), b, t, kvHeads), context.cos(), context.sin());
        NDArray vs = heads(v.forward(x), b, t, kvHeads);
        NDArray attended;
        if (context.cache() != null) {
            // The new tokens see every cached token and each other causally.
            long past = context.cache().length();
            NDList kv = context.cache().append(index, ks, vs);
            attended = windowed(past + t)
                    ? kn.attentionWindow(qs, kv.get(0), kv.get(1), past + t, window, scale)
                    : kn.attentionWithPast(qs, kv.get(0), kv.get(1), past + t, scale);
        } else if (context.segmentIds() != null) {
            attended = windowed(t)
                    ? kn.attentionWindowSegments(qs, ks, vs, context.segmentIds(), window, scale)
                    : kn.attentionSegments(qs, ks, vs, context.segmentIds(), scale);
        } else {
            attended = windowed(t) ? kn.attentionWindow(qs, ks, vs, t, window, scale)
                    : kn.attentionCausal(qs, ks, vs, scale);
        }
        return o.forward(attended.transpose(0, 2, 1, 3).reshape(new Shape(b, t, (long) heads * headDim)));
    }

    /** Whether a sliding window hides some of {@code keys} keys from the last query (else plain causal is the same). */
    private boolean windowed(long keys) {
        return window > 0 && keys > window;
    }

    /** [B,T,n·D] → [B,n,T,D]. */
    private NDArray heads(NDArray projected, long b, long t, int n) {
        return projected.reshape(new Shape(b, t, n, headDim)).transpose(0, 2, 1, 3);
    }

    public Linear q() {
        return q;
    }

    public Linear k() {
        return k;
    }

    public Linear v() {
        return v;
    }

    public Linear o() {
        return o;
    }

    @Override
    public void close() {
        q.close();
        k.close();
        v.close();
        o.close();
    }
}
