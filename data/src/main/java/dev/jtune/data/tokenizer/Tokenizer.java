package dev.jtune.data.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.TokenizersLibrary;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * A Hugging Face fast tokenizer ({@code tokenizer.json}) for one model directory, run by the Rust
 * tokenizers library that DJL bundles.
 *
 * <p>{@link #encode encode(text, true)} returns exactly the ids that the {@code tokenizers} library gives
 * for {@code tokenizer.json}, which is what {@code transformers}' {@code tokenizer(text)} gives for a fast
 * tokenizer: the file's post-processor decides which special tokens (BOS, EOS, ...) are added; with
 * {@code false} none are. Nothing is truncated or padded: DJL's defaults (truncation to 512 tokens,
 * padding) and any {@code truncation}/{@code padding} section in the file are switched off.
 *
 * <p>Where transformers 5 does not run tokenizer.json as written, neither does this class: a tokenizer_config.json
 * naming {@code LlamaTokenizer}/{@code LlamaTokenizerFast} (unless config.json's {@code model_type} makes
 * transformers pick another class) gets transformers' LlamaTokenizer rebuild — a Metaspace pre-tokenizer instead of
 * the file's normalizer, so no extra {@code ▁} after a special token (see {@code TransformersTokenizerClass}).
 *
 * <p>The special tokens come from {@code tokenizer_config.json} ({@code bos_token}, {@code eos_token},
 * {@code pad_token}, each a string or an {@code {"content": ...}} object), falling back to
 * {@code special_tokens_map.json} and then to {@code generation_config.json}'s ids. {@link #eosIds()}
 * merges the tokenizer's EOS with every id in {@code generation_config.json}'s {@code eos_token_id} (an int
 * or a list), which is what generation should stop on.
 *
 * <p>The native tokenizer is not changed after loading, so {@code encode}/{@code decode} may be called from
 * several threads; {@link #close()} frees it and must not race with them. Loading never downloads anything.
 */
public final class Tokenizer implements AutoCloseable {
    public static final String TOKENIZER_JSON = "tokenizer.json";
    public static final String TOKENIZER_CONFIG_JSON = "tokenizer_config.json";
    public static final String SPECIAL_TOKENS_MAP_JSON = "special_tokens_map.json";
    public static final String GENERATION_CONFIG_JSON = "generation_config.json";
    public static final String CHAT_TEMPLATE_JINJA = "chat_template.jinja";
    /** The model's config.json: its {@code model_type} decides, as in transformers, which tokenizer class runs. */
    public static final String MODEL_CONFIG_JSON = "config.json";

    /** transformers' VERY_LARGE_INTEGER (int(1e30)): "no limit" in {@code model_max_length}. */
    private static final double NO_MAX_LENGTH = 1e18;

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path directory;
    private final HuggingFaceTokenizer hf;
    private final String modelType;
    private final Map<String, Integer> tokenToId;
    private final String[] idToToken;
    private final Special bos;
    private final Special eos;
    private final Special pad;
    private final List<Integer> eosIds;
    private final String chatTemplate;
    private final boolean cleanUpSpaces;
    private final OptionalLong modelMaxLength;
    /** The tokenizer.json the native tokenizer was built from, for {@link #encodeWindows}' truncating copies. */
    private final String nativeJson;
    private final Map<String, HuggingFaceTokenizer> windowed = new java.util.HashMap<>();

    private record Special(String token, int id) {
        static final Special NONE = new Special(null, -1);

        OptionalInt optionalId() {
            return id < 0 ? OptionalInt.empty() : OptionalInt.of(id);
        }
    }

    private record Vocab(String modelType, Map<String, Integer> tokenToId, String[] idToToken) {}

    private Tokenizer(
            Path directory,
            HuggingFaceTokenizer nativeTokenizer,
            Vocab vocab,
            Special bos,
            Special eos,
            Special pad,
            List<Integer> eosIds,
            String chatTemplate,
            boolean cleanUpSpaces,
            OptionalLong modelMaxLength,
            String nativeJson) {
        this.nativeJson = nativeJson;
        this.directory = directory;
        this.hf = nativeTokenizer;
        this.modelType = vocab.modelType();
        this.tokenToId = vocab.tokenToId();
        this.idToToken = vocab.idToToken();
        this.bos = bos;
        this.eos = eos;
        this.pad = pad;
        this.eosIds = List.copyOf(eosIds);
        this.chatTemplate = chatTemplate;
        this.cleanUpSpaces = cleanUpSpaces;
        this.modelMaxLength = modelMaxLength;
    }

    /**
     * Loads the tokenizer of a Hugging Face model directory: {@code tokenizer.json} (required), and
     * {@code tokenizer_config.json}, {@code special_tokens_map.json}, {@code generation_config.json},
     * {@code chat_template.jinja} and config.json (only its {@code model_type}) when present.
     *
     * @throws TokenizerException if a file is missing, unreadable or malformed; the message names it
     */
    public static Tokenizer load(Path modelDir) {
        Objects.requireNonNull(modelDir, "modelDir");
        Path dir = modelDir.toAbsolutePath().normalize();
        if (!Files.isDirectory(dir)) {
            throw new TokenizerException(dir + ": not a directory (expected a model directory holding " + TOKENIZER_JSON + ")");
        }
        Path tokenizerFile = dir.resolve(TOKENIZER_JSON);
        if (!Files.isRegularFile(tokenizerFile) && Tekken.isIn(dir)) {
            return tekken(dir, Tekken.read(dir.resolve(Tekken.FILE)), true); // a Mistral folder with only tekken.json
        }
        if (!Files.isRegularFile(tokenizerFile)) {
            throw new TokenizerException(tokenizerFile + ": missing; jtune needs a fast tokenizer's " + TOKENIZER_JSON
                    + " (a slow-only tokenizer.model/vocab.txt is not enough)");
        }
        String tokenizerJson = readText(tokenizerFile);
        Vocab vocab = parseTokenizerJson(tokenizerFile, tokenizerJson);

        Path configFile = dir.resolve(TOKENIZER_CONFIG_JSON);
        Path specialMapFile = dir.resolve(SPECIAL_TOKENS_MAP_JSON);
        Path generationFile = dir.resolve(GENERATION_CONFIG_JSON);
        JsonNode config = readOptionalObject(configFile);
        JsonNode specialMap = readOptionalObject(specialMapFile);
        JsonNode generation = readOptionalObject(generationFile);

        Special bos = special("bos", vocab, config, configFile, specialMap, specialMapFile, generation, generationFile);
        Special eos = special("eos", vocab, config, configFile, specialMap, specialMapFile, generation, generationFile);
        Special pad = special("pad", vocab, config, configFile, specialMap, specialMapFile, generation, generationFile);

        LinkedHashSet<Integer> eosIds = new LinkedHashSet<>();
        if (eos.id() >= 0) {
            eosIds.add(eos.id());
        }
        if (generation != null) {
            JsonNode e = generation.get("eos_token_id");
            if (e != null && e.isArray()) {
                for (JsonNode id : e) {
                    eosIds.add(tokenId(id, vocab, generationFile, "eos_token_id"));
                }
            } else if (e != null && !e.isNull()) {
                eosIds.add(tokenId(e, vocab, generationFile, "eos_token_id"));
            }
        }

        String chatTemplate = chatTemplate(dir, config, configFile);
        boolean cleanUp = config != null
                && config.path("clean_up_tokenization_spaces").asBoolean(false)
                // transformers 5 skips this WordPiece-era cleanup for BPE models: it destroys " ," etc.
                && !"BPE".equals(vocab.modelType());
        OptionalLong maxLength = OptionalLong.empty();
        if (config != null && config.path("model_max_length").isNumber()) {
            double v = config.get("model_max_length").asDouble();
            if (v > 0 && v < NO_MAX_LENGTH) {
                maxLength = OptionalLong.of((long) v);
            }
        }

        // transformers' AutoTokenizer rebuilds some tokenizers rather than loading tokenizer.json as written
        String nativeJson = tokenizerJson;
        JsonNode modelConfig = readOptionalObject(dir.resolve(MODEL_CONFIG_JSON));
        if (TransformersTokenizerClass.buildsLlamaTokenizer(config, modelConfig, vocab.modelType())) {
            try {
                nativeJson = TransformersTokenizerClass.llamaTokenizerJson(JSON, JSON.readTree(tokenizerJson), config);
            } catch (JsonProcessingException e) {
                throw malformed(tokenizerFile, e);
            }
        }
        HuggingFaceTokenizer nativeTokenizer = createNative(tokenizerFile, nativeJson);
        return new Tokenizer(dir, nativeTokenizer, vocab, bos, eos, pad, List.copyOf(eosIds), chatTemplate, cleanUp, maxLength, nativeJson);
    }

    /**
     * The tokenizer of a Mistral {@code tekken.json} ({@link Tekken}): bos {@code <s>}, eos {@code </s>}, pad
     * {@code <pad>} as mistral-common names them; no post-processor (mistral-common's {@code encode} adds BOS only
     * when asked), no chat template. With {@code specialTokens} false the control tokens are not matched in text
     * (mistral-common encodes message text so): for encoding message text only.
     */
    public static Tokenizer tekken(Path dir, Tekken tekken, boolean specialTokens) {
        String json = tekken.tokenizerJson(specialTokens);
        Vocab vocab = parseTokenizerJson(tekken.file(), json);
        Special bos = tekkenSpecial(tekken, "<s>");
        Special eos = tekkenSpecial(tekken, "</s>");
        Special pad = tekkenSpecial(tekken, "<pad>");
        List<Integer> eosIds = eos.id() < 0 ? List.of() : List.of(eos.id());
        return new Tokenizer(dir.toAbsolutePath().normalize(), createNative(tekken.file(), json), vocab, bos, eos, pad,
                eosIds, null, false, OptionalLong.empty(), json);
    }

    private static Special tekkenSpecial(Tekken tekken, String token) {
        return tekken.specialId(token).map(id -> new Special(token, id)).orElse(Special.NONE);
    }

    /**
     * Token ids for {@code text}. With {@code addSpecialTokens} the tokenizer.json post-processor adds its
     * special tokens (Llama: BOS in front); without, there are none. Never truncated, never padded.
     */
    public int[] encode(String text, boolean addSpecialTokens) {
        Objects.requireNonNull(text, "text");
        HuggingFaceTokenizer t = nativeTokenizer();
        return idsOnly(TokenizersLibrary.LIB.encode(t.getHandle(), text, addSpecialTokens));
    }

    /**
     * transformers' {@code tokenizer(text, truncation=True, max_length=maxLength, add_special_tokens=True,
     * return_overflowing_tokens=True, stride=stride)["input_ids"]}: the first window and every overflowing one,
     * computed by the same tokenizers library (its truncation: windows of {@code maxLength} minus the special tokens,
     * each starting {@code stride} tokens before the previous one's end, special tokens added to each). Which
     * post-processors keep the overflowing windows is that library's business (a ByteLevel one drops them: one
     * window), and is followed here as it is, since Axolotl's pretraining tokenization goes through it.
     */
    public synchronized List<int[]> encodeWindows(String text, int maxLength, int stride) {
        Objects.requireNonNull(text, "text");
        if (hf.isReleased()) throw new IllegalStateException("the tokenizer of " + directory + " is closed");
        HuggingFaceTokenizer t = windowed.computeIfAbsent(maxLength + "/" + stride, k -> {
            DjlSetup.ensureOffline();
            try {
                return HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(nativeJson.getBytes(StandardCharsets.UTF_8)),
                        Map.of("addSpecialTokens", "true", "withOverflowingTokens", "true", "truncation", "true",
                                "maxLength", Integer.toString(maxLength), "stride", Integer.toString(stride),
                                "padding", "false"));
            } catch (IOException e) {
                throw new TokenizerException(directory + ": cannot build a truncating tokenizer: " + e.getMessage(), e);
            }
        });
        ai.djl.huggingface.tokenizers.Encoding first = t.encode(text, true, true);
        List<int[]> out = new ArrayList<>();
        out.add(toInts(first.getIds()));
        for (ai.djl.huggingface.tokenizers.Encoding e : first.getOverflowing()) out.add(toInts(e.getIds()));
        return out;
    }

    private static int[] toInts(long[] ids) {
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) out[i] = Math.toIntExact(ids[i]);
        return out;
    }

    /**
     * Token ids and each token's character span {@code [starts[i], ends[i])} in {@code text} (Java char
     * indices), as the tokenizers library reports offsets (transformers' {@code return_offsets_mapping}).
     */
    public record Encoded(int[] ids, int[] starts, int[] ends) {}

    /** {@link #encode} with offsets: see {@link Encoded}. */
    public Encoded encodeWithOffsets(String text, boolean addSpecialTokens) {
        Objects.requireNonNull(text, "text");
        long encoding = TokenizersLibrary.LIB.encode(nativeTokenizer().getHandle(), text, addSpecialTokens);
        ai.djl.huggingface.tokenizers.jni.CharSpan[] spans;
        try {
            spans = TokenizersLibrary.LIB.getTokenCharSpans(encoding);
        } catch (RuntimeException e) {
            TokenizersLibrary.LIB.deleteEncoding(encoding);
            throw e;
        }
        int[] ids = idsOnly(encoding);
        int[] starts = new int[ids.length];
        int[] ends = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            ai.djl.huggingface.tokenizers.jni.CharSpan sp = i < spans.length ? spans[i] : null;
            starts[i] = sp == null ? -1 : sp.getStart();
            ends[i] = sp == null ? -1 : sp.getEnd();
        }
        return new Encoded(ids, starts, ends);
    }

    /** {@link #encode} for many texts at once (the Rust library spreads the work over its threads). */
    public List<int[]> encodeBatch(List<String> texts, boolean addSpecialTokens) {
        Objects.requireNonNull(texts, "texts");
        String[] array = new String[texts.size()];
        for (int i = 0; i < array.length; i++) {
            array[i] = Objects.requireNonNull(texts.get(i), "texts contains null");
        }
        long[] handles = TokenizersLibrary.LIB.batchEncode(nativeTokenizer().getHandle(), array, addSpecialTokens);
        List<int[]> out = new ArrayList<>(handles.length);
        int i = 0;
        try {
            for (; i < handles.length; i++) {
                out.add(idsOnly(handles[i]));
            }
        } finally {
            for (i++; i < handles.length; i++) {
                TokenizersLibrary.LIB.deleteEncoding(handles[i]);
            }
        }
        return out;
    }

    /**
     * The text for {@code ids}, through the tokenizer.json decoder; {@code skipSpecialTokens} drops tokens
     * marked special. Like transformers 5, applies {@code clean_up_tokenization_spaces} only to non-BPE
     * models.
     *
     * @throws IllegalArgumentException if an id is not in the vocabulary
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        Objects.requireNonNull(ids, "ids");
        long[] longs = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            int id = ids[i];
            if (id < 0 || id >= idToToken.length || idToToken[id] == null) {
                throw new IllegalArgumentException("token id " + id + " (at index " + i + ") is not in the vocabulary of "
                        + directory + " (size " + idToToken.length + ")");
            }
            longs[i] = id;
        }
        String text = nativeTokenizer().decode(longs, skipSpecialTokens);
        return cleanUpSpaces ? cleanUpTokenization(text) : text;
    }

    /**
     * One more than the largest token id, added tokens included: every id {@link #encode} returns is below
     * it. For contiguous vocabularies (all published ones we know) it equals transformers' {@code len(tokenizer)}.
     */
    public int vocabSize() {
        return idToToken.length;
    }

    public OptionalInt bosId() {
        return bos.optionalId();
    }

    public OptionalInt eosId() {
        return eos.optionalId();
    }

    /**
     * Every id that ends a generation: {@link #eosId()} first, then each {@code eos_token_id} of
     * generation_config.json not already listed. Empty if neither file names one.
     */
    public List<Integer> eosIds() {
        return eosIds;
    }

    public OptionalInt padId() {
        return pad.optionalId();
    }

    public Optional<String> bosToken() {
        return Optional.ofNullable(bos.token());
    }

    public Optional<String> eosToken() {
        return Optional.ofNullable(eos.token());
    }

    public Optional<String> padToken() {
        return Optional.ofNullable(pad.token());
    }

    /** The id of a vocabulary or added token, given as it appears in the vocabulary (e.g. {@code "Ġworld"}). */
    public OptionalInt tokenToId(String token) {
        Integer id = tokenToId.get(Objects.requireNonNull(token, "token"));
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /**
     * The vocabulary string of {@code id}, as transformers' {@code convert_ids_to_tokens} gives it.
     *
     * @throws IllegalArgumentException if the id is not in the vocabulary
     */
    public String idToToken(int id) {
        if (id < 0 || id >= idToToken.length || idToToken[id] == null) {
            throw new IllegalArgumentException("token id " + id + " is not in the vocabulary of " + directory);
        }
        return idToToken[id];
    }

    /**
     * The Jinja chat template: tokenizer_config.json's {@code chat_template} (a string, or a list of
     * {@code {name, template}} from which "default", else the first, is taken), else chat_template.jinja.
     */
    public Optional<String> chatTemplate() {
        return Optional.ofNullable(chatTemplate);
    }

    /** tokenizer_config.json's {@code model_max_length}, empty if absent or transformers' "no limit" value. */
    public OptionalLong modelMaxLength() {
        return modelMaxLength;
    }

    /** The model type in tokenizer.json ({@code BPE}, {@code Unigram}, {@code WordPiece}, ...), or null. */
    public String modelType() {
        return modelType;
    }

    /** The model directory this tokenizer was loaded from (absolute). */
    public Path directory() {
        return directory;
    }

    /** Frees the native tokenizer. Idempotent; later calls to encode/decode throw IllegalStateException. */
    @Override
    public void close() {
        synchronized (this) {
            windowed.values().forEach(HuggingFaceTokenizer::close);
            windowed.clear();
        }
        hf.close();
    }

    @Override
    public String toString() {
        return "Tokenizer[" + directory + ", " + modelType + ", vocabSize=" + vocabSize() + "]";
    }

    // ----------------------------------------------------------------------------------------------

    private HuggingFaceTokenizer nativeTokenizer() {
        if (hf.isReleased()) {
            throw new IllegalStateException("the tokenizer of " + directory + " is closed");
        }
        return hf;
    }

    /**
     * The ids of a native encoding, which is then freed. DJL's {@link Encoding} would also copy out the
     * tokens as strings, offsets, masks and word ids on every call; fetching only the ids makes batch
     * encoding about twice as fast. Truncation is off, so nothing overflows.
     */
    private static int[] idsOnly(long encoding) {
        try {
            long[] ids = TokenizersLibrary.LIB.getTokenIds(encoding);
            int[] out = new int[ids.length];
            for (int i = 0; i < ids.length; i++) {
                out[i] = Math.toIntExact(ids[i]);
            }
            return out;
        } finally {
            TokenizersLibrary.LIB.deleteEncoding(encoding);
        }
    }


    /** transformers' {@code clean_up_tokenization}. */
    private static String cleanUpTokenization(String text) {
        return text.replace(" .", ".")
                .replace(" ?", "?")
                .replace(" !", "!")
                .replace(" ,", ",")
                .replace(" ' ", "'")
                .replace(" n't", "n't")
                .replace(" 'm", "'m")
                .replace(" 's", "'s")
                .replace(" 've", "'ve")
                .replace(" 're", "'re");
    }

    private static HuggingFaceTokenizer createNative(Path file, String json) {
        DjlSetup.ensureOffline();
        Map<String, String> options = Map.of(
                "addSpecialTokens", "true",
                "withOverflowingTokens", "false",
                "truncation", "false",
                "padding", "false");
        try {
            return HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)), options);
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot read: " + e.getMessage(), e);
        } catch (RuntimeException | LinkageError e) {
            if (e.getClass().getName().equals("ai.djl.engine.EngineException") || e instanceof LinkageError) {
                throw new TokenizerException("cannot load the Hugging Face tokenizers native library "
                        + "(ai.djl.huggingface:tokenizers jar) for " + file + ": " + rootMessage(e), e);
            }
            throw new TokenizerException(file + ": rejected by the Hugging Face tokenizers library: " + rootMessage(e), e);
        }
    }

    private static String rootMessage(Throwable t) {
        Throwable r = t;
        while (r.getCause() != null && r.getCause() != r) {
            r = r.getCause();
        }
        String m = r.getMessage();
        return m == null ? r.getClass().getSimpleName() : m;
    }

    static String readText(Path file) {
        try {
            byte[] bytes = Files.readAllBytes(file);
            return StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (NoSuchFileException e) {
            throw new TokenizerException(file + ": missing", e);
        } catch (CharacterCodingException e) {
            throw new TokenizerException(file + ": not valid UTF-8", e);
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot read: " + e, e);
        }
    }

    private static JsonNode readOptionalObject(Path file) {
        if (!Files.exists(file)) {
            return null;
        }
        String text = readText(file);
        JsonNode node;
        try {
            node = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw malformed(file, e);
        }
        if (node == null || !node.isObject()) {
            throw new TokenizerException(file + ": malformed: expected a JSON object");
        }
        return node;
    }

    private static TokenizerException malformed(Path file, JsonProcessingException e) {
        var loc = e.getLocation();
        String where = loc == null ? "" : " (line " + loc.getLineNr() + ", column " + loc.getColumnNr() + ")";
        return new TokenizerException(file + ": malformed JSON" + where + ": " + e.getOriginalMessage(), e);
    }

    /** Streams tokenizer.json for the model type, the vocabulary and the added tokens. */
    private static Vocab parseTokenizerJson(Path file, String json) {
        String modelType = null;
        Map<String, Integer> tokenToId = null;
        List<JsonNode> added = new ArrayList<>();
        try (JsonParser p = JSON.getFactory().createParser(json)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new TokenizerException(file + ": malformed: expected a JSON object");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken value = p.nextToken();
                if (field.equals("model") && value == JsonToken.START_OBJECT) {
                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                        String modelField = p.currentName();
                        JsonToken v = p.nextToken();
                        if (modelField.equals("type") && v == JsonToken.VALUE_STRING) {
                            modelType = p.getText();
                        } else if (modelField.equals("vocab") && v == JsonToken.START_OBJECT) {
                            tokenToId = new HashMap<>();
                            while (p.nextToken() == JsonToken.FIELD_NAME) {
                                String token = p.currentName();
                                if (p.nextToken() != JsonToken.VALUE_NUMBER_INT) {
                                    throw new TokenizerException(file + ": malformed: model.vocab[" + quote(token) + "] is not an integer id");
                                }
                                tokenToId.put(token, p.getIntValue());
                            }
                        } else if (modelField.equals("vocab") && v == JsonToken.START_ARRAY) {
                            // Unigram: [[piece, score], ...], the id is the position.
                            tokenToId = new HashMap<>();
                            int id = 0;
                            while (p.nextToken() == JsonToken.START_ARRAY) {
                                if (p.nextToken() != JsonToken.VALUE_STRING) {
                                    throw new TokenizerException(file + ": malformed: model.vocab[" + id + "] is not [piece, score]");
                                }
                                tokenToId.putIfAbsent(p.getText(), id++);
                                p.skipChildren();
                                while (p.nextToken() != JsonToken.END_ARRAY) {
                                    p.skipChildren();
                                }
                            }
                        } else {
                            p.skipChildren();
                        }
                    }
                } else if (field.equals("added_tokens") && value == JsonToken.START_ARRAY) {
                    JsonNode array = JSON.readTree(p);
                    array.forEach(added::add);
                } else {
                    p.skipChildren();
                }
            }
            if (p.nextToken() != null) {
                throw new TokenizerException(file + ": malformed JSON: trailing content after the top-level object");
            }
        } catch (JsonProcessingException e) {
            throw malformed(file, e);
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot read: " + e, e);
        }
        if (tokenToId == null) {
            throw new TokenizerException(file + ": malformed: no model.vocab (expected a Hugging Face tokenizer.json)");
        }
        Map<Integer, String> addedById = new HashMap<>();
        for (JsonNode token : added) {
            JsonNode id = token.get("id");
            JsonNode content = token.get("content");
            if (id == null || !id.isIntegralNumber() || !id.canConvertToInt() || id.asInt() < 0
                    || content == null || !content.isTextual()) {
                throw new TokenizerException(file + ": malformed: added_tokens entry " + token + " needs an id and a content");
            }
            addedById.put(id.asInt(), content.asText());
        }
        int max = -1;
        for (int id : tokenToId.values()) {
            if (id < 0) {
                throw new TokenizerException(file + ": malformed: negative token id " + id);
            }
            max = Math.max(max, id);
        }
        for (int id : addedById.keySet()) {
            max = Math.max(max, id);
        }
        String[] idToToken = new String[max + 1];
        for (var e : tokenToId.entrySet()) {
            idToToken[e.getValue()] = e.getKey();
        }
        // Added tokens win over model entries, as in the tokenizers library.
        for (var e : addedById.entrySet()) {
            idToToken[e.getKey()] = e.getValue();
            tokenToId.put(e.getValue(), e.getKey());
        }
        return new Vocab(modelType, Map.copyOf(tokenToId), idToToken);
    }

    private static String quote(String s) {
        return '"' + s + '"';
    }

    /** A token value of tokenizer_config.json / special_tokens_map.json: a string, {"content": ...} or null. */
    private static String tokenValue(JsonNode node, Path file, String key) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (node.isTextual()) {
            return node.asText();
        }
        if (node.isObject() && node.path("content").isTextual()) {
            return node.get("content").asText();
        }
        throw new TokenizerException(file + ": malformed: " + key + " must be a string, an object with \"content\", or null; got " + node);
    }

    private static Special special(
            String kind,
            Vocab vocab,
            JsonNode config,
            Path configFile,
            JsonNode specialMap,
            Path specialMapFile,
            JsonNode generation,
            Path generationFile) {
        String key = kind + "_token";
        JsonNode source = null;
        Path sourceFile = null;
        if (config != null && config.has(key)) {
            source = config;
            sourceFile = configFile;
        } else if (specialMap != null && specialMap.has(key)) {
            source = specialMap;
            sourceFile = specialMapFile;
        }
        if (source != null) {
            String token = tokenValue(source.get(key), sourceFile, key);
            if (token == null) {
                return Special.NONE;
            }
            Integer id = vocab.tokenToId().get(token);
            if (id == null) {
                throw new TokenizerException(sourceFile + ": " + key + " " + quote(token) + " is not in the vocabulary of " + TOKENIZER_JSON);
            }
            return new Special(token, id);
        }
        if (generation != null) {
            JsonNode idNode = generation.get(kind + "_token_id");
            if (idNode != null && idNode.isArray()) {
                idNode = idNode.isEmpty() ? null : idNode.get(0);
            }
            if (idNode != null && !idNode.isNull()) {
                int id = tokenId(idNode, vocab, generationFile, kind + "_token_id");
                return new Special(vocab.idToToken()[id], id);
            }
        }
        return Special.NONE;
    }

    private static int tokenId(JsonNode node, Vocab vocab, Path file, String key) {
        if (!node.canConvertToInt() || !node.isIntegralNumber()) {
            throw new TokenizerException(file + ": malformed: " + key + " must be an integer or a list of integers; got " + node);
        }
        int id = node.asInt();
        if (id < 0 || id >= vocab.idToToken().length || vocab.idToToken()[id] == null) {
            throw new TokenizerException(file + ": " + key + " " + id + " is not a token id of " + TOKENIZER_JSON
                    + " (vocabulary size " + vocab.idToToken().length + ")");
        }
        return id;
    }

    private static String chatTemplate(Path dir, JsonNode config, Path configFile) {
        JsonNode t = config == null ? null : config.get("chat_template");
        if (t != null && t.isTextual()) {
            return t.asText();
        }
        if (t != null && t.isArray()) {
            String first = null;
            for (JsonNode entry : t) {
                JsonNode template = entry.get("template");
                if (template == null || !template.isTextual()) {
                    throw new TokenizerException(configFile + ": malformed: chat_template entries must be {\"name\", \"template\"}; got " + entry);
                }
                if ("default".equals(entry.path("name").asText(null))) {
                    return template.asText();
                }
                if (first == null) {
                    first = template.asText();
                }
            }
            if (first != null) {
                return first;
            }
        } else if (t != null && !t.isNull()) {
            throw new TokenizerException(configFile + ": malformed: chat_template must be a string or a list of {name, template}; got " + t.getNodeType());
        }
        Path jinja = dir.resolve(CHAT_TEMPLATE_JINJA);
        if (Files.isRegularFile(jinja)) {
            return readText(jinja);
        }
        return null;
    }

    /** Keeps DJL from downloading or phoning home when the tokenizers natives are first loaded. */
    static final class DjlSetup {
        private static volatile boolean done;

        private DjlSetup() {}

        static void ensureOffline() {
            if (done) {
                return;
            }
            synchronized (DjlSetup.class) {
                if (done) {
                    return;
                }
                // Offline mode: no telemetry call and the CPU natives from the jar, never a CUDA download.
                setIfUnset("ai.djl.offline", "true", false);
                // These two also hold if someone set DJL_OFFLINE=false for other parts of DJL.
                setIfUnset("RUST_FLAVOR", "cpu", true);
                setIfUnset("OPT_OUT_TRACKING", "true", true);
                done = true;
            }
        }

        private static void setIfUnset(String key, String value, boolean envCounts) {
            if (System.getProperty(key) != null) {
                return;
            }
            if (envCounts && System.getenv(key) != null) {
                return;
            }
            System.setProperty(key, value);
        }
    }
}
