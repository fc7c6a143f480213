package dev.jtune.model.generate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import dev.jtune.model.llama.KvCache;
import dev.jtune.model.llama.LayerPolicy;
import dev.jtune.model.llama.LlamaModel;

/**
 * {@link LlamaModel}'s forward pass for the newest tokens only, reading and extending a {@link KvCache}: the
 * model's own decoder stack ({@link LlamaModel#decode}) with the cache in its context, so attention lets the new
 * tokens see every cached token and each other causally. Intermediates join the manager of the ids passed in.
 */
public final class CachedDecoder {
    private final LlamaModel model;

    public CachedDecoder(LlamaModel model) {
        this.model = model;
    }

    public LlamaModel model() {
        return model;
    }

    /** An empty preallocated cache for {@code batch} rows of up to {@code capacity} tokens, in the model's dtype. */
    public KvCache newCache(int batch, long capacity, NDManager parent) {
        return KvCache.preallocated(model.config(), model.dtype(), batch, capacity, parent);
    }

    /**
     * Logits [B,Tn,vocab] (compute dtype) of the new tokens; appends them to {@code cache}.
     *
     * @param inputIds [B,Tn] int64, the tokens following the {@code cache.length()} cached ones
     * @param positionIds [B,Tn] int64, or null for {@code cache.length() .. cache.length()+Tn-1} in every row
     */
    public NDArray forward(NDArray inputIds, NDArray positionIds, KvCache cache) {
        return model.logits(hidden(inputIds, positionIds, cache));
    }

    /** Logits [B,vocab] of the last new token only (the head is applied to that position alone). */
    public NDArray lastLogits(NDArray inputIds, NDArray positionIds, KvCache cache) {
        NDArray h = hidden(inputIds, positionIds, cache);
        long t = h.getShape().get(1);
        return model.logits(h.get(new NDIndex(":, {}, :", t - 1)));
    }

    /** The final normalised hidden states [B,Tn,E] of the new tokens; appends them to {@code cache}. */
    public NDArray hidden(NDArray inputIds, NDArray positionIds, KvCache cache) {
        NDArray positions = positionIds != null ? positionIds : LlamaModel.positionsAfter(inputIds, cache.length());
        return model.finalNorm(model.decode(inputIds, model.context(positions, null, cache), LayerPolicy.DIRECT));
    }
}
