package dev.jtune.data.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A Mistral {@code tekken.json} (mistral-common's {@code Tekkenizer}): tiktoken-style byte-level BPE whose ranks are
 * base64 byte strings, a pre-tokenization regex ({@code config.pattern}), and {@code default_num_special_tokens}
 * control tokens at ids {@code [0, n)} ahead of the BPE ranks (BPE rank r is id r + n). The vocabulary is cut to
 * {@code default_vocab_size - n} ranks, as mistral-common cuts it. Files of version v7 and older without a
 * {@code special_tokens} list get mistral-common's deprecated default list; ids without a named token are
 * {@code <SPECIAL_i>} fillers, as there.
 *
 * <p>{@link #tokenizerJson} writes the equivalent Hugging Face {@code tokenizer.json} (the conversion transformers
 * makes of a tiktoken vocabulary: merges from every split of every token into two tokens, ordered by the merged
 * token's rank; {@code ignore_merges} as tiktoken looks a whole piece up first), so the tokenizers library gives
 * the ids mistral-common's tiktoken gives.
 */
public final class Tekken {
    public static final String FILE = "tekken.json";

    /** mistral-common's {@code Tekkenizer.DEPRECATED_SPECIAL_TOKENS}, for files of version v7 and older without a list. */
    static final List<String> DEPRECATED_SPECIALS = List.of("<unk>", "<s>", "</s>", "[INST]", "[/INST]",
            "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]",
            "<pad>", "[IMG_BREAK]", "[IMG_END]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]",
            "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]");
    private static final List<String> VERSIONS = List.of("v1", "v2", "v3", "v7", "v11", "v13", "v15");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final String version;
    private final String pattern;
    private final List<String> specials;
    private final List<byte[]> ranks;

    private Tekken(Path file, String version, String pattern, List<String> specials, List<byte[]> ranks) {
        this.file = file;
        this.version = version;
        this.pattern = pattern;
        this.specials = List.copyOf(specials);
        this.ranks = List.copyOf(ranks);
    }

    /** Whether {@code dir} holds a {@code tekken.json}. */
    public static boolean isIn(Path dir) {
        return Files.isRegularFile(dir.resolve(FILE));
    }

    /**
     * Reads {@code file}.
     *
     * @throws TokenizerException naming the file and the field at fault
     */
    public static Tekken read(Path file) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot read: " + e.getMessage(), e);
        }
        JsonNode config = root.path("config");
        String version = config.path("version").asText("");
        if (!VERSIONS.contains(version)) {
            throw new TokenizerException(file + ": config.version is '" + version + "', expected one of " + VERSIONS);
        }
        String pattern = need(file, config, "pattern").asText();
        int vocabSize = need(file, config, "default_vocab_size").asInt();
        int numSpecial = need(file, config, "default_num_special_tokens").asInt();
        JsonNode vocab = root.path("vocab");
        if (!vocab.isArray()) {
            throw new TokenizerException(file + ": 'vocab' missing (expected an array of {rank, token_bytes, token_str})");
        }
        int inner = vocabSize - numSpecial;
        if (inner < 256 || inner > vocab.size()) {
            throw new TokenizerException(file + ": config.default_vocab_size " + vocabSize + " less "
                    + "default_num_special_tokens " + numSpecial + " must be within [256, " + vocab.size() + "] (the vocab's length)");
        }
        List<byte[]> ranks = new ArrayList<>(inner);
        Base64.Decoder b64 = Base64.getDecoder();
        for (int i = 0; i < inner; i++) {
            JsonNode t = vocab.get(i);
            if (t.path("rank").asInt(-1) != i) {
                throw new TokenizerException(file + ": vocab[" + i + "].rank is " + t.path("rank") + ", expected " + i);
            }
            byte[] bytes = b64.decode(t.path("token_bytes").asText());
            if (i < 256 && (bytes.length != 1 || (bytes[0] & 0xff) != i)) {
                throw new TokenizerException(file + ": vocab[" + i + "] is not the single byte " + i);
            }
            ranks.add(bytes);
        }
        List<String> specials = new ArrayList<>();
        JsonNode list = root.get("special_tokens");
        if (list == null || list.isNull()) {
            if (VERSIONS.indexOf(version) > VERSIONS.indexOf("v7")) {
                throw new TokenizerException(file + ": 'special_tokens' missing; tekken files after v7 list them");
            }
            specials.addAll(DEPRECATED_SPECIALS);
        } else {
            for (int i = 0; i < list.size(); i++) {
                JsonNode s = list.get(i);
                if (s.path("rank").asInt(-1) != i) {
                    throw new TokenizerException(file + ": special_tokens[" + i + "].rank is " + s.path("rank") + ", expected " + i);
                }
                specials.add(s.path("token_str").asText());
            }
        }
        if (specials.size() > numSpecial) {
            throw new TokenizerException(file + ": " + specials.size() + " special tokens, more than default_num_special_tokens "
                    + numSpecial);
        }
        for (int i = specials.size(); i < numSpecial; i++) {
            specials.add("<SPECIAL_" + i + ">");
        }
        return new Tekken(file, version, pattern, specials, ranks);
    }

    private static JsonNode need(Path file, JsonNode config, String key) {
        JsonNode v = config.get(key);
        if (v == null || v.isNull()) {
            throw new TokenizerException(file + ": config." + key + " missing");
        }
        return v;
    }

    public Path file() {
        return file;
    }

    /** The instruct format version the file declares ({@code v3}, {@code v7}, {@code v11}, {@code v13}, ...). */
    public String version() {
        return version;
    }

    public int numSpecialTokens() {
        return specials.size();
    }

    /** Special tokens and BPE ranks together: the model's vocabulary size. */
    public int vocabSize() {
        return specials.size() + ranks.size();
    }

    /** The id of a special token ({@code [INST]}), if the file has it. */
    public Optional<Integer> specialId(String token) {
        int i = specials.indexOf(token);
        return i < 0 ? Optional.empty() : Optional.of(i);
    }

    /**
     * The Hugging Face tokenizer.json of this vocabulary; with {@code specialTokens} the control tokens are added
     * tokens (matched in text, as a tokenizer.json of a Mistral model has them), without they are left out, so that
     * text is only ever BPE-encoded, as mistral-common encodes message text.
     */
    public String tokenizerJson(boolean specialTokens) {
        // a run loads the folder's tokenizer several times (checks, preparation, training): convert a file once
        String key = file.toAbsolutePath() + "|" + specialTokens + "|" + ranks.size() + "|" + specials.size() + "|"
                + modified(file);
        synchronized (CONVERTED) {
            String cached = CONVERTED.get(key);
            if (cached != null) {
                return cached;
            }
        }
        String json = convert(specialTokens);
        synchronized (CONVERTED) {
            CONVERTED.put(key, json);
        }
        return json;
    }

    /** The last few conversions, by file, flag and modification time. */
    private static final Map<String, String> CONVERTED = new java.util.LinkedHashMap<>(4, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, String> eldest) {
            return size() > 4;
        }
    };

    private static long modified(Path file) {
        try {
            return Files.getLastModifiedTime(file).toMillis();
        } catch (IOException e) {
            return -1;
        }
    }

    private String convert(boolean specialTokens) {
        String[] unicode = byteToUnicode();
        Map<String, Integer> vocab = new HashMap<>(ranks.size() * 2);
        List<String> pieces = new ArrayList<>(ranks.size());
        for (int r = 0; r < ranks.size(); r++) {
            StringBuilder sb = new StringBuilder();
            for (byte b : ranks.get(r)) {
                sb.append(unicode[b & 0xff]);
            }
            String piece = sb.toString();
            pieces.add(piece);
            vocab.put(piece, r);
        }
        // transformers' TikTokenConverter.generate_merges: every split of a token into two tokens, by the token's rank
        record Merge(String left, String right, int rank, int leftRank, int rightRank) {}
        List<Merge> merges = new ArrayList<>();
        for (int r = 256; r < pieces.size(); r++) {
            String p = pieces.get(r);
            for (int i = p.offsetByCodePoints(0, 1); i < p.length(); i = p.offsetByCodePoints(i, 1)) {
                Integer a = vocab.get(p.substring(0, i));
                Integer b = vocab.get(p.substring(i));
                if (a != null && b != null) {
                    merges.add(new Merge(p.substring(0, i), p.substring(i), r, a, b));
                }
            }
        }
        merges.sort(Comparator.comparingInt(Merge::rank).thenComparingInt(Merge::leftRank).thenComparingInt(Merge::rightRank));
        int n = specials.size();
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        if (specialTokens) {
            for (int i = 0; i < n; i++) {
                AddedTokens.append(added, i, specials.get(i), true);
            }
        }
        root.putNull("normalizer");
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "Sequence");
        ArrayNode seq = pre.putArray("pretokenizers");
        ObjectNode split = seq.addObject();
        split.put("type", "Split");
        split.putObject("pattern").put("Regex", pattern);
        split.put("behavior", "Isolated");
        split.put("invert", false);
        ObjectNode bl = seq.addObject();
        bl.put("type", "ByteLevel");
        bl.put("add_prefix_space", false);
        bl.put("trim_offsets", true);
        bl.put("use_regex", false);
        root.putNull("post_processor");
        ObjectNode dec = root.putObject("decoder");
        dec.put("type", "ByteLevel");
        dec.put("add_prefix_space", true);
        dec.put("trim_offsets", true);
        dec.put("use_regex", true);
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", true);
        // The control tokens are in the model's vocabulary too: the tokenizers library gives an added token that the
        // model lacks a new id after the model's. No rank of Mistral's vocabularies spells one ("<s>" as bytes).
        ObjectNode v = model.putObject("vocab");
        if (specialTokens) {
            for (int i = 0; i < n; i++) {
                if (vocab.containsKey(specials.get(i))) {
                    throw new TokenizerException(file + ": special token " + specials.get(i) + " is also BPE rank "
                            + vocab.get(specials.get(i)) + "; jtune cannot build one tokenizer.json for both");
                }
                v.put(specials.get(i), i);
            }
        }
        for (int r = 0; r < pieces.size(); r++) {
            v.put(pieces.get(r), r + n);
        }
        ArrayNode m = model.putArray("merges");
        for (Merge merge : merges) {
            m.addArray().add(merge.left()).add(merge.right());
        }
        try {
            return JSON.writeValueAsString(root);
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot convert: " + e.getMessage(), e);
        }
    }

    /** GPT-2's byte-to-unicode alphabet, as the tokenizers library's ByteLevel uses it. */
    static String[] byteToUnicode() {
        String[] out = new String[256];
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            out[b] = new String(Character.toChars(printable ? b : 256 + extra++));
        }
        return out;
    }
}
