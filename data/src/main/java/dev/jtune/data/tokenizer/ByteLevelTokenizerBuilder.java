package dev.jtune.data.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * Writes a small byte-level BPE tokenizer as a Hugging Face tokenizer directory: {@code tokenizer.json},
 * {@code tokenizer_config.json} and {@code special_tokens_map.json}, loadable by {@link Tokenizer} (DJL's
 * tokenizers), the Rust/Python {@code tokenizers} library and {@code transformers}'
 * {@code AutoTokenizer.from_pretrained} / {@code PreTrainedTokenizerFast}.
 *
 * <p>The layout is GPT-2/Llama-3's byte level, with Llama's special tokens: ids 0, 1, 2 are {@code <s>},
 * {@code </s>}, {@code <pad>} (all special), ids 3..258 the 256 bytes (byte {@code b} is id {@code 3 + b},
 * written in GPT-2's bytes-to-unicode alphabet), then one token per learned merge. The pre-tokenizer and
 * decoder are ByteLevel (no prefix space, GPT-2 regex), so any text round-trips exactly. The post-processor
 * puts {@code <s>} before each sequence and appends no EOS, as Llama does.
 *
 * <p>Output is deterministic: the same text and sizes give byte-identical files. Each file is written to a
 * temporary file in the directory and renamed into place.
 */
public final class ByteLevelTokenizerBuilder {
    public static final String BOS_TOKEN = "<s>";
    public static final String EOS_TOKEN = "</s>";
    public static final String PAD_TOKEN = "<pad>";
    public static final int BOS_ID = 0;
    public static final int EOS_ID = 1;
    public static final int PAD_ID = 2;
    /** Byte {@code b} has id {@code FIRST_BYTE_ID + b}. */
    public static final int FIRST_BYTE_ID = 3;
    /** The special tokens and the 256 bytes: the smallest vocabulary, with no merges. */
    public static final int MIN_VOCAB_SIZE = FIRST_BYTE_ID + 256;
    public static final int DEFAULT_VOCAB_SIZE = 512;
    public static final int DEFAULT_MODEL_MAX_LENGTH = 2048;
    /** The bundled English training text of {@link #writeDefault}, a classpath resource beside this class. */
    public static final String DEFAULT_CORPUS_RESOURCE = "tiny-corpus.txt";

    private static final List<String> SPECIAL_TOKENS = List.of(BOS_TOKEN, EOS_TOKEN, PAD_TOKEN);
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final ObjectWriter WRITER;

    static {
        DefaultIndenter indenter = new DefaultIndenter("  ", "\n");
        DefaultPrettyPrinter printer = new DefaultPrettyPrinter(
                        Separators.createDefaultInstance().withObjectFieldValueSpacing(Separators.Spacing.AFTER))
                .withObjectIndenter(indenter)
                .withArrayIndenter(indenter);
        WRITER = new ObjectMapper().writer(printer);
    }

    private ByteLevelTokenizerBuilder() {}

    /**
     * Writes the default tiny tokenizer: {@value #DEFAULT_VOCAB_SIZE} tokens trained on the bundled
     * {@value #DEFAULT_CORPUS_RESOURCE}, {@code model_max_length} {@value #DEFAULT_MODEL_MAX_LENGTH}.
     * Creates {@code dir} if needed; always gives the same bytes.
     */
    public static void writeDefault(Path dir) {
        write(dir, defaultCorpus(), DEFAULT_VOCAB_SIZE, DEFAULT_MODEL_MAX_LENGTH);
    }

    /** {@link #write(Path, String, int, int)} with {@code model_max_length} {@value #DEFAULT_MODEL_MAX_LENGTH}. */
    public static void write(Path dir, String trainingText, int vocabSize) {
        write(dir, trainingText, vocabSize, DEFAULT_MODEL_MAX_LENGTH);
    }

    /**
     * Trains a byte-level BPE on {@code trainingText} and writes it to {@code dir} (created if needed).
     *
     * @param vocabSize the largest vocabulary wanted, special tokens and bytes included (at least
     *     {@value #MIN_VOCAB_SIZE}); it is smaller when the text runs out of pairs that occur twice
     * @param modelMaxLength {@code model_max_length} of tokenizer_config.json
     * @throws TokenizerException if a file cannot be written
     */
    public static void write(Path dir, String trainingText, int vocabSize, int modelMaxLength) {
        Objects.requireNonNull(dir, "dir");
        Objects.requireNonNull(trainingText, "trainingText");
        if (vocabSize < MIN_VOCAB_SIZE) {
            throw new IllegalArgumentException("vocabSize must be at least " + MIN_VOCAB_SIZE + " (3 special tokens and 256 bytes), got " + vocabSize);
        }
        if (modelMaxLength <= 0) {
            throw new IllegalArgumentException("modelMaxLength must be positive, got " + modelMaxLength);
        }
        ByteLevelBpeTrainer.Result bpe =
                ByteLevelBpeTrainer.train(trainingText, vocabSize - MIN_VOCAB_SIZE, Set.copyOf(SPECIAL_TOKENS));
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new TokenizerException(dir + ": cannot create directory: " + e, e);
        }
        writeAtomically(dir.resolve(Tokenizer.TOKENIZER_JSON), tokenizerJson(bpe));
        writeAtomically(dir.resolve(Tokenizer.TOKENIZER_CONFIG_JSON), tokenizerConfigJson(modelMaxLength));
        writeAtomically(dir.resolve(Tokenizer.SPECIAL_TOKENS_MAP_JSON), specialTokensMapJson());
    }

    /** The bundled training text of {@link #writeDefault}. */
    public static String defaultCorpus() {
        try (InputStream in = ByteLevelTokenizerBuilder.class.getResourceAsStream(DEFAULT_CORPUS_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("classpath resource " + DEFAULT_CORPUS_RESOURCE + " is missing from jtune-data");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    // ----------------------------------------------------------------------------------------------

    static ObjectNode tokenizerJson(ByteLevelBpeTrainer.Result bpe) {
        ObjectNode root = NODES.objectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (int id = 0; id < SPECIAL_TOKENS.size(); id++) {
            AddedTokens.append(added, id, SPECIAL_TOKENS.get(id), true);
        }
        root.putNull("normalizer");
        root.set("pre_tokenizer", byteLevel());
        ObjectNode post = root.putObject("post_processor");
        post.put("type", "TemplateProcessing");
        ArrayNode single = post.putArray("single");
        single.add(templatePiece("SpecialToken", BOS_TOKEN, 0));
        single.add(templatePiece("Sequence", "A", 0));
        ArrayNode pair = post.putArray("pair");
        pair.add(templatePiece("SpecialToken", BOS_TOKEN, 0));
        pair.add(templatePiece("Sequence", "A", 0));
        pair.add(templatePiece("SpecialToken", BOS_TOKEN, 1));
        pair.add(templatePiece("Sequence", "B", 1));
        ObjectNode bos = post.putObject("special_tokens").putObject(BOS_TOKEN);
        bos.put("id", BOS_TOKEN);
        bos.putArray("ids").add(BOS_ID);
        bos.putArray("tokens").add(BOS_TOKEN);
        root.set("decoder", byteLevel());

        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        ObjectNode vocab = model.putObject("vocab");
        int id = 0;
        for (String special : SPECIAL_TOKENS) {
            vocab.put(special, id++);
        }
        for (int b = 0; b < 256; b++) {
            vocab.put(String.valueOf(ByteLevelBpeTrainer.BYTE_CHARS[b]), id++);
        }
        for (String token : bpe.newTokens()) {
            vocab.put(token, id++);
        }
        ArrayNode merges = model.putArray("merges");
        for (ByteLevelBpeTrainer.Merge merge : bpe.merges()) {
            // Byte-level symbols never contain a space, so the classic "left right" form is unambiguous
            // and every tokenizers version reads it.
            merges.add(merge.left() + " " + merge.right());
        }
        return root;
    }

    private static ObjectNode byteLevel() {
        ObjectNode n = NODES.objectNode();
        n.put("type", "ByteLevel");
        n.put("add_prefix_space", false);
        n.put("trim_offsets", true);
        n.put("use_regex", true);
        return n;
    }

    private static ObjectNode templatePiece(String kind, String id, int typeId) {
        ObjectNode piece = NODES.objectNode();
        ObjectNode body = piece.putObject(kind);
        body.put("id", id);
        body.put("type_id", typeId);
        return piece;
    }

    /** As transformers' save_pretrained writes it: sorted keys, AddedToken fields in alphabetical order. */
    static ObjectNode tokenizerConfigJson(int modelMaxLength) {
        ObjectNode root = NODES.objectNode();
        root.put("add_bos_token", true);
        root.put("add_eos_token", false);
        ObjectNode decoder = root.putObject("added_tokens_decoder");
        for (int id = 0; id < SPECIAL_TOKENS.size(); id++) {
            ObjectNode t = addedToken(SPECIAL_TOKENS.get(id));
            t.put("special", true);
            decoder.set(Integer.toString(id), t);
        }
        root.put("bos_token", BOS_TOKEN);
        root.put("clean_up_tokenization_spaces", false);
        root.put("eos_token", EOS_TOKEN);
        ArrayNode inputs = root.putArray("model_input_names");
        inputs.add("input_ids");
        inputs.add("attention_mask");
        root.put("model_max_length", modelMaxLength);
        root.put("pad_token", PAD_TOKEN);
        root.put("tokenizer_class", "PreTrainedTokenizerFast");
        return root;
    }

    static ObjectNode specialTokensMapJson() {
        ObjectNode root = NODES.objectNode();
        root.set("bos_token", addedToken(BOS_TOKEN));
        root.set("eos_token", addedToken(EOS_TOKEN));
        root.set("pad_token", addedToken(PAD_TOKEN));
        return root;
    }

    private static ObjectNode addedToken(String content) {
        ObjectNode t = NODES.objectNode();
        t.put("content", content);
        t.put("lstrip", false);
        t.put("normalized", false);
        t.put("rstrip", false);
        t.put("single_word", false);
        return t;
    }

    private static void writeAtomically(Path target, ObjectNode json) {
        byte[] bytes;
        try {
            bytes = (WRITER.writeValueAsString(json) + "\n").getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        Path dir = target.toAbsolutePath().getParent();
        Path tmp = null;
        try {
            tmp = Files.createTempFile(dir, "." + target.getFileName(), ".tmp");
            Files.write(tmp, bytes);
            try {
                // createTempFile makes it owner-only; a tokenizer is an ordinary, world-readable file.
                Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-r--r--"));
            } catch (UnsupportedOperationException e) {
                // not a POSIX file system
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            tmp = null;
        } catch (IOException e) {
            throw new TokenizerException(target + ": cannot write: " + e, e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // best effort
                }
            }
        }
    }
}
