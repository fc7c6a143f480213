package dev.jtune.data.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The tokenizer transformers 5 actually runs for a model folder, where it is not {@code tokenizer.json} as
 * written.
 *
 * <p>{@code AutoTokenizer} picks a class from config.json's {@code model_type} and tokenizer_config.json's
 * {@code tokenizer_class}. Most classes load tokenizer.json as it is, but {@code LlamaTokenizer} (also when
 * named {@code LlamaTokenizerFast}) keeps only its vocabulary, merges, added tokens and post-processor and
 * builds the rest itself ({@code models/llama/tokenization_llama.py}): no normalizer, a {@code Metaspace}
 * pre-tokenizer whose {@code prepend_scheme} comes from tokenizer_config.json ({@code add_prefix_space},
 * default true: {@code "always"} when {@code legacy} is true, {@code "first"} when it is false or absent;
 * {@code "never"} without a prefix space), BPE with byte fallback. Older SentencePiece conversions write a
 * {@code Prepend("▁")} normalizer instead, which puts a {@code ▁} in front of every piece between special tokens:
 * {@code "</s> please"} is {@code </s> ▁ ▁please} from tokenizer.json alone and {@code </s> ▁please} in
 * transformers.
 *
 * <p>Whether the named LlamaTokenizer is built is transformers' own decision: model types it maps to another
 * class (Mistral, DeepSeek-V3, Qwen2, Phi-3, ... whose Hub files name LlamaTokenizerFast) keep tokenizer.json;
 * that list, {@code transformers-llama-class-ignored.txt}, is written from transformers 5.18 by
 * {@code tools/reference/transformers_tokenizer_classes.py}. A folder without config.json gets the class its
 * tokenizer_config.json names, as in transformers. Not replayed: {@code auto_map} remote code (jtune keeps
 * tokenizer.json then) and transformers' list of Hub model ids it forces to tokenizer.json (it matches the
 * name a model was loaded by, which a local folder does not carry).
 */
final class TransformersTokenizerClass {
    private static final String IGNORED_RESOURCE = "transformers-llama-class-ignored.txt";
    private static final Set<String> LLAMA_CLASS_IGNORED = loadIgnored();
    private static final String SPIECE_UNDERLINE = "\u2581";

    private TransformersTokenizerClass() {}

    /**
     * Whether transformers builds its {@code LlamaTokenizer} for a folder with this tokenizer_config.json and
     * config.json (either may be null), over a tokenizer.json of model type {@code modelType}.
     */
    static boolean buildsLlamaTokenizer(JsonNode tokenizerConfig, JsonNode modelConfig, String modelType) {
        if (tokenizerConfig == null || !"BPE".equals(modelType)) {
            return false;
        }
        String cls = tokenizerConfig.path("tokenizer_class").asText("");
        if (!cls.equals("LlamaTokenizer") && !cls.equals("LlamaTokenizerFast")) {
            return false;
        }
        JsonNode autoMap = tokenizerConfig.get("auto_map");
        if (autoMap != null && !autoMap.isNull() && (autoMap.isArray() || autoMap.has("AutoTokenizer"))) {
            return false;
        }
        String type = modelConfig == null ? "" : modelConfig.path("model_type").asText("");
        return !LLAMA_CLASS_IGNORED.contains(type);
    }

    /**
     * {@code tokenizerJson} as transformers' LlamaTokenizer rebuilds it, as the JSON the tokenizers library
     * loads. The post-processor stays tokenizer.json's: transformers 5.18 adds BOS/EOS as the file says
     * whatever tokenizer_config.json's {@code add_bos_token}/{@code add_eos_token} (measured; see the test).
     */
    static String llamaTokenizerJson(ObjectMapper json, JsonNode tokenizerJson, JsonNode tokenizerConfig) {
        ObjectNode root = tokenizerJson.deepCopy();
        JsonNode aps = tokenizerConfig.get("add_prefix_space");
        boolean addPrefixSpace = aps == null || aps.isNull() || aps.asBoolean();
        JsonNode legacyNode = tokenizerConfig.get("legacy");
        boolean legacy = legacyNode != null && !legacyNode.isNull() && legacyNode.asBoolean(); // LlamaTokenizer: legacy=False
        String scheme = !addPrefixSpace ? "never" : legacy ? "always" : "first";

        root.putNull("normalizer");
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "Metaspace");
        pre.put("replacement", SPIECE_UNDERLINE);
        pre.put("prepend_scheme", scheme);
        pre.put("split", false);

        ObjectNode model = (ObjectNode) root.get("model");
        model.putNull("dropout");
        model.putNull("unk_token"); // BPE(vocab, merges, fuse_unk=True, byte_fallback=True): no unk token
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", true);
        model.put("byte_fallback", true);
        model.put("ignore_merges", false);

        ObjectNode decoder = root.putObject("decoder");
        decoder.put("type", "Sequence");
        ArrayNode decoders = decoder.putArray("decoders");
        ObjectNode replace = decoders.addObject();
        replace.put("type", "Replace");
        replace.putObject("pattern").put("String", SPIECE_UNDERLINE);
        replace.put("content", " ");
        decoders.addObject().put("type", "ByteFallback");
        decoders.addObject().put("type", "Fuse");
        if (addPrefixSpace) {
            ObjectNode strip = decoders.addObject();
            strip.put("type", "Strip");
            strip.put("content", " ");
            strip.put("start", 1);
            strip.put("stop", 0);
        }

        try {
            return json.writeValueAsString(root);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Set<String> loadIgnored() {
        try (InputStream in = TransformersTokenizerClass.class.getResourceAsStream(IGNORED_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException(IGNORED_RESOURCE + " is missing from the data module's resources");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines()
                    .map(String::strip)
                    .filter(l -> !l.isEmpty() && !l.startsWith("#"))
                    .collect(Collectors.toUnmodifiableSet());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
