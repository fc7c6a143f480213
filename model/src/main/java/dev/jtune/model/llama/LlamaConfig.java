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

/**
 * A decoder as described by a Hugging Face {@code config.json}: the Llama shape (grouped-query attention,
 * {@code rope_theta}/{@code rope_scaling} or transformers 5's {@code rope_parameters}, tied embeddings) and what
 * the other {@link Family families} add ({@link Architecture}): Mistral's window, Qwen's biases and q/k norms,
 * Gemma's norms, soft-capping and local/global layers, Phi-3's fused projections and partial rotary.
 *
 * @param modelType config.json's {@code model_type} (of the text part, for a multimodal checkpoint)
 * @param headDim per-head size; {@code hidden_size / num_attention_heads} unless config.json says otherwise
 * @param torchDtype the checkpoint's dtype, or null if config.json does not say
 * @param eosTokenIds every id in {@code eos_token_id} (an int or a list in config.json); may be empty
 * @param slidingWindow the attention window of sliding layers ({@code sliding_window}), or 0 for none
 * @param architecture the family and its switches
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
        int slidingWindow,
        Architecture architecture) {

    private static final ObjectMapper JSON = new ObjectMapper();
    /** A plain Llama-shaped config of the family named by {@code modelType} (no biases, one rotary table). */
    public LlamaConfig(String modelType, int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers,
            int numAttentionHeads, int numKeyValueHeads, int headDim, int maxPositionEmbeddings, double rmsNormEps,
            double ropeTheta, RopeScaling ropeScaling, boolean tieWordEmbeddings, Dtype torchDtype, Integer bosTokenId,
            List<Integer> eosTokenIds, Integer padTokenId, int slidingWindow) {
        this(modelType, vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, numKeyValueHeads,
                headDim, maxPositionEmbeddings, rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings, torchDtype,
                bosTokenId, eosTokenIds, padTokenId, slidingWindow,
                Architecture.plain(Family.ofModelType(modelType).orElseThrow(() -> new IllegalArgumentException(
                        "model_type '" + modelType + "' is not one of " + Family.modelTypes()))));
    }

    public LlamaConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
        require(vocabSize > 0 && hiddenSize > 0 && intermediateSize > 0 && numHiddenLayers > 0, "sizes must be positive");
        require(numAttentionHeads > 0 && numKeyValueHeads > 0 && numAttentionHeads % numKeyValueHeads == 0,
                "num_attention_heads (" + numAttentionHeads + ") must be a positive multiple of num_key_value_heads ("
                        + numKeyValueHeads + ")");
        require(headDim > 0 && headDim % 2 == 0, "head_dim must be positive and even, got " + headDim);
        require(architecture.slidingLayers().isEmpty() || architecture.slidingLayers().size() == numHiddenLayers,
                "layer_types has " + architecture.slidingLayers().size() + " entries for " + numHiddenLayers + " layers");
        require(rotaryDim(headDim, architecture) % 2 == 0 && rotaryDim(headDim, architecture) > 0,
                "head_dim × partial_rotary_factor must be a positive even number");
    }

    private static int rotaryDim(int headDim, Architecture a) {
        return (int) (headDim * a.partialRotaryFactor());
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
                torchDtype, bos, eos, pad, slidingWindow, architecture);
    }

    /** The same architecture with a vocabulary of {@code size} rows (embeddings and head grown or cut to it). */
    public LlamaConfig withVocabSize(int size) {
        return new LlamaConfig(modelType, size, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, maxPositionEmbeddings, rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings,
                torchDtype, bosTokenId, eosTokenIds, padTokenId, slidingWindow, architecture);
    }

    /**
     * This decoder as a stand-alone causal LM (tensors under {@code model.}): what {@link #toJson()} describes. The
     * text part of a multimodal checkpoint becomes its family's *ForCausalLM.
     */
    public LlamaConfig asCausalLm() {
        if (architecture.textPrefix().equals("model.")) {
            return this;
        }
        Architecture a = architecture;
        return new LlamaConfig(modelType, vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, maxPositionEmbeddings, rmsNormEps, ropeTheta, ropeScaling, tieWordEmbeddings,
                torchDtype, bosTokenId, eosTokenIds, padTokenId, slidingWindow, new Architecture(a.family(), a.qkvBias(),
                        a.outputBias(), a.slidingLayers(), a.queryPreAttnScalar(), a.attnLogitSoftcapping(),
                        a.finalLogitSoftcapping(), a.localRopeTheta(), a.partialRotaryFactor(), "model."));
    }

    public Family family() {
        return architecture.family();
    }

    /** The window of layer {@code index}'s attention, or 0 when it sees every earlier token. */
    public int windowOf(int index) {
        return slidingWindow > 0 && slidingLayer(index) ? slidingWindow : 0;
    }

    /**
     * Whether layer {@code index} is a sliding layer by type ({@code layer_types}; every layer where none are listed),
     * whatever the window: Gemma 3's sliding layers keep their own rotary base even with {@code sliding_window: null}.
     */
    public boolean slidingLayer(int index) {
        var sliding = architecture.slidingLayers();
        return sliding.isEmpty() || sliding.get(index);
    }

    /** The attention scores' scale: {@code query_pre_attn_scalar^-0.5} (Gemma) or {@code head_dim^-0.5}. */
    public double attentionScale() {
        double s = architecture.queryPreAttnScalar();
        return 1.0 / Math.sqrt(s > 0 ? s : headDim);
    }

    /** How many features of each head rotate: head_dim, or its {@code partial_rotary_factor} part. */
    public int rotaryDim() {
        return rotaryDim(headDim, architecture);
    }

    /** Number of query heads sharing one key/value head. */
    public int groupSize() {
        return numAttentionHeads / numKeyValueHeads;
    }

    /** The parameter count of the whole model. */
    public long parameterCount() {
        return tensors().stream().mapToLong(TensorSpec::numel).sum();
    }

    /**
     * Every tensor of the checkpoint with its shape, in transformers' module order: what {@link LlamaModel#load} reads
     * and {@code init-model} writes. A tied head is the embedding and is not listed.
     */
    public List<TensorSpec> tensors() {
        long e = hiddenSize;
        long q = (long) numAttentionHeads * headDim;
        long kv = (long) numKeyValueHeads * headDim;
        long ff = intermediateSize;
        Family f = family();
        String prefix = architecture.textPrefix();
        List<TensorSpec> out = new java.util.ArrayList<>();
        out.add(new TensorSpec(prefix + "embed_tokens.weight", TensorSpec.Role.EMBEDDING, vocabSize, e));
        for (int i = 0; i < numHiddenLayers; i++) {
            String p = prefix + "layers." + i + ".";
            if (f.fusedProjections()) {
                out.add(new TensorSpec(p + "self_attn.qkv_proj.weight", TensorSpec.Role.LINEAR, q + 2 * kv, e));
            } else {
                out.add(new TensorSpec(p + "self_attn.q_proj.weight", TensorSpec.Role.LINEAR, q, e));
                out.add(new TensorSpec(p + "self_attn.k_proj.weight", TensorSpec.Role.LINEAR, kv, e));
                out.add(new TensorSpec(p + "self_attn.v_proj.weight", TensorSpec.Role.LINEAR, kv, e));
            }
            if (architecture.qkvBias()) {
                out.add(new TensorSpec(p + "self_attn.q_proj.bias", TensorSpec.Role.BIAS, q));
                out.add(new TensorSpec(p + "self_attn.k_proj.bias", TensorSpec.Role.BIAS, kv));
                out.add(new TensorSpec(p + "self_attn.v_proj.bias", TensorSpec.Role.BIAS, kv));
            }
            out.add(new TensorSpec(p + "self_attn.o_proj.weight", TensorSpec.Role.LINEAR, e, q));
            if (architecture.outputBias()) {
                out.add(new TensorSpec(p + "self_attn.o_proj.bias", TensorSpec.Role.BIAS, e));
            }
            if (f.qkNorm()) {
                out.add(new TensorSpec(p + "self_attn.q_norm.weight", TensorSpec.Role.NORM, headDim));
                out.add(new TensorSpec(p + "self_attn.k_norm.weight", TensorSpec.Role.NORM, headDim));
            }
            if (f.fusedProjections()) {
                out.add(new TensorSpec(p + "mlp.gate_up_proj.weight", TensorSpec.Role.LINEAR, 2 * ff, e));
            } else {
                out.add(new TensorSpec(p + "mlp.gate_proj.weight", TensorSpec.Role.LINEAR, ff, e));
                out.add(new TensorSpec(p + "mlp.up_proj.weight", TensorSpec.Role.LINEAR, ff, e));
            }
            out.add(new TensorSpec(p + "mlp.down_proj.weight", TensorSpec.Role.LINEAR, e, ff));
            out.add(new TensorSpec(p + "input_layernorm.weight", TensorSpec.Role.NORM, e));
            out.add(new TensorSpec(p + "post_attention_layernorm.weight", TensorSpec.Role.NORM, e));
            if (f.gemma()) {
                out.add(new TensorSpec(p + "pre_feedforward_layernorm.weight", TensorSpec.Role.NORM, e));
                out.add(new TensorSpec(p + "post_feedforward_layernorm.weight", TensorSpec.Role.NORM, e));
            }
        }
        out.add(new TensorSpec(prefix + "norm.weight", TensorSpec.Role.NORM, e));
        if (!tieWordEmbeddings) {
            out.add(new TensorSpec("lm_head.weight", TensorSpec.Role.LINEAR, vocabSize, e));
        }
        return out;
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
        String prefix = "model.";
        String architecture = firstArchitecture(root, source);
        if ("Gemma3ForConditionalGeneration".equals(architecture)) {
            // The text part of a multimodal checkpoint: its config under text_config, its tensors under
            // model.language_model. (transformers 5's names; older files say language_model.model.).
            JsonNode text = root.get("text_config");
            if (text == null || !text.isObject()) {
                throw new ConfigException(source + ": Gemma3ForConditionalGeneration needs a text_config object");
            }
            ObjectNode merged = text.deepCopy();
            if (!merged.has("model_type")) {
                merged.put("model_type", "gemma3_text");
            }
            for (String key : List.of("torch_dtype", "dtype", "tie_word_embeddings", "bos_token_id", "eos_token_id",
                    "pad_token_id")) {
                if (!merged.has(key) && root.has(key)) {
                    merged.set(key, root.get(key));
                }
            }
            root = merged;
            source = source + ": text_config";
            prefix = "model.language_model.";
        }
        var r = new Reader(root, source);
        String modelType = r.string("model_type", null);
        Family family = modelType == null ? null : Family.ofModelType(modelType).orElse(null);
        if (family == null) {
            throw new ConfigException(source + ": model_type is " + (modelType == null ? "missing" : "'" + modelType + "'")
                    + (architecture == null ? "" : " (" + architecture + ")") + "; jtune implements "
                    + Family.modelTypes() + " (" + String.join(", ", Family.architectures())
                    + ", and the text part of Gemma3ForConditionalGeneration); trust_remote_code models are not run");
        }
        if (architecture != null && !architecture.equals(family.architecture())
                && !architecture.equals("Gemma3ForConditionalGeneration")) {
            throw new ConfigException(source + ": architectures names " + architecture + "; for model_type '"
                    + modelType + "' jtune implements " + family.architecture() + " (a causal language model)");
        }
        String act = r.string("hidden_activation", r.string("hidden_act", family.activation()));
        if (!act.equals(family.activation())) {
            throw new ConfigException(source + ": " + (root.has("hidden_activation") ? "hidden_activation" : "hidden_act")
                    + " '" + act + "' is not supported for " + modelType + " (expected " + family.activation() + ")");
        }
        if (r.bool("mlp_bias", false)) {
            throw new ConfigException(source + ": mlp_bias=true is not supported by jtune");
        }
        if (r.bool("use_bidirectional_attention", false)) {
            throw new ConfigException(source + ": use_bidirectional_attention=true (an embedding model) is not a"
                    + " causal language model; jtune trains causal ones");
        }
        boolean attentionBias = r.bool("attention_bias", false);
        if (attentionBias && family == Family.PHI3) {
            throw new ConfigException(source + ": attention_bias=true is not part of Phi3ForCausalLM");
        }
        int hidden = r.integer("hidden_size", null);
        int heads = r.integer("num_attention_heads", null);
        int kvHeads = r.integer("num_key_value_heads", heads);
        int layers = r.integer("num_hidden_layers", null);
        int headDim = root.hasNonNull("head_dim") ? r.integer("head_dim", null)
                : family.gemma() ? 256 : hidden / heads;
        int maxPositions = r.integer("max_position_embeddings", 2048);
        String dtype = r.string("torch_dtype", r.string("dtype", null));
        Dtype torchDtype = null;
        if (dtype != null) {
            try {
                torchDtype = Dtype.parse(dtype);
            } catch (IllegalArgumentException e) {
                throw new ConfigException(source + ": torch_dtype: " + e.getMessage());
            }
        }
        Rotary rotary = rotary(root, family, maxPositions, source);
        int window = slidingWindow(r, root, family);
        Architecture arch = new Architecture(
                family,
                family == Family.QWEN2 || attentionBias,
                family != Family.QWEN2 && attentionBias,
                slidingLayers(r, root, family, layers, source),
                family.gemma() ? r.number("query_pre_attn_scalar", 256.0) : 0,
                family == Family.GEMMA2 ? r.optionalNumber("attn_logit_softcapping", 50.0)
                        : family == Family.GEMMA3 ? r.optionalNumber("attn_logit_softcapping", 0.0) : 0,
                family == Family.GEMMA2 ? r.optionalNumber("final_logit_softcapping", 30.0)
                        : family == Family.GEMMA3 ? r.optionalNumber("final_logit_softcapping", 0.0) : 0,
                rotary.localTheta(),
                rotary.partialFactor(),
                prefix);
        try {
            return new LlamaConfig(
                    modelType,
                    r.integer("vocab_size", null),
                    hidden,
                    r.integer("intermediate_size", null),
                    layers,
                    heads,
                    kvHeads,
                    headDim,
                    maxPositions,
                    r.number("rms_norm_eps", 1e-6),
                    rotary.theta(),
                    rotary.scaling(),
                    r.bool("tie_word_embeddings", family.gemma()),
                    torchDtype,
                    r.optionalInt("bos_token_id"),
                    r.intList("eos_token_id"),
                    r.optionalInt("pad_token_id"),
                    window,
                    arch);
        } catch (IllegalArgumentException e) {
            throw new ConfigException(source + ": " + e.getMessage());
        }
    }

    private static String firstArchitecture(JsonNode root, String source) {
        JsonNode a = root.get("architectures");
        if (a == null || a.isNull() || (a.isArray() && a.isEmpty())) {
            return null;
        }
        if (!a.isArray() || !a.get(0).isTextual()) {
            throw new ConfigException(source + ": architectures must be a list of class names, got " + a);
        }
        return a.get(0).asText();
    }

    /** The window of sliding layers: Qwen's only when {@code use_sliding_window}; Gemma's defaults to 4096. */
    private static int slidingWindow(Reader r, JsonNode root, Family family) {
        return switch (family) {
            case QWEN2, QWEN3 -> r.bool("use_sliding_window", false) && root.hasNonNull("sliding_window")
                    ? r.integer("sliding_window", 0) : 0;
            case GEMMA2, GEMMA3 -> root.has("sliding_window") && root.get("sliding_window").isNull() ? 0
                    : r.integer("sliding_window", 4096);
            default -> root.hasNonNull("sliding_window") ? r.integer("sliding_window", 0) : 0;
        };
    }

    /**
     * Which layers slide: config.json's {@code layer_types} when written (transformers 5), else each family's rule
     * as transformers derives it: Qwen from {@code max_window_layers} up, Gemma 2 every other layer from the first,
     * Gemma 3 all but every {@code sliding_window_pattern}-th; empty (all, when a window is set) for the others.
     */
    private static List<Boolean> slidingLayers(Reader r, JsonNode root, Family family, int layers, String source) {
        JsonNode types = root.get("layer_types");
        if (types != null && !types.isNull()) {
            if (!types.isArray() || types.size() != layers) {
                throw new ConfigException(source + ": layer_types must list one type per layer (" + layers + "), got "
                        + types);
            }
            var out = new java.util.ArrayList<Boolean>();
            for (JsonNode t : types) {
                String type = t.asText();
                if (!type.equals("sliding_attention") && !type.equals("full_attention")) {
                    throw new ConfigException(source + ": layer_types entry '" + type
                            + "' is not supported (expected sliding_attention or full_attention)");
                }
                out.add(type.equals("sliding_attention"));
            }
            return out;
        }
        var out = new java.util.ArrayList<Boolean>();
        switch (family) {
            case QWEN2, QWEN3 -> {
                int first = r.integer("max_window_layers", 28);
                for (int i = 0; i < layers; i++) {
                    out.add(i >= first);
                }
            }
            case GEMMA2 -> {
                for (int i = 0; i < layers; i++) {
                    out.add((i + 1) % 2 != 0);
                }
            }
            case GEMMA3 -> {
                int pattern = r.integer("sliding_window_pattern", 6);
                for (int i = 0; i < layers; i++) {
                    out.add((i + 1) % pattern != 0);
                }
            }
            default -> {
                return List.of();
            }
        }
        return out;
    }

    /** The rotary settings, from transformers 5's {@code rope_parameters} or the older top-level keys. */
    private record Rotary(double theta, RopeScaling scaling, double localTheta, double partialFactor) {}

    private static Rotary rotary(JsonNode root, Family family, int maxPositions, String source) {
        var r = new Reader(root, source);
        double defaultTheta = family == Family.GEMMA3 ? 1_000_000.0 : 10000.0;
        JsonNode params = root.get("rope_parameters");
        JsonNode global;
        JsonNode local = null;
        String where;
        if (params != null && !params.isNull()) {
            if (!params.isObject()) {
                throw new ConfigException(source + ": rope_parameters must be an object");
            }
            if (params.has("full_attention") || params.has("sliding_attention")) {
                global = params.get("full_attention");
                local = params.get("sliding_attention");
                where = "rope_parameters.full_attention";
            } else {
                global = params;
                where = "rope_parameters";
            }
        } else {
            global = root.get("rope_scaling");
            where = "rope_scaling";
        }
        double theta = global != null && global.hasNonNull("rope_theta")
                ? new Reader(global, source + ": " + where).number("rope_theta", null)
                : r.number("rope_theta", defaultTheta);
        double partial = global != null && global.hasNonNull("partial_rotary_factor")
                ? new Reader(global, source + ": " + where).number("partial_rotary_factor", null)
                : r.number("partial_rotary_factor", 1.0);
        RopeScaling scaling = ropeScaling(global, root, maxPositions, source + ": " + where);
        double localTheta = 0;
        if (family == Family.GEMMA3) {
            localTheta = r.number("rope_local_base_freq", 10000.0);
            if (local != null && !local.isNull()) {
                var lr = new Reader(local, source + ": rope_parameters.sliding_attention");
                String type = lr.string("rope_type", lr.string("type", "default"));
                if (!type.equals("default")) {
                    throw new ConfigException(source + ": rope_parameters.sliding_attention: rope_type '" + type
                            + "' is not supported (Gemma 3's local layers use default rotary)");
                }
                localTheta = lr.number("rope_theta", localTheta);
            }
        }
        return new Rotary(theta, scaling, localTheta, partial);
    }

    private static RopeScaling ropeScaling(JsonNode node, JsonNode root, int maxPositions, String source) {
        if (node == null || node.isNull()) {
            return new RopeScaling.None();
        }
        if (!node.isObject()) {
            throw new ConfigException(source + " must be an object or null");
        }
        var r = new Reader(node, source);
        String type = r.string("rope_type", r.string("type", null));
        if (type == null) {
            if (node.has("rope_theta")) {
                return new RopeScaling.None();
            }
            throw new ConfigException(source + " needs rope_type (or type)");
        }
        return switch (type) {
            case "default" -> new RopeScaling.None();
            case "linear" -> new RopeScaling.Linear(r.number("factor", null));
            case "llama3" -> new RopeScaling.Llama3(
                    r.number("factor", null),
                    r.number("low_freq_factor", null),
                    r.number("high_freq_factor", null),
                    r.integer("original_max_position_embeddings", null));
            case "longrope", "su" -> longRope(r, new Reader(root, source), node, root, maxPositions);
            default -> throw new ConfigException(source + ": rope type '" + type
                    + "' is not supported (expected default, linear, llama3 or longrope)");
        };
    }

    /** transformers' _compute_longrope_parameters; Phi-3's top-level original_max_position_embeddings wins. */
    private static RopeScaling.LongRope longRope(Reader r, Reader top, JsonNode node, JsonNode root, int maxPositions) {
        int original = root.hasNonNull("original_max_position_embeddings")
                ? top.integer("original_max_position_embeddings", null)
                : r.integer("original_max_position_embeddings", maxPositions);
        double factor = node.hasNonNull("factor") ? r.number("factor", null) : (double) maxPositions / original;
        double attention = node.hasNonNull("attention_factor") ? r.number("attention_factor", null)
                : factor <= 1.0 ? 1.0 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
        return new RopeScaling.LongRope(r.numbers("short_factor"), r.numbers("long_factor"), original, attention);
    }

    /**
     * This configuration as a transformers {@code config.json} tree of its family's causal-LM class; for the text part
     * of a multimodal checkpoint, the text model alone, whose tensors are those of {@link #asCausalLm()}.
     */
    public ObjectNode toJson() {
        Family f = family();
        Architecture a = architecture;
        ObjectNode o = JSON.createObjectNode();
        o.putArray("architectures").add(f.architecture());
        o.put("model_type", modelType);
        o.put("vocab_size", vocabSize);
        o.put("hidden_size", hiddenSize);
        o.put("intermediate_size", intermediateSize);
        o.put("num_hidden_layers", numHiddenLayers);
        o.put("num_attention_heads", numAttentionHeads);
        o.put("num_key_value_heads", numKeyValueHeads);
        o.put("head_dim", headDim);
        o.put(f.gemma() ? "hidden_activation" : "hidden_act", f.activation());
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
            case RopeScaling.LongRope l -> {
                ObjectNode rs = o.putObject("rope_scaling").put("type", "longrope");
                l.shortFactor().forEach(rs.putArray("short_factor")::add);
                l.longFactor().forEach(rs.putArray("long_factor")::add);
                rs.put("attention_factor", l.attentionFactor());
                o.put("original_max_position_embeddings", l.originalMaxPositionEmbeddings());
            }
        }
        if (a.partialRotaryFactor() != 1) {
            o.put("partial_rotary_factor", a.partialRotaryFactor());
        }
        if (f != Family.PHI3 && f != Family.MISTRAL) {
            o.put("attention_bias", f == Family.QWEN2 ? false : a.outputBias());
        }
        if (f == Family.LLAMA) {
            o.put("mlp_bias", false);
        }
        if (f.gemma()) {
            o.put("query_pre_attn_scalar", a.queryPreAttnScalar());
            putCap(o, "attn_logit_softcapping", a.attnLogitSoftcapping());
            putCap(o, "final_logit_softcapping", a.finalLogitSoftcapping());
        }
        if (f == Family.GEMMA3) {
            o.put("rope_local_base_freq", a.localRopeTheta());
        }
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
            ArrayNode e = o.putArray("eos_token_id");
            eosTokenIds.forEach(e::add);
        }
        if (padTokenId != null) {
            o.put("pad_token_id", padTokenId);
        }
        if (f == Family.QWEN2 || f == Family.QWEN3) {
            o.put("use_sliding_window", slidingWindow > 0);
        }
        if (slidingWindow > 0) {
            o.put("sliding_window", slidingWindow);
        } else if (f.gemma() || f == Family.QWEN2 || f == Family.QWEN3) {
            o.putNull("sliding_window");
        }
        if (!a.slidingLayers().isEmpty()) {
            ArrayNode types = o.putArray("layer_types");
            a.slidingLayers().forEach(s -> types.add(s ? "sliding_attention" : "full_attention"));
            if (f == Family.QWEN2 || f == Family.QWEN3) {
                int first = a.slidingLayers().indexOf(true);
                o.put("max_window_layers", first < 0 ? numHiddenLayers : first);
            }
        }
        o.put("use_cache", true);
        return o;
    }

    private static void putCap(ObjectNode o, String key, double cap) {
        if (cap > 0) {
            o.put(key, cap);
        } else {
            o.putNull(key);
        }
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

        /** A number where null means "none" (0); absent means {@code fallback}. */
        double optionalNumber(String key, double fallback) {
            if (node.has(key) && node.get(key).isNull()) {
                return 0;
            }
            return number(key, fallback);
        }

        List<Double> numbers(String key) {
            JsonNode v = node.get(key);
            if (v == null || !v.isArray()) {
                throw new ConfigException(source + ": " + key + " must be a list of numbers");
            }
            var out = new java.util.ArrayList<Double>();
            for (JsonNode e : v) {
                if (!e.isNumber()) {
                    throw new ConfigException(source + ": " + key + " must be a list of numbers, got " + e);
                }
                out.add(e.asDouble());
            }
            return out;
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
