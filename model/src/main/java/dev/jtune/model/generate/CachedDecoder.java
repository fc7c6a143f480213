package dev.jtune.model.generate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.llama.Attention;
import dev.jtune.model.llama.DecoderLayer;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.llama.Rope;

/**
 * {@link LlamaModel}'s forward pass for the newest tokens only, reading and extending a {@link KvCache}: the
 * same weights and {@link dev.jtune.model.llama.Linear}s (so adapters and quantized bases apply), the same
 * kernels, the same rotary tables; attention is {@link Kernels#attentionWithPast}, which lets the new tokens
 * see every cached token and each other causally.
 *
 * <p>It mirrors {@link DecoderLayer#forward} and {@link Attention#forward} step by step (RMSNorm → q/k/v →
 * rope → attention → o, residual; RMSNorm → MLP, residual), which the tests check against the full forward.
 * Intermediates join the manager of the ids passed in.
 */
public final class CachedDecoder implements AutoCloseable {
    private final LlamaModel model;
    private final LlamaConfig config;
    private final NDManager manager;
    private final Rope rope;
    private final double scale;

    /** @param parent holds this decoder's rotary tables until {@link #close()} */
    public CachedDecoder(LlamaModel model, NDManager parent) {
        this.model = model;
        this.config = model.config();
        this.manager = parent.newSubManager();
        this.rope = Rope.of(config, manager);
        this.scale = 1.0 / Math.sqrt(config.headDim());
    }

    public LlamaModel model() {
        return model;
    }

    /** An empty preallocated cache for {@code batch} rows of up to {@code capacity} tokens, in the model's dtype. */
    public KvCache newCache(int batch, long capacity, NDManager parent) {
        return KvCache.preallocated(config, model.dtype(), batch, capacity, parent);
    }

    /**
     * Logits [B,Tn,vocab] (compute dtype) of the new tokens; appends them to {@code cache}.
     *
     * @param inputIds [B,Tn] int64, the tokens following the {@code cache.length()} cached ones
     * @param positionIds [B,Tn] int64, or null for {@code cache.length() .. cache.length()+Tn-1} in every row
     */
    public NDArray forward(NDArray inputIds, NDArray positionIds, KvCache cache) {
        return model.lmHead().forward(hidden(inputIds, positionIds, cache));
    }

    /** Logits [B,vocab] of the last new token only (the head is applied to that position alone). */
    public NDArray lastLogits(NDArray inputIds, NDArray positionIds, KvCache cache) {
        NDArray h = hidden(inputIds, positionIds, cache);
        long t = h.getShape().get(1);
        return model.lmHead().forward(h.get(new NDIndex(":, {}, :", t - 1)));
    }

    /** The final normalised hidden states [B,Tn,E] of the new tokens; appends them to {@code cache}. */
    public NDArray hidden(NDArray inputIds, NDArray positionIds, KvCache cache) {
        Kernels k = Kernels.get();
        long b = inputIds.getShape().get(0);
        long t = inputIds.getShape().get(1);
        long past = cache.length();
        NDArray positions = positionIds != null ? positionIds : positionsAfter(inputIds, past);
        NDList cosSin = rope.cosSin(positions, model.dtype());
        NDArray x = k.embedding(inputIds, model.embedTokens());
        double eps = config.rmsNormEps();
        int index = 0;
        for (DecoderLayer layer : model.layers()) {
            Attention att = layer.attention();
            NDArray n = k.rmsNorm(x, layer.inputNorm(), eps);
            NDArray q = k.rope(heads(att.q().forward(n), b, t, config.numAttentionHeads()), cosSin.get(0), cosSin.get(1));
            NDArray kk = k.rope(heads(att.k().forward(n), b, t, config.numKeyValueHeads()), cosSin.get(0), cosSin.get(1));
            NDArray v = heads(att.v().forward(n), b, t, config.numKeyValueHeads());
            NDList kv = cache.append(index++, kk, v);
            NDArray attended = k.attentionWithPast(q, kv.get(0), kv.get(1), past + t, scale);
            NDArray merged = attended.transpose(0, 2, 1, 3)
                    .reshape(new Shape(b, t, (long) config.numAttentionHeads() * config.headDim()));
            NDArray h = x.add(att.o().forward(merged));
            x = h.add(layer.mlp().forward(k.rmsNorm(h, layer.postAttentionNorm(), eps)));
        }
        cache.advance(t);
        return k.rmsNorm(x, model.norm(), eps);
    }

    /** [B,T,n·D] → [B,n,T,D]. */
    private NDArray heads(NDArray projected, long b, long t, int n) {
        return projected.reshape(new Shape(b, t, n, config.headDim())).transpose(0, 2, 1, 3);
    }

    /** Positions {@code past .. past+T-1} for every row of ids [B,T], in ids' manager. */
    static NDArray positionsAfter(NDArray ids, long past) {
        long b = ids.getShape().get(0);
        long t = ids.getShape().get(1);
        return ids.getManager().arange((int) past, (int) (past + t), 1, DataType.INT64).reshape(1, t).repeat(0, b);
    }

    @Override
    public void close() {
        manager.close();
    }
}
