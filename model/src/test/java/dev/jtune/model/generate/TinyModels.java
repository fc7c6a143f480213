package dev.jtune.model.generate;

import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.llama.LlamaPresets;
import dev.jtune.model.llama.RandomInit;
import dev.jtune.model.llama.WeightSource;
import java.util.HashMap;
import java.util.Map;

/** The tiny preset with {@link RandomInit} weights, projections scaled up so logits have clear winners. */
final class TinyModels {
    static final int VOCAB = 300;

    private TinyModels() {}

    static LlamaConfig config() {
        return LlamaPresets.tiny(VOCAB);
    }

    /**
     * RandomInit's N(0, 0.02²) makes near-uniform logits, where greedy choices hinge on rounding; multiplying
     * the non-norm tensors by {@code gain} gives peaked attention and logit gaps well above rounding.
     */
    static LlamaModel load(LlamaConfig config, long seed, double gain, Dtype dtype, NDManager manager) {
        RandomInit init = new RandomInit(config, seed);
        Map<String, float[]> values = new HashMap<>();
        Map<String, long[]> shapes = new HashMap<>();
        for (RandomInit.Spec spec : init.specs()) {
            float[] v = init.values(spec);
            if (!spec.name().endsWith("norm.weight")) {
                for (int i = 0; i < v.length; i++) {
                    v[i] *= (float) gain;
                }
            }
            values.put(spec.name(), v);
            shapes.put(spec.name(), spec.shape());
        }
        WeightSource source = WeightSource.of(values, shapes, "tiny random weights");
        return LlamaModel.load(config, source, dtype, manager);
    }
}
