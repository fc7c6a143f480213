package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Kernels;

/**
 * Grouped-query self-attention: q/k/v projections, rotary embedding, scaled-dot-product attention
 * (causal, or causal within segments for packed rows), output projection.
 */
public final class Attention implements AutoCloseable {
    private final Linear q;
    private final Linear k;
    private final Linear v;
    private final Linear o;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final double scale;

    public Attention(LlamaConfig config, Linear q, Linear k, Linear v, Linear o) {
        this.q = q;
        this.k = k;
        this.v = v;
        this.o = o;
        this.heads = config.numAttentionHeads();
        this.kvHeads = config.numKeyValueHeads();
        this.headDim = config.headDim();
        this.scale = 1.0 / Math.sqrt(headDim);
    }

    /**
     * @param x hidden states [B,T,E]
     * @param cos rotary cos [B,T,headDim]
     * @param sin rotary sin [B,T,headDim]
     * @param segmentIds [B,T] sample ids for packed rows, or null for plain causal attention
     * @return [B,T,E]
     */
    public NDArray forward(NDArray x, NDArray cos, NDArray sin, NDArray segmentIds) {
        Kernels kn = Kernels.get();
        long b = x.getShape().get(0);
        long t = x.getShape().get(1);
        NDArray qs = kn.rope(heads(q.forward(x), b, t, heads), cos, sin);
        NDArray ks = kn.rope(heads(k.forward(x), b, t, kvHeads), cos, sin);
        NDArray vs = heads(v.forward(x), b, t, kvHeads);
        NDArray attended = segmentIds == null
                ? kn.attentionCausal(qs, ks, vs, scale)
                : kn.attentionSegments(qs, ks, vs, segmentIds, scale);
        return o.forward(attended.transpose(0, 2, 1, 3).reshape(new Shape(b, t, (long) heads * headDim)));
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
