package dev.jtune.model.llama;

/** The {@code rope_scaling} variants of config.json that jtune implements, as transformers does. */
public sealed interface RopeScaling {
    /** No scaling: plain {@code 1/theta^(2i/d)} frequencies. */
    record None() implements RopeScaling {}

    /** {@code "type": "linear"}: positions divided by {@code factor} (frequencies divided by it). */
    record Linear(double factor) implements RopeScaling {}

    /** {@code "rope_type": "llama3"}: Llama 3.1's frequency-dependent wavelength scaling. */
    record Llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositionEmbeddings)
            implements RopeScaling {}
}
