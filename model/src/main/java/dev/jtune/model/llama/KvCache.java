package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;

/**
 * The keys and values of every token seen so far, per decoder layer, [B, KV, T, headDim] in the compute dtype
 * (after the rotary embedding, before grouped-query repetition), so that each decoding step only computes
 * the newest tokens.
 *
 * <p>A step writes each layer's new keys and values with {@link #append}, then {@link #advance}s the length
 * once all layers are done. Two layouts ({@link Layout}) trade memory for copying; {@link #preallocated} is
 * the default of generation (see {@link Layout} for the measurement). Memory lives in a sub-manager of
 * the parent given, freed by {@link #close()}.
 */
public final class KvCache implements AutoCloseable {
    /** How the per-layer tensors grow. */
    public enum Layout {
        /**
         * Zeros of the full capacity allocated up front; a step copies its tokens into their slots in place and
         * attention reads the filled prefix. The default: nothing cached is copied again, and every decoding step
         * hands the kernels tensors of one shape, so libtorch's TorchScript executor does not re-specialise per
         * length. GenerateBench (test sources; CPU, 2 busy cores, prompt 32, 32 new tokens, fp32), tokens/s
         * preallocated / concatenated / no cache: tiny preset 466 / 237 / 300 (337 / 155 / 129 with one
         * thread); hidden 512, 8 layers, vocab 8000: 118 / 7 / 6 (43 / 48 / 15 with one thread).
         */
        PREALLOCATED,
        /** Each step concatenates along T, copying the whole cache (quadratic copying, no capacity limit). */
        CONCATENATED
    }

    private final Layout layout;
    private final NDManager manager;
    private final NDArray[] keys;
    private final NDArray[] values;
    private final long capacity;
    private long length;

    private KvCache(Layout layout, LlamaConfig config, Dtype dtype, int batch, long capacity, NDManager parent) {
        if (batch < 1) {
            throw new IllegalArgumentException("batch must be at least 1, got " + batch);
        }
        this.layout = layout;
        this.manager = parent.newSubManager();
        int layers = config.numHiddenLayers();
        this.keys = new NDArray[layers];
        this.values = new NDArray[layers];
        this.capacity = capacity;
        if (layout == Layout.PREALLOCATED) {
            if (capacity < 1) {
                throw new IllegalArgumentException("capacity must be at least 1 token, got " + capacity);
            }
            Kernels k = Kernels.get();
            try (NDArray anchor = manager.zeros(new ai.djl.ndarray.types.Shape(1))) {
                for (int i = 0; i < layers; i++) {
                    keys[i] = k.kvCacheAlloc(anchor, batch, config.numKeyValueHeads(), capacity, config.headDim(), dtype);
                    values[i] = k.kvCacheAlloc(anchor, batch, config.numKeyValueHeads(), capacity, config.headDim(), dtype);
                }
            } catch (RuntimeException e) {
                manager.close();
                throw e;
            }
        }
    }

    /** A cache of {@code capacity} tokens per row, allocated now ({@link Layout#PREALLOCATED}). */
    public static KvCache preallocated(LlamaConfig config, Dtype dtype, int batch, long capacity, NDManager parent) {
        return new KvCache(Layout.PREALLOCATED, config, dtype, batch, capacity, parent);
    }

    /** A cache that grows by concatenation, without a capacity ({@link Layout#CONCATENATED}). */
    public static KvCache concatenated(LlamaConfig config, Dtype dtype, int batch, NDManager parent) {
        return new KvCache(Layout.CONCATENATED, config, dtype, batch, Long.MAX_VALUE, parent);
    }

    /** Tokens cached so far: the position of the next token. */
    public long length() {
        return length;
    }

    /** The most tokens this cache holds ({@link Long#MAX_VALUE} when it grows). */
    public long capacity() {
        return capacity;
    }

    public Layout layout() {
        return layout;
    }

    /**
     * Stores layer {@code layer}'s keys and values [B,KV,Tn,D] for positions {@code length() ..
     * length()+Tn-1} and returns that layer's keys and values whose first {@code length()+Tn} slots along T
     * are valid (a preallocated tensor is longer: read only that prefix). The returned tensors belong to the
     * cache; do not close them.
     *
     * @throws IllegalStateException if the tokens do not fit the capacity
     */
    public NDList append(int layer, NDArray k, NDArray v) {
        long fresh = k.getShape().get(2);
        if (length + fresh > capacity) {
            throw new IllegalStateException("KV cache full: " + length + " + " + fresh + " tokens exceed its capacity of "
                    + capacity);
        }
        switch (layout) {
            case PREALLOCATED -> {
                Kernels kn = Kernels.get();
                kn.kvCacheWrite(keys[layer], k, length);
                kn.kvCacheWrite(values[layer], v, length);
            }
            case CONCATENATED -> {
                keys[layer] = grow(keys[layer], k);
                values[layer] = grow(values[layer], v);
            }
        }
        return new NDList(keys[layer], values[layer]);
    }

    private NDArray grow(NDArray old, NDArray fresh) {
        NDArray detached = fresh.stopGradient();
        if (old == null) {
            detached.attach(manager);
            return detached;
        }
        // concat's result joins the first operand's manager: the cache's.
        NDArray joined = old.concat(detached, 2);
        old.close();
        detached.close();
        return joined;
    }

    /** Records that a step's {@code tokens} new tokens are now stored in every layer. */
    public void advance(long tokens) {
        if (tokens < 0 || length + tokens > capacity) {
            throw new IllegalArgumentException("cannot advance by " + tokens + " from " + length + " (capacity "
                    + capacity + ")");
        }
        length += tokens;
    }

    @Override
    public void close() {
        manager.close();
    }
}
