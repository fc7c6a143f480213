package dev.jtune.model.llama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.model.engine.Dtype;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * A Llama-family architecture as described by a Hugging Face {@code config.json}: Llama 1, 2 and 3
 * (grouped-query attention, {@code rope_theta}, {@code rope_scaling} linear and llama3, tied embeddings)
 * and Mistral (same decoder; attention limited to {@code sliding_window} keys when set).
 *
 * @param modelType {@code llama} or {@code mistral}
 * @param headDim per-head size; {@code hidden_size / num_attention_heads} unless config.json says otherwise
 * @param torchDtype the checkpoint's dtype, or null if config.json does not say
 * @param eosTokenIds every id in {@code eos_token_id} (an int or a list in config.json); may be empty
 * @param slidingWindow Mistral's window, or 0 for none
 */
public record LlamaConfig(
        String modelType,
        int vocabSize,
        int hiddenSize,
        int intermediateSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int numKeyValueHeads,
        int headDim,
        int maxPositionEmbeddings,
        double rmsNormEps,
        double ropeTheta,
        RopeScaling ropeScaling,
        boolean tieWordEmbeddings,
        Dtype torchDtype,
        Integer bosTokenId,
        List<Integer> eosTokenIds,
        Integer padTokenId,
        int slidingWindow) {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<String> MODEL_TYPES = Set.of("llama", "mistral");

    public LlamaConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
        require(vocabSize > 0 && hiddenSize > 0 && intermediateSize > 0 && numHiddenLayers > 0, "sizes must be positive");
        require(numAttentionHeads > 0 && numKeyValueHeads > 0 && numAttentionHeads % numKeyValueHeads == 0,
                "num_attention_heads (" + numAttentionHeads + ") must be a positive multiple of num_key_value_heads ("
                        + numKeyValueHeads + ")");
        require(headDim > 0 && headDim % 2 == 0, "head_dim must be positive and even, got " + headDim);
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }

    /** The same architecture with other special-token ids (those of the tokenizer it is paired with). */
    public LlamaConfig withSpecialTokens(Integer bos, List<Integer> eos, Integer pad) {
        return new LlamaConfig(modelType, vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, maxPositionEmbeddings, rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings,
                torchDtype, bos, eos, pad, slidingWindow);
    }

    /** The same architecture with a vocabulary of {@code size} rows (embeddings and head grown or cut to it). */
    public LlamaConfig withVocabSize(int size) {
        return new LlamaConfig(modelType, size, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, maxPositionEmbeddings, rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings,
                torchDtype, bosTokenId, eosTokenIds, padTokenId, slidingWindow);
    }

    /** Number of query heads sharing one key/value head. */
    public int groupSize() {
        return numAttentionHeads / numKeyValueHeads;
    }

    /** The parameter count of the whole model. */
    public long parameterCount() {
        long h = hiddenSize;
        long attn = h * (long) numAttentionHeads * headDim * 2 + h * (long) numKeyValueHeads * headDim * 2;
        long mlp = 3 * h * intermediateSize;
        long layer = attn + mlp + 2 * h;
        long embed = (long) vocabSize * h;
        return numHiddenLayers * layer + embed * (tieWordEmbeddings ? 1 : 2) + h;
    }

    /** Reads {@code dir/config.json}. */
    public static LlamaConfig load(Path dir) {
        Path file = Files.isDirectory(dir) ? dir.resolve("config.json") : dir;
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new ConfigException(file + ": not found (a Hugging Face model directory has a config.json)");
        } catch (IOException e) {
            throw new ConfigException(file + ": not valid JSON: " + e.getMessage());
        }
        return parse(root, file.toString());
    }

    /** Parses a config.json tree; {@code source} names the file in errors. */
    public static LlamaConfig parse(JsonNode root, String source) {
        if (root == null || !root.isObject()) {
            throw new ConfigException(source + ": expected a JSON object");
        }
        var r = new Reader(root, source);
        String modelType = r.string("model_type", null);
        if (modelType == null || !MODEL_TYPES.contains(modelType)) {
            throw new ConfigException(source + ": model_type is " + (modelType == null ? "missing" : "'" + modelType + "'")
                    + "; jtune supports " + MODEL_TYPES.stream().sorted().toList());
        }
        String act = r.string("hidden_act", "silu");
        if (!act.equals("silu")) {
            throw new ConfigException(source + ": hidden_act '" + act + "' is not supported (expected silu)");
        }
        for (String bias : List.of("attention_bias", "mlp_bias")) {
            if (r.bool(bias, false)) {
                throw new ConfigException(source + ": " + bias + "=true is not supported by jtune's Llama");
            }
        }
        int hidden = r.integer("hidden_size", null);
        int heads = r.integer("num_attention_heads", null);
        int kvHeads = r.integer("num_key_value_heads", heads);
        int headDim = root.hasNonNull("head_dim") ? r.integer("head_dim", null) : hidden / heads;
        String dtype = r.string("torch_dtype", r.string("dtype", null));
        Dtype torchDtype = null;
        if (dtype != null) {
            try {
                torchDtype = Dtype.parse(dtype);
            } catch (IllegalArgumentException e) {
                throw new ConfigException(source + ": torch_dtype: " + e.getMessage());
            }
        }
        try {
            return new LlamaConfig(
                    modelType,
                    r.integer("vocab_size", null),
                    hidden,
                    r.integer("intermediate_size", null),
                    r.integer("num_hidden_layers", null),
                    heads,
                    kvHeads,
                    headDim,
                    r.integer("max_position_embeddings", 2048),
                    r.number("rms_norm_eps", 1e-6),
                    r.number("rope_theta", 10000.0),
                    ropeScaling(root.get("rope_scaling"), source),
                    r.bool("tie_word_embeddings", false),
                    torchDtype,
                    r.optionalInt("bos_token_id"),
                    r.intList("eos_token_id"),
                    r.optionalInt("pad_token_id"),
                    root.hasNonNull("sliding_window") ? r.integer("sliding_window", 0) : 0);
        } catch (IllegalArgumentException e) {
            throw new ConfigException(source + ": " + e.getMessage());
        }
    }

    private static RopeScaling ropeScaling(JsonNode node, String source) {
        if (node == null || node.isNull()) {
            return new RopeScaling.None();
        }
        if (!node.isObject()) {
            throw new ConfigException(source + ": rope_scaling must be an object or null");
        }
        var r = new Reader(node, source + ": rope_scaling");
        String type = r.string("rope_type", r.string("type", null));
        if (type == null) {
            throw new ConfigException(source + ": rope_scaling needs rope_type (or type)");
        }
        return switch (type) {
            case "default" -> new RopeScaling.None();
            case "linear" -> new RopeScaling.Linear(r.number("factor", null));
            case "llama3" -> new RopeScaling.Llama3(
                    r.number("factor", null),
                    r.number("low_freq_factor", null),
                    r.number("high_freq_factor", null),
                    r.integer("original_max_position_embeddings", null));
            default -> throw new ConfigException(source + ": rope_scaling type '" + type
                    + "' is not supported (expected linear or llama3)");
        };
    }

    /** This configuration as a transformers {@code config.json} tree. */
    public ObjectNode toJson() {
        ObjectNode o = JSON.createObjectNode();
        o.putArray("architectures").add(modelType.equals("mistral") ? "MistralForCausalLM" : "LlamaForCausalLM");
        o.put("model_type", modelType);
        o.put("vocab_size", vocabSize);
        o.put("hidden_size", hiddenSize);
        o.put("intermediate_size", intermediateSize);
        o.put("num_hidden_layers", numHiddenLayers);
        o.put("num_attention_heads", numAttentionHeads);
        o.put("num_key_value_heads", numKeyValueHeads);
        o.put("head_dim", headDim);
        o.put("hidden_act", "silu");
        o.put("max_position_embeddings", maxPositionEmbeddings);
        o.put("rms_norm_eps", rmsNormEps);
        o.put("rope_theta", ropeTheta);
        switch (ropeScaling) {
            case RopeScaling.None n -> o.putNull("rope_scaling");
            case RopeScaling.Linear l -> o.putObject("rope_scaling").put("rope_type", "linear").put("factor", l.factor());
            case RopeScaling.Llama3 l -> o.putObject("rope_scaling")
                    .put("rope_type", "llama3")
                    .put("factor", l.factor())
                    .put("low_freq_factor", l.lowFreqFactor())
                    .put("high_freq_factor", l.highFreqFactor())
                    .put("original_max_position_embeddings", l.originalMaxPositionEmbeddings());
        }
        o.put("attention_bias", false);
        o.put("mlp_bias", false);
        o.put("attention_dropout", 0.0);
        o.put("initializer_range", 0.02);
        o.put("tie_word_embeddings", tieWordEmbeddings);
        if (torchDtype != null) {
            o.put("torch_dtype", switch (torchDtype) {
                case FP32 -> "float32";
                case FP16 -> "float16";
                case BF16 -> "bfloat16";
            });
        }
        if (bosTokenId != null) {
            o.put("bos_token_id", bosTokenId);
        }
        if (eosTokenIds.size() == 1) {
            o.put("eos_token_id", eosTokenIds.get(0));
        } else if (!eosTokenIds.isEmpty()) {
            ArrayNode a = o.putArray("eos_token_id");
            eosTokenIds.forEach(a::add);
        }
        if (padTokenId != null) {
            o.put("pad_token_id", padTokenId);
        }
        if (slidingWindow > 0) {
            o.put("sliding_window", slidingWindow);
        }
        o.put("use_cache", true);
        return o;
    }

    /** Field access with errors that name the file and key. */
    private record Reader(JsonNode node, String source) {
        String string(String key, String fallback) {
            JsonNode v = node.get(key);
            if (v == null || v.isNull()) {
                return fallback;
            }
            if (!v.isTextual()) {
                throw new ConfigException(source + ": " + key + " must be a string, got " + v);
            }
            return v.asText();
        }

        int integer(String key, Integer fallback) {
            JsonNode v = node.get(key);
            if (v == null || v.isNull()) {
                if (fallback == null) {
                    throw new ConfigException(source + ": missing required key " + key);
                }
                return fallback;
            }
            if (!v.canConvertToExactIntegral() || !v.canConvertToInt()) {
                throw new ConfigException(source + ": " + key + " must be an integer, got " + v);
            }
            return v.asInt();
        }

        Integer optionalInt(String key) {
            JsonNode v = node.get(key);
            if (v == null || v.isNull()) {
                return null;
            }
            if (v.isArray() && !v.isEmpty()) {
                return integerOf(key, v.get(0));
            }
            return integerOf(key, v);
        }

        List<Integer> intList(String key) {
            JsonNode v = node.get(key);
            if (v == null || v.isNull()) {
                return List.of();
            }
            if (v.isArray()) {
                var out = new java.util.ArrayList<Integer>();
                v.forEach(e -> out.add(integerOf(key, e)));
                return out;
            }
            return List.of(integerOf(key, v));
        }

        private int integerOf(String key, JsonNode v) {
            if (!v.canConvertToExactIntegral() || !v.canConvertToInt()) {
                throw new ConfigException(source + ": " + key + " must be an integer or a list of them, got " + v);
            }
            return v.asInt();
        }

        double number(String key, Double fallback) {
            JsonNode v = node.get(key);
            if (v == null || v.isNull()) {
                if (fallback == null) {
                    throw new ConfigException(source + ": missing required key " + key);
                }
                return fallback;
            }
            if (!v.isNumber()) {
                throw new ConfigException(source + ": " + key + " must be a number, got " + v);
            }
            return v.asDouble();
        }

        boolean bool(String key, boolean fallback) {
            JsonNode v = node.get(key);
            if (v == null || v.isNull()) {
                return fallback;
            }
            if (!v.isBoolean()) {
                throw new ConfigException(source + ": " + key + " must be true or false, got " + v);
            }
            return v.asBoolean();
        }
    }
}
