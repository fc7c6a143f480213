package dev.jtune.model.llama;

import java.util.List;

/** The {@code rope_scaling} (transformers 5: {@code rope_parameters}) variants that jtune implements, as transformers does. */
public sealed interface RopeScaling {
    /** No scaling: plain {@code 1/theta^(2i/d)} frequencies. */
    record None() implements RopeScaling {}

    /** {@code "type": "linear"}: positions divided by {@code factor} (frequencies divided by it). */
    record Linear(double factor) implements RopeScaling {}

    /** {@code "rope_type": "llama3"}: Llama 3.1's frequency-dependent wavelength scaling. */
    record Llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositionEmbeddings)
            implements RopeScaling {}

    /**
     * {@code "rope_type": "longrope"} (older Phi-3 configs: {@code "su"}): per-frequency factors, the short ones while
     * every position of a pass is below {@code originalMaxPositionEmbeddings}, the long ones beyond it, and cos/sin
     * scaled by {@code attentionFactor} (transformers' default: √(1 + ln(max/original) / ln(original)) when the
     * context was extended, else 1).
     */
    record LongRope(List<Double> shortFactor, List<Double> longFactor, int originalMaxPositionEmbeddings,
            double attentionFactor) implements RopeScaling {
        public LongRope {
            shortFactor = List.copyOf(shortFactor);
            longFactor = List.copyOf(longFactor);
        }
    }
}
