package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;

/**
 * What every decoder layer of one forward pass shares besides the hidden states: the rotary tables of the
 * tokens' positions, how attention isolates packed samples, and the key/value cache of earlier tokens.
 * Made by {@link LlamaModel#context}; the tensors belong to the pass (its step manager).
 *
 * @param cos rotary cos [B,T,rotaryDim] in the compute dtype
 * @param sin rotary sin [B,T,rotaryDim]
 * @param localCos the sliding layers' own cos where their rotary base differs (Gemma 3), else {@code cos}
 * @param localSin the sliding layers' own sin, else {@code sin}
 * @param segmentIds [B,T] sample ids that isolate packed samples, or null for plain causal attention
 * @param cache the keys and values of the tokens before these (generation), or null: attention then sees
 *     only this pass's tokens
 * @param bidirectional every token sees every token of its segment, before and after it (Axolotl's diffusion
 *     objective passes transformers a 4D mask that replaces the causal one); needs {@code segmentIds}
 */
public record ForwardContext(NDArray cos, NDArray sin, NDArray localCos, NDArray localSin, NDArray segmentIds,
        KvCache cache, boolean bidirectional) {
    public ForwardContext {
        if (segmentIds != null && cache != null) {
            throw new IllegalArgumentException("packed segments and a KV cache do not combine: generation runs one"
                    + " sequence per row");
        }
        if (bidirectional && segmentIds == null) {
            throw new IllegalArgumentException("bidirectional attention needs segment ids (which tokens see each other)");
        }
    }

    /** Causal attention (within segments when {@code segmentIds} is not null). */
    public ForwardContext(NDArray cos, NDArray sin, NDArray localCos, NDArray localSin, NDArray segmentIds,
            KvCache cache) {
        this(cos, sin, localCos, localSin, segmentIds, cache, false);
    }

    /** The same tables and segments, attended bidirectionally within each segment. */
    public ForwardContext bidirectionalWithin() {
        return new ForwardContext(cos, sin, localCos, localSin, segmentIds, cache, true);
    }

    /** One rotary table for every layer. */
    public ForwardContext(NDArray cos, NDArray sin, NDArray segmentIds, KvCache cache) {
        this(cos, sin, cos, sin, segmentIds, cache);
    }
}
