package dev.jtune.testkit;

import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.llama.LlamaPresets;
import dev.jtune.model.llama.RandomInit;
import dev.jtune.model.llama.RopeScaling;
import dev.jtune.model.llama.WeightSource;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The tests' small Llamas and their random weights: {@link RandomInit} (transformers' initialisation, the same bit
 * for bit for a seed), either generated as the loader asks ({@link #weights}) or as name → values maps a test can
 * change before loading ({@link #values}, {@link #source}).
 */
public final class TinyLlama {
    /** The vocabulary of {@link #preset()}. */
    public static final int VOCAB = 64;

    private TinyLlama() {}

    /** {@code LlamaPresets.tiny} with {@link #VOCAB} tokens: 4 layers, hidden 128, GQA 4/2, untied head. */
    public static LlamaConfig preset() {
        return LlamaPresets.tiny(VOCAB);
    }

    /**
     * A 48-token, 2-layer Llama with hidden size 16, MLP 24 and grouped-query attention (2 heads of 8, one
     * key/value head): small enough for references computed element by element in double.
     */
    public static LlamaConfig micro(boolean tiedEmbeddings) {
        return new LlamaConfig("llama", 48, 16, 24, 2, 2, 1, 8, 64, 1e-5, 10000.0, new RopeScaling.None(),
                tiedEmbeddings, Dtype.FP32, 0, List.of(1), 2, 0);
    }

    /** {@code config}'s random weights for {@code seed}, each tensor generated when the loader asks for it. */
    public static WeightSource weights(LlamaConfig config, long seed) {
        return new RandomInit(config, seed).weights();
    }

    /** Every tensor of the same weights by name, in transformers' module order; the arrays are the caller's. */
    public static Map<String, float[]> values(LlamaConfig config, long seed) {
        RandomInit init = new RandomInit(config, seed);
        Map<String, float[]> out = new LinkedHashMap<>();
        for (RandomInit.Spec s : init.specs()) {
            out.put(s.name(), init.values(s));
        }
        return out;
    }

    /** Every tensor's shape by name, in transformers' module order. */
    public static Map<String, long[]> shapes(LlamaConfig config) {
        Map<String, long[]> out = new LinkedHashMap<>();
        for (RandomInit.Spec s : new RandomInit(config, 0).specs()) {
            out.put(s.name(), s.shape());
        }
        return out;
    }

    /** {@code values} (from {@link #values}, perhaps changed) as {@code config}'s weights. */
    public static WeightSource source(LlamaConfig config, Map<String, float[]> values) {
        return WeightSource.of(values, shapes(config), "tiny test weights");
    }

    /** {@link #preset()} with {@code seed}'s weights, in fp32. */
    public static LlamaModel load(NDManager manager, long seed) {
        return load(preset(), seed, Dtype.FP32, manager);
    }

    /** {@code config} with {@code seed}'s weights, in {@code dtype}. */
    public static LlamaModel load(LlamaConfig config, long seed, Dtype dtype, NDManager manager) {
        return LlamaModel.load(config, weights(config, seed), dtype, manager);
    }
}
