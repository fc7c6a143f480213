package dev.jtune.model.llama;

import dev.jtune.model.engine.Dtype;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;

/** Named architectures for {@code init-model --preset}. */
public final class LlamaPresets {
    private LlamaPresets() {}

    /** Preset name → config for a tokenizer of the given vocabulary size. */
    public static final Map<String, IntFunction<LlamaConfig>> PRESETS = Map.of("tiny", LlamaPresets::tiny);

    /**
     * About a million parameters: trains on 2 CPU cores in a minute, yet has everything a Llama has
     * (several layers, grouped-query attention, untied head).
     */
    public static LlamaConfig tiny(int vocabSize) {
        return new LlamaConfig("llama", vocabSize, 128, 352, 4, 4, 2, 32, 1024, 1e-5, 10000.0,
                new RopeScaling.None(), false, Dtype.FP32, 0, List.of(1), 2, 0);
    }

    /** The preset called {@code name}, or an error listing the known ones. */
    public static LlamaConfig byName(String name, int vocabSize) {
        IntFunction<LlamaConfig> preset = PRESETS.get(name);
        if (preset == null) {
            throw new IllegalArgumentException("unknown preset '" + name + "'; known presets: "
                    + PRESETS.keySet().stream().sorted().toList());
        }
        return preset.apply(vocabSize);
    }
}
