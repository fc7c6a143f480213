package dev.jtune.data.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Axolotl's vocabulary keys applied to a tokenizer folder, written as a new folder that transformers'
 * {@code AutoTokenizer.from_pretrained} and {@link Tokenizer#load} both read with the same ids. In Axolotl's order
 * ({@code loaders/tokenizer.py}, {@code load_tokenizer}):
 *
 * <ol>
 *   <li>{@code added_tokens_overrides} ({@code {id: content}}): the content of an existing entry of tokenizer.json's
 *       {@code added_tokens} is replaced (and of the model vocabulary entry with that id, and of
 *       tokenizer_config.json's {@code added_tokens_decoder}); an id that is not an added token is an error, as in
 *       Axolotl's {@code modify_tokenizer_files}. A renamed token that {@code bos_token} etc. named stays that
 *       special token under its new content.</li>
 *   <li>{@code special_tokens} ({@code bos_token}, {@code eos_token}, {@code pad_token}, {@code unk_token}): the
 *       token becomes that special token, added as a special token ({@code AddedToken(normalized=False)}) when
 *       the tokenizer lacks it — {@code tokenizer.add_special_tokens}.</li>
 *   <li>{@code tokens}: each token the tokenizer lacks is added, not special, {@code normalized: false} —
 *       {@code tokenizer.add_tokens}.</li>
 * </ol>
 *
 * <p>As the Rust tokenizers library's {@code AddedVocabulary} does, a token already in the vocabulary keeps its id
 * (a special token of the model vocabulary gains an {@code added_tokens} entry with that id, so it is split out
 * before the model runs); a new token gets the next id after every existing one.
 *
 * @param overrides {@code added_tokens_overrides}: token id → new content
 * @param specialTokens {@code bos_token}/{@code eos_token}/{@code pad_token}/{@code unk_token} → content
 * @param tokens {@code tokens}: new tokens, in order
 */
public record TokenizerEdits(Map<Integer, String> overrides, Map<String, String> specialTokens, List<String> tokens) {
    /** The special-token keys Axolotl's {@code special_tokens:} takes. */
    public static final List<String> SPECIAL_KEYS = List.of("bos_token", "eos_token", "pad_token", "unk_token");

    /** Nothing to change. */
    public static final TokenizerEdits NONE = new TokenizerEdits(Map.of(), Map.of(), List.of());

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public TokenizerEdits {
        overrides = Map.copyOf(new TreeMap<>(overrides));
        for (String k : specialTokens.keySet()) {
            if (!SPECIAL_KEYS.contains(k)) {
                throw new IllegalArgumentException("special token key '" + k + "': expected one of " + SPECIAL_KEYS);
            }
        }
        specialTokens = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(specialTokens));
        tokens = List.copyOf(tokens);
        for (String t : tokens) {
            if (t.isEmpty()) {
                throw new IllegalArgumentException("tokens: an empty token cannot be added");
            }
        }
    }

    public boolean isEmpty() {
        return overrides.isEmpty() && specialTokens.isEmpty() && tokens.isEmpty();
    }

    /**
     * Writes the tokenizer of {@code sourceDir} with these edits into {@code targetDir}: tokenizer.json,
     * tokenizer_config.json and special_tokens_map.json edited, generation_config.json and chat_template.jinja
     * copied, and config.json's {@code model_type} (which decides the tokenizer class, see {@link Tokenizer}) kept in a
     * config.json of its own. The folder is replaced whole (written beside it, then moved), so a reader never sees half of it.
     *
     * @return {@code targetDir}
     * @throws TokenizerException naming the file or key when an override names no added token, or a file is malformed
     */
    public Path writeTo(Path sourceDir, Path targetDir) {
        Path src = sourceDir.toAbsolutePath().normalize();
        Path tokenizerFile = src.resolve(Tokenizer.TOKENIZER_JSON);
        ObjectNode tokenizer = readObject(tokenizerFile, true);
        ObjectNode config = readObject(src.resolve(Tokenizer.TOKENIZER_CONFIG_JSON), false);
        ObjectNode specialMap = readObject(src.resolve(Tokenizer.SPECIAL_TOKENS_MAP_JSON), false);
        if (config == null) config = JSON.createObjectNode();
        if (specialMap == null) specialMap = JSON.createObjectNode();

        ArrayNode added = tokenizer.has("added_tokens") && tokenizer.get("added_tokens").isArray()
                ? (ArrayNode) tokenizer.get("added_tokens") : tokenizer.putArray("added_tokens");
        JsonNode vocab = tokenizer.path("model").path("vocab");
        if (!vocab.isObject() && !vocab.isArray()) {
            throw new TokenizerException(tokenizerFile + ": malformed: no model.vocab (expected a Hugging Face tokenizer.json)");
        }
        ObjectNode decoder = config.has("added_tokens_decoder") && config.get("added_tokens_decoder").isObject()
                ? (ObjectNode) config.get("added_tokens_decoder") : null;

        for (var e : overrides.entrySet()) {
            String old = override(tokenizerFile, added, vocab, decoder, e.getKey(), e.getValue());
            // A special token renamed stays that special token (Axolotl leaves bos_token etc. naming the old text,
            // which transformers would then add again as a new token).
            for (ObjectNode file : List.of(config, specialMap)) {
                for (String key : SPECIAL_KEYS) {
                    JsonNode v = file.get(key);
                    if (v != null && v.isTextual() && v.asText().equals(old)) file.put(key, e.getValue());
                    if (v instanceof ObjectNode o && old.equals(o.path("content").asText(null))) o.put("content", e.getValue());
                }
            }
        }
        for (var e : specialTokens.entrySet()) {
            int id = add(added, vocab, e.getValue(), true);
            config.put(e.getKey(), e.getValue());
            specialMap.put(e.getKey(), e.getValue());
            if (decoder != null) decoder.set(Integer.toString(id), decoderEntry(entry(added, id)));
        }
        for (String token : tokens) {
            int id = add(added, vocab, token, false);
            if (decoder != null && !decoder.has(Integer.toString(id))) {
                decoder.set(Integer.toString(id), decoderEntry(entry(added, id)));
            }
        }
        sortById(added);
        if (decoder != null) sortKeysById(decoder);

        Path target = targetDir.toAbsolutePath().normalize();
        try {
            Files.createDirectories(target.getParent());
            Path tmp = Files.createTempDirectory(target.getParent(), target.getFileName() + ".tmp-");
            try {
                write(tmp.resolve(Tokenizer.TOKENIZER_JSON), tokenizer);
                write(tmp.resolve(Tokenizer.TOKENIZER_CONFIG_JSON), config);
                write(tmp.resolve(Tokenizer.SPECIAL_TOKENS_MAP_JSON), specialMap);
                for (String name : List.of(Tokenizer.GENERATION_CONFIG_JSON, Tokenizer.CHAT_TEMPLATE_JINJA)) {
                    if (Files.isRegularFile(src.resolve(name))) Files.copy(src.resolve(name), tmp.resolve(name));
                }
                // the model type picks the tokenizer class (Tokenizer.load, as transformers): the grown folder
                // must be tokenized as the model's own, so it keeps config.json's model_type (and nothing else)
                ObjectNode modelConfig = readObject(src.resolve(Tokenizer.MODEL_CONFIG_JSON), false);
                if (modelConfig != null && modelConfig.hasNonNull("model_type")) {
                    write(tmp.resolve(Tokenizer.MODEL_CONFIG_JSON),
                            JSON.createObjectNode().put("model_type", modelConfig.get("model_type").asText()));
                }
                if (Files.isDirectory(target)) {
                    try (var old = Files.list(target)) {
                        for (Path f : old.toList()) Files.deleteIfExists(f);
                    }
                    Files.delete(target);
                }
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                if (Files.isDirectory(tmp)) {
                    try (var left = Files.list(tmp)) {
                        for (Path f : left.toList()) Files.deleteIfExists(f);
                    }
                    Files.deleteIfExists(tmp);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(target + ": cannot write the grown tokenizer: " + e.getMessage(), e);
        }
        return target;
    }

    /** Axolotl's {@code modify_tokenizer_files}: only tokens of added_tokens can be renamed. */
    private static String override(Path file, ArrayNode added, JsonNode vocab, ObjectNode decoder, int id, String content) {
        ObjectNode entry = entry(added, id);
        if (entry == null) {
            throw new TokenizerException(file + ": added_tokens_overrides: token id " + id
                    + " is not in added_tokens (only added tokens, such as reserved special tokens, can be renamed)");
        }
        String old = entry.get("content").asText();
        entry.put("content", content);
        if (vocab instanceof ObjectNode v) {
            for (Iterator<Map.Entry<String, JsonNode>> it = v.fields(); it.hasNext(); ) {
                var e = it.next();
                if (e.getValue().asInt(-1) == id) {
                    it.remove();
                    v.put(content, id);
                    break;
                }
            }
        } else if (vocab instanceof ArrayNode v && id < v.size() && v.get(id).isArray()) {
            ((ArrayNode) v.get(id)).set(0, content);
        }
        if (decoder != null && decoder.get(Integer.toString(id)) instanceof ObjectNode d) {
            d.put("content", content);
        }
        return old;
    }

    /** Adds {@code content} (or marks it special) as the tokenizers library does; returns its id. */
    private static int add(ArrayNode added, JsonNode vocab, String content, boolean special) {
        for (JsonNode t : added) {
            if (content.equals(t.path("content").asText(null))) {
                if (special) ((ObjectNode) t).put("special", true);
                return t.get("id").asInt();
            }
        }
        int id = vocabId(vocab, content);
        if (id < 0) {
            id = nextId(added, vocab);
        }
        AddedTokens.append(added, id, content, special);
        return id;
    }

    private static int vocabId(JsonNode vocab, String content) {
        if (vocab.isObject()) {
            JsonNode id = vocab.get(content);
            return id == null ? -1 : id.asInt();
        }
        for (int i = 0; i < vocab.size(); i++) {
            if (content.equals(vocab.get(i).path(0).asText(null))) return i;
        }
        return -1;
    }

    /** One past every id in use: the model vocabulary's size, or the largest added id + 1. */
    private static int nextId(ArrayNode added, JsonNode vocab) {
        int next = vocab.size();
        if (vocab.isObject()) {
            for (JsonNode id : vocab) next = Math.max(next, id.asInt() + 1);
        }
        for (JsonNode t : added) next = Math.max(next, t.get("id").asInt() + 1);
        return next;
    }

    private static ObjectNode entry(ArrayNode added, int id) {
        for (JsonNode t : added) {
            if (t.path("id").asInt(-1) == id) return (ObjectNode) t;
        }
        return null;
    }

    /** tokenizer_config.json's form of an added token (transformers' {@code AddedToken.__getstate__}). */
    private static ObjectNode decoderEntry(ObjectNode added) {
        ObjectNode d = JSON.createObjectNode();
        d.put("content", added.get("content").asText());
        d.put("lstrip", added.path("lstrip").asBoolean(false));
        d.put("normalized", added.path("normalized").asBoolean(false));
        d.put("rstrip", added.path("rstrip").asBoolean(false));
        d.put("single_word", added.path("single_word").asBoolean(false));
        d.put("special", added.path("special").asBoolean(false));
        return d;
    }

    private static void sortById(ArrayNode added) {
        List<JsonNode> entries = new ArrayList<>();
        added.forEach(entries::add);
        entries.sort(java.util.Comparator.comparingInt(t -> t.get("id").asInt()));
        added.removeAll();
        entries.forEach(added::add);
    }

    private static void sortKeysById(ObjectNode decoder) {
        TreeMap<Integer, JsonNode> sorted = new TreeMap<>();
        decoder.fields().forEachRemaining(e -> sorted.put(Integer.parseInt(e.getKey()), e.getValue()));
        decoder.removeAll();
        sorted.forEach((k, v) -> decoder.set(Integer.toString(k), v));
    }

    private static ObjectNode readObject(Path file, boolean required) {
        if (!Files.isRegularFile(file)) {
            if (required) throw new TokenizerException(file + ": missing");
            return null;
        }
        try {
            JsonNode node = JSON.readTree(Tokenizer.readText(file));
            if (!(node instanceof ObjectNode o)) {
                throw new TokenizerException(file + ": malformed: expected a JSON object");
            }
            return o;
        } catch (JsonProcessingException e) {
            throw new TokenizerException(file + ": malformed JSON: " + e.getOriginalMessage(), e);
        }
    }

    private static void write(Path file, JsonNode node) throws IOException {
        Files.writeString(file, JSON.writeValueAsString(node) + "\n", StandardCharsets.UTF_8);
    }

    @Override
    public String toString() {
        return "TokenizerEdits[overrides=" + overrides + ", special_tokens=" + specialTokens + ", tokens=" + tokens + "]";
    }
}
