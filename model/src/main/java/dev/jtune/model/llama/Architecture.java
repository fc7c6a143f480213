package dev.jtune.model.llama;

import java.util.List;

/**
 * What a family's config.json adds to the Llama shape: the switches of the one decoder stack.
 *
 * @param family which transformers modeling file this mirrors
 * @param qkvBias q/k/v projections have a bias (Qwen2 always; {@code attention_bias} elsewhere)
 * @param outputBias o_proj has a bias ({@code attention_bias} in Llama and Gemma; never in Qwen2)
 * @param slidingLayers per layer, whether it attends within {@code sliding_window} ({@code layer_types}); empty
 *     means every layer does when a window is set (Mistral, Phi-3)
 * @param queryPreAttnScalar scores are scaled by its inverse square root (Gemma); 0 means head_dim
 * @param attnLogitSoftcapping Gemma 2's {@code attn_logit_softcapping}; 0 for none
 * @param finalLogitSoftcapping Gemma 2's {@code final_logit_softcapping}; 0 for none
 * @param localRopeTheta the rotary base of sliding layers (Gemma 3's {@code rope_local_base_freq}); 0 when every
 *     layer shares one rotary table
 * @param partialRotaryFactor the fraction of each head's features that rotate (Phi-3/4's
 *     {@code partial_rotary_factor}); 1 for all
 * @param textPrefix where the decoder's tensors live: {@code model.}, or {@code model.language_model.} in a
 *     multimodal checkpoint's text part
 */
public record Architecture(
        Family family,
        boolean qkvBias,
        boolean outputBias,
        List<Boolean> slidingLayers,
        double queryPreAttnScalar,
        double attnLogitSoftcapping,
        double finalLogitSoftcapping,
        double localRopeTheta,
        double partialRotaryFactor,
        String textPrefix) {

    public Architecture {
        slidingLayers = List.copyOf(slidingLayers);
        if (!(partialRotaryFactor > 0 && partialRotaryFactor <= 1)) {
            throw new IllegalArgumentException("partial_rotary_factor must be in (0, 1], got " + partialRotaryFactor);
        }
        if (attnLogitSoftcapping < 0 || finalLogitSoftcapping < 0 || queryPreAttnScalar < 0) {
            throw new IllegalArgumentException("soft-capping and query_pre_attn_scalar must not be negative");
        }
    }

    /** The plain form of {@code family}: no biases, one rotary table, no soft-capping, every feature rotating. */
    public static Architecture plain(Family family) {
        return new Architecture(family, false, false, List.of(), 0, 0, 0, 0, 1, "model.");
    }
}
