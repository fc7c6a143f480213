package dev.jtune.trainer.setup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.config.SpecialTokens;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.config.TrainerSettings;
import dev.jtune.data.tokenizer.Tokenizer;
import dev.jtune.data.tokenizer.TokenizerEdits;
import dev.jtune.lora.LoraSettings;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Axolotl's vocabulary keys: {@code tokens}, {@code special_tokens}, {@code added_tokens_overrides} (the tokenizer,
 * {@link TokenizerEdits}), {@code resize_token_embeddings_to_32x} and {@code mean_resizing_embeddings} (the model,
 * {@link VocabGrowth}). As Axolotl's {@code ModelLoader}: the embedding grows to {@code len(tokenizer)} (rounded up
 * to a multiple of 32 with {@code resize_token_embeddings_to_32x}) when it has fewer rows, and never shrinks.
 *
 * <p>The edited tokenizer is written to {@code output_dir/tokenizer} (where Axolotl writes its overridden one) and
 * every verb of the run reads it from there; the exported adapter's folder gets a copy.
 *
 * @param source the config file, for messages
 * @param edits the tokenizer edits
 * @param to32x {@code resize_token_embeddings_to_32x}
 * @param meanResizing {@code mean_resizing_embeddings} (default false, as Axolotl's)
 */
public record VocabSettings(Path source, TokenizerEdits edits, boolean to32x, boolean meanResizing) {
    /** The folder under output_dir that holds the edited tokenizer. */
    public static final String TOKENIZER_FOLDER = "tokenizer";

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Reads the keys of a loaded config.
     *
     * @throws IllegalArgumentException naming the file and key for an {@code added_tokens_overrides} key that is not
     *     a token id or a value that is not a string
     */
    public static VocabSettings from(TrainConfig config) {
        TrainerSettings s = config.trainer();
        Map<Integer, String> overrides = new LinkedHashMap<>();
        for (var e : s.mapping("added_tokens_overrides").entrySet()) {
            int id;
            try {
                id = Integer.parseInt(e.getKey().strip());
            } catch (NumberFormatException ex) {
                throw new IllegalArgumentException(config.source() + ": added_tokens_overrides: key '" + e.getKey()
                        + "' is not a token id (expected {id: new content}, e.g. 128011: \"<|im_start|>\")");
            }
            if (!(e.getValue() instanceof String content) || content.isEmpty()) {
                throw new IllegalArgumentException(config.source() + ": added_tokens_overrides." + e.getKey()
                        + ": expected the token's new content (a non-empty string), got " + e.getValue());
            }
            overrides.put(id, content);
        }
        Map<String, String> special = new LinkedHashMap<>();
        SpecialTokens st = config.specialTokens();
        st.bosToken().ifPresent(t -> special.put("bos_token", t));
        st.eosToken().ifPresent(t -> special.put("eos_token", t));
        st.padToken().ifPresent(t -> special.put("pad_token", t));
        st.unkToken().ifPresent(t -> special.put("unk_token", t));
        List<String> tokens = s.strings("tokens");
        for (String t : tokens) {
            if (t.isEmpty()) {
                throw new IllegalArgumentException(config.source() + ": tokens: an empty string is not a token");
            }
        }
        return new VocabSettings(config.source(), new TokenizerEdits(overrides, special, tokens),
                s.bool("resize_token_embeddings_to_32x").orElse(false),
                s.bool("mean_resizing_embeddings").orElse(false));
    }

    /**
     * These settings with one more token to add after the config's own (the diffusion objective's mask token): the
     * embedding then grows with transformers' {@code resize_token_embeddings} default, mean resizing, unless the
     * config adds tokens of its own, whose rows keep {@code mean_resizing_embeddings} (one growth covers both here).
     */
    public VocabSettings adding(String token) {
        List<String> tokens = new java.util.ArrayList<>(edits.tokens());
        tokens.add(token);
        return new VocabSettings(source, new TokenizerEdits(edits.overrides(), edits.specialTokens(), tokens), to32x,
                meanResizing || edits.tokens().isEmpty());
    }

    /** Whether the config asks for new tokens or a rounded-up embedding. */
    public boolean asksGrowth() {
        return !edits.isEmpty() || to32x;
    }

    /** The tokenizer the run reads: {@code output_dir/tokenizer} when the config edits it, else {@code tokenizerDir}. */
    public Path tokenizerDir(Path tokenizerDir, Path outputDir) {
        return edits.isEmpty() ? tokenizerDir : outputDir.resolve(TOKENIZER_FOLDER);
    }

    /** Writes the edited tokenizer (rank 0, before anyone reads it) and returns {@link #tokenizerDir}. */
    public Path writeTokenizer(Path tokenizerDir, Path outputDir) {
        return edits.isEmpty() ? tokenizerDir : edits.writeTo(tokenizerDir, outputDir.resolve(TOKENIZER_FOLDER));
    }

    /** Axolotl's {@code embeddings_len}: the tokenizer's size, rounded up to 32s when asked. */
    public int embeddingsLen(int tokenizerSize) {
        return to32x ? (tokenizerSize + 31) / 32 * 32 : tokenizerSize;
    }

    /**
     * The growth of a model of {@code modelRows} for a tokenizer of {@code tokenizerSize}, or empty when the model
     * already has the rows. A tokenizer larger than the model is refused when the config does not ask for growth,
     * and growth under an adapter needs embed_tokens and lm_head trainable, as Axolotl requires.
     *
     * @param lora the adapter of a fresh training run (empty for full fine-tuning or a continued adapter)
     * @throws IllegalArgumentException naming the config, the tokenizer and the model with both sizes
     */
    public Optional<VocabGrowth> plan(int tokenizerSize, Path tokenizerDir, int modelRows, Path modelDir,
            Optional<LoraSettings> lora, long seed) {
        if (tokenizerSize > modelRows && !asksGrowth()) {
            throw new IllegalArgumentException(source + ": the tokenizer of " + tokenizerDir + " has " + tokenizerSize
                    + " tokens but the model " + modelDir + " has " + modelRows + " embedding rows (config.json vocab_size);"
                    + " token ids past " + (modelRows - 1) + " would index past the embedding. Use the model's own"
                    + " tokenizer, or grow the model with tokens: / special_tokens: (Axolotl's keys) and"
                    + " lora_modules_to_save: [embed_tokens, lm_head]");
        }
        int rows = embeddingsLen(tokenizerSize);
        if (rows <= modelRows) {
            return Optional.empty();
        }
        if (lora.isPresent() && !(lora.get().saves("model.embed_tokens") && lora.get().saves("lm_head"))) {
            throw new IllegalArgumentException(source + ": the vocabulary grows from " + modelRows + " to " + rows
                    + " rows (tokenizer " + tokenizerDir + " has " + tokenizerSize + " tokens): the new rows must train,"
                    + " so set lora_modules_to_save: [embed_tokens, lm_head] (as Axolotl requires when adding tokens"
                    + " with an adapter)");
        }
        return Optional.of(new VocabGrowth(rows, meanResizing, initializerRange(modelDir), seed));
    }

    /**
     * Copies the edited tokenizer's files into {@code dir} (the exported adapter or model), so that the output loads
     * with {@code AutoTokenizer.from_pretrained(dir)}. Nothing when the config does not edit the tokenizer.
     */
    public void copyTokenizer(Path tokenizerDir, Path dir) throws IOException {
        if (edits.isEmpty()) {
            return;
        }
        for (String name : List.of(Tokenizer.TOKENIZER_JSON, Tokenizer.TOKENIZER_CONFIG_JSON,
                Tokenizer.SPECIAL_TOKENS_MAP_JSON, Tokenizer.CHAT_TEMPLATE_JINJA)) {
            Path from = tokenizerDir.resolve(name);
            if (Files.isRegularFile(from)) {
                Files.copy(from, dir.resolve(name), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }

    /** config.json's {@code vocab_size} of a model folder, or empty when it has none (not created yet). */
    public static Optional<Integer> modelVocabSize(Path modelDir) {
        JsonNode config = readConfig(modelDir);
        return config == null || !config.path("vocab_size").canConvertToInt() ? Optional.empty()
                : Optional.of(config.get("vocab_size").asInt());
    }

    /** config.json's {@code initializer_range}, else transformers' default 0.02. */
    public static double initializerRange(Path modelDir) {
        JsonNode config = readConfig(modelDir);
        return config != null && config.path("initializer_range").isNumber()
                ? config.get("initializer_range").asDouble() : 0.02;
    }

    private static JsonNode readConfig(Path modelDir) {
        Path file = modelDir.resolve("config.json");
        if (!Files.isRegularFile(file)) {
            return null;
        }
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot read: " + e.getMessage(), e);
        }
    }
}
