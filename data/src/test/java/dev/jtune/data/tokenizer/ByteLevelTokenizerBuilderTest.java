package dev.jtune.data.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ByteLevelTokenizerBuilderTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> FILES =
            List.of(Tokenizer.TOKENIZER_JSON, Tokenizer.TOKENIZER_CONFIG_JSON, Tokenizer.SPECIAL_TOKENS_MAP_JSON);

    /** Text that is not in the training corpus: plain English prose. */
    static final String ENGLISH = "The weather was cold and the river was quiet. She opened the window, looked at the "
            + "hills, and decided that today would be a good day to walk to the village and buy some bread.";

    @TempDir
    static Path shared;

    static Tokenizer tiny;

    @BeforeAll
    static void writeDefault() {
        ByteLevelTokenizerBuilder.writeDefault(shared.resolve("tiny"));
        tiny = Tokenizer.load(shared.resolve("tiny"));
    }

    @AfterAll
    static void close() {
        tiny.close();
    }

    @Test
    void roundTripsArbitraryText() {
        List<String> texts = new ArrayList<>(List.of(
                "Hello world",
                "",
                " ",
                "  two leading spaces and trailing   ",
                "tabs\tand\nnewlines\r\nand\u000bvertical\ftabs",
                "Ünïcödé façade naïve résumé Øresund ß",
                "日本語のテキスト、中文文本，한국어 텍스트",
                "Emoji: 😀🎉👩‍👩‍👧‍👦 🇯🇵 ❤️ and a lone ZWJ \u200d",
                "Math: ∑_{i=1}^{n} x² ≤ ∞ ± √2 ≠ π",
                "code: if (a != b) { return x->y; } // <tag attr=\"1\">&amp;</tag>",
                "numbers 1234567890 3.14159 -42 1e-9 0x7fffffff",
                "NUL\u0000 and DEL\u007f and C1 \u0085 controls",
                "mixed-script: Ελληνικά, Русский, العربية, עברית, हिन्दी",
                "it's they're we've I'm you'll he'd"));
        // Random code points, all planes, seeded.
        Random random = new Random(20240601);
        for (int n = 0; n < 50; n++) {
            StringBuilder sb = new StringBuilder();
            int len = 1 + random.nextInt(40);
            while (sb.length() < len) {
                int cp = random.nextInt(4) == 0 ? random.nextInt(0x80) : random.nextInt(0x10FFFF + 1);
                if (Character.isSurrogate((char) cp) && cp <= 0xFFFF) {
                    continue;
                }
                sb.appendCodePoint(cp);
            }
            texts.add(sb.toString());
        }
        for (String text : texts) {
            int[] plain = tiny.encode(text, false);
            assertEquals(text, tiny.decode(plain, false), () -> "round trip of " + escape(text));
            int[] withBos = tiny.encode(text, true);
            assertEquals(text, tiny.decode(withBos, true), () -> "round trip (skip specials) of " + escape(text));
            assertEquals("<s>" + text, tiny.decode(withBos, false));
        }
    }

    @Test
    void addSpecialTokensPrependsBosOnly() {
        for (String text : List.of("Hello world", "", "The keeper climbed the steps.", "ends with eos word </s")) {
            int[] plain = tiny.encode(text, false);
            int[] special = tiny.encode(text, true);
            assertEquals(ByteLevelTokenizerBuilder.BOS_ID, special[0]);
            int[] expected = new int[plain.length + 1];
            expected[0] = ByteLevelTokenizerBuilder.BOS_ID;
            System.arraycopy(plain, 0, expected, 1, plain.length);
            assertArrayEquals(expected, special, text);
            for (int id : plain) {
                assertTrue(id > ByteLevelTokenizerBuilder.PAD_ID, "no special token without addSpecialTokens");
            }
        }
    }

    @Test
    void specialTokenIds() {
        assertEquals(OptionalInt.of(0), tiny.bosId());
        assertEquals(OptionalInt.of(1), tiny.eosId());
        assertEquals(OptionalInt.of(2), tiny.padId());
        assertEquals(List.of(1), tiny.eosIds());
        assertEquals(Optional.of("<s>"), tiny.bosToken());
        assertEquals(Optional.of("</s>"), tiny.eosToken());
        assertEquals(Optional.of("<pad>"), tiny.padToken());
        assertEquals("<s>", tiny.idToToken(0));
        assertEquals("</s>", tiny.idToToken(1));
        assertEquals("<pad>", tiny.idToToken(2));
        assertEquals(OptionalInt.of(1), tiny.tokenToId("</s>"));
        // Special tokens written in the text are matched as such, as in transformers.
        assertArrayEquals(new int[] {0, 1, 2}, tiny.encode("<s></s><pad>", false));
        assertEquals("x", tiny.decode(new int[] {0, 3 + 'x', 1, 2}, true));
        assertEquals(Optional.empty(), tiny.chatTemplate());
        assertEquals(2048L, tiny.modelMaxLength().orElseThrow());
    }

    @Test
    void bytesFollowTheSpecialTokensInByteOrder() {
        assertEquals("!", tiny.idToToken(3 + '!'));
        assertEquals("A", tiny.idToToken(3 + 'A'));
        assertEquals("Ġ", tiny.idToToken(3 + ' ')); // GPT-2 bytes_to_unicode
        assertEquals("Ċ", tiny.idToToken(3 + '\n'));
        assertEquals("Ā", tiny.idToToken(3));       // byte 0
        assertEquals("ÿ", tiny.idToToken(3 + 0xFF));
        assertEquals("ł", tiny.idToToken(3 + 0xA0)); // no-break space: not printable, 256 + 66
        assertEquals("Ń", tiny.idToToken(3 + 0xAD)); // soft hyphen: 256 + 67
        assertArrayEquals(new int[] {3 + 'q'}, tiny.encode("q", false));
        // é is C3 A9; the corpus is ASCII, so its bytes are never merged.
        assertArrayEquals(new int[] {3 + 0xC3, 3 + 0xA9}, tiny.encode("é", false));
        Set<String> byteTokens = new HashSet<>();
        for (int b = 0; b < 256; b++) {
            byteTokens.add(tiny.idToToken(3 + b));
        }
        assertEquals(256, byteTokens.size());
    }

    @Test
    void mergesCompressEnglish() {
        int bytes = ENGLISH.getBytes(StandardCharsets.UTF_8).length;
        int[] ids = tiny.encode(ENGLISH, false);
        assertTrue(ids.length < bytes * 0.6, "tokens " + ids.length + " vs bytes " + bytes);
        // Common words are single tokens.
        assertEquals(1, tiny.encode(" the", false).length);
        assertEquals(1, tiny.encode(" and", false).length);
        // Without merges, every byte is a token.
        Path bare = shared.resolve("bare");
        ByteLevelTokenizerBuilder.write(bare, ENGLISH, ByteLevelTokenizerBuilder.MIN_VOCAB_SIZE);
        try (Tokenizer t = Tokenizer.load(bare)) {
            assertEquals(259, t.vocabSize());
            assertEquals(bytes, t.encode(ENGLISH, false).length);
        }
    }

    @Test
    void idsStayBelowVocabSize() {
        assertEquals(ByteLevelTokenizerBuilder.DEFAULT_VOCAB_SIZE, tiny.vocabSize());
        Set<Integer> seen = new HashSet<>();
        String text = ByteLevelTokenizerBuilder.defaultCorpus() + ENGLISH + "😀 日本語 \u0000\u00ff";
        for (int id : tiny.encode(text, true)) {
            assertTrue(id >= 0 && id < tiny.vocabSize(), "id " + id);
            seen.add(id);
        }
        assertTrue(seen.stream().anyMatch(id -> id >= ByteLevelTokenizerBuilder.MIN_VOCAB_SIZE), "merged tokens are used");
        for (int id = 0; id < tiny.vocabSize(); id++) {
            String token = tiny.idToToken(id);
            assertEquals(OptionalInt.of(id), tiny.tokenToId(token), token);
        }
        assertThrows(IllegalArgumentException.class, () -> tiny.idToToken(tiny.vocabSize()));
        assertThrows(IllegalArgumentException.class, () -> tiny.decode(new int[] {5, 512}, false));
        assertThrows(IllegalArgumentException.class, () -> tiny.decode(new int[] {-1}, false));
    }

    @Test
    void longTextIsNeitherTruncatedNorPadded() {
        StringBuilder sb = new StringBuilder();
        Random random = new Random(7);
        String[] words = {"lighthouse", "keeper", "notebook", "ß", "日本", "😀", "42", "\n", "the", "and", "sea", "!"};
        while (sb.length() < 20_000) {
            sb.append(words[random.nextInt(words.length)]).append(random.nextBoolean() ? " " : "");
        }
        String text = sb.substring(0, 20_000);
        assertEquals(20_000, text.length());
        int[] ids = tiny.encode(text, true);
        assertTrue(ids.length > 4_000, "got " + ids.length + " tokens: truncated?");
        assertEquals(text, tiny.decode(ids, true));
        assertEquals(ids.length - 1, tiny.encode(text, false).length);
        for (int id : ids) {
            assertNotEquals(ByteLevelTokenizerBuilder.PAD_ID, id);
        }
        // Batches are not padded to their longest member either.
        List<int[]> batch = tiny.encodeBatch(List.of(text, "short", ""), true);
        assertArrayEquals(ids, batch.get(0));
        assertArrayEquals(tiny.encode("short", true), batch.get(1));
        assertArrayEquals(new int[] {0}, batch.get(2));
    }

    @Test
    void truncationAndPaddingInTheFileAreIgnored() throws IOException {
        Path dir = shared.resolve("truncating");
        ByteLevelTokenizerBuilder.writeDefault(dir);
        Path file = dir.resolve(Tokenizer.TOKENIZER_JSON);
        var root = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(file.toFile());
        root.set("truncation", JSON.readTree(
                "{\"direction\":\"Right\",\"max_length\":8,\"strategy\":\"LongestFirst\",\"stride\":0}"));
        root.set("padding", JSON.readTree("{\"strategy\":{\"Fixed\":64},\"direction\":\"Right\",\"pad_to_multiple_of\":null,"
                + "\"pad_id\":2,\"pad_type_id\":0,\"pad_token\":\"<pad>\"}"));
        Files.writeString(file, JSON.writeValueAsString(root));
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertArrayEquals(tiny.encode(ENGLISH, true), t.encode(ENGLISH, true));
            assertArrayEquals(new int[] {0, 3 + 'a'}, t.encode("a", true));
        }
    }

    @Test
    void writingIsDeterministic(@TempDir Path tmp) throws IOException {
        Path a = tmp.resolve("a");
        Path b = tmp.resolve("b");
        ByteLevelTokenizerBuilder.writeDefault(a);
        ByteLevelTokenizerBuilder.writeDefault(b);
        for (String name : FILES) {
            assertArrayEquals(Files.readAllBytes(a.resolve(name)), Files.readAllBytes(b.resolve(name)), name);
            assertArrayEquals(Files.readAllBytes(a.resolve(name)), Files.readAllBytes(shared.resolve("tiny").resolve(name)), name);
        }
        // Rewriting in place replaces the files with the same bytes and leaves no temporary files.
        byte[] before = Files.readAllBytes(a.resolve(Tokenizer.TOKENIZER_JSON));
        ByteLevelTokenizerBuilder.writeDefault(a);
        assertArrayEquals(before, Files.readAllBytes(a.resolve(Tokenizer.TOKENIZER_JSON)));
        try (Stream<Path> files = Files.list(a)) {
            assertEquals(Set.copyOf(FILES), files.map(p -> p.getFileName().toString()).collect(java.util.stream.Collectors.toSet()));
        }
        // Another text gives other merges.
        ByteLevelTokenizerBuilder.write(b, "abc abc abd abd abd xyz xyz", 300);
        assertFalse(java.util.Arrays.equals(before, Files.readAllBytes(b.resolve(Tokenizer.TOKENIZER_JSON))));
    }

    @Test
    void tokenizerJsonHasTheByteLevelLayout() throws IOException {
        JsonNode root = JSON.readTree(shared.resolve("tiny").resolve(Tokenizer.TOKENIZER_JSON).toFile());
        assertEquals("1.0", root.get("version").asText());
        assertTrue(root.get("truncation").isNull());
        assertTrue(root.get("padding").isNull());
        JsonNode model = root.get("model");
        assertEquals("BPE", model.get("type").asText());
        assertEquals(512, model.get("vocab").size());
        assertEquals(0, model.get("vocab").get("<s>").asInt());
        assertEquals(3 + 'a', model.get("vocab").get("a").asInt());
        JsonNode merges = model.get("merges");
        assertEquals(512 - 259, merges.size());
        for (JsonNode merge : merges) {
            String[] parts = merge.asText().split(" ");
            assertEquals(2, parts.length, merge.asText());
            assertTrue(model.get("vocab").has(parts[0] + parts[1]), merge.asText());
        }
        for (String part : List.of("pre_tokenizer", "decoder")) {
            assertEquals("ByteLevel", root.get(part).get("type").asText());
            assertFalse(root.get(part).get("add_prefix_space").asBoolean());
            assertTrue(root.get(part).get("use_regex").asBoolean());
        }
        JsonNode post = root.get("post_processor");
        assertEquals("TemplateProcessing", post.get("type").asText());
        assertEquals("<s>", post.at("/single/0/SpecialToken/id").asText());
        assertEquals("A", post.at("/single/1/Sequence/id").asText());
        assertEquals(2, post.get("single").size());
        assertEquals(4, post.get("pair").size());
        assertEquals(0, post.at("/special_tokens/<s>/ids/0").asInt());
        JsonNode added = root.get("added_tokens");
        assertEquals(3, added.size());
        for (int id = 0; id < 3; id++) {
            assertEquals(id, added.get(id).get("id").asInt());
            assertTrue(added.get(id).get("special").asBoolean());
            assertFalse(added.get(id).get("normalized").asBoolean());
        }

        JsonNode config = JSON.readTree(shared.resolve("tiny").resolve(Tokenizer.TOKENIZER_CONFIG_JSON).toFile());
        assertEquals("<s>", config.get("bos_token").asText());
        assertEquals("</s>", config.get("eos_token").asText());
        assertEquals("<pad>", config.get("pad_token").asText());
        assertTrue(config.get("add_bos_token").asBoolean());
        assertFalse(config.get("add_eos_token").asBoolean());
        assertFalse(config.get("clean_up_tokenization_spaces").asBoolean());
        assertEquals("PreTrainedTokenizerFast", config.get("tokenizer_class").asText());
        assertEquals(2048, config.get("model_max_length").asInt());
        assertEquals("</s>", config.at("/added_tokens_decoder/1/content").asText());
        assertTrue(config.at("/added_tokens_decoder/2/special").asBoolean());

        JsonNode map = JSON.readTree(shared.resolve("tiny").resolve(Tokenizer.SPECIAL_TOKENS_MAP_JSON).toFile());
        assertEquals("<pad>", map.at("/pad_token/content").asText());

        String text = Files.readString(shared.resolve("tiny").resolve(Tokenizer.TOKENIZER_JSON));
        assertFalse(text.contains("\r"), "\\n line ends on every platform");
        assertTrue(text.endsWith("}\n"));
    }

    @Test
    void vocabSizeAndModelMaxLengthAreParameters(@TempDir Path tmp) {
        ByteLevelTokenizerBuilder.write(tmp, ByteLevelTokenizerBuilder.defaultCorpus(), 300, 128);
        try (Tokenizer t = Tokenizer.load(tmp)) {
            assertEquals(300, t.vocabSize());
            assertEquals(128L, t.modelMaxLength().orElseThrow());
            assertEquals(ENGLISH, t.decode(t.encode(ENGLISH, true), true));
        }
        // A text with few repeated pairs gives a smaller vocabulary than asked for.
        ByteLevelTokenizerBuilder.write(tmp, "ab ab ab", 1000);
        try (Tokenizer t = Tokenizer.load(tmp)) {
            assertTrue(t.vocabSize() > 259 && t.vocabSize() < 270, "vocab " + t.vocabSize());
        }
        assertThrows(IllegalArgumentException.class, () -> ByteLevelTokenizerBuilder.write(tmp, "x", 258));
        assertThrows(IllegalArgumentException.class, () -> ByteLevelTokenizerBuilder.write(tmp, "x", 300, 0));
    }

    @Test
    void trainerNeverSpellsASpecialToken() {
        String text = "<s> hello </s> <s> hello </s> <pad> <pad> ".repeat(50);
        ByteLevelBpeTrainer.Result result = ByteLevelBpeTrainer.train(text, 100, Set.of("<s>", "</s>", "<pad>"));
        assertFalse(result.newTokens().isEmpty());
        for (String token : result.newTokens()) {
            assertFalse(Set.of("<s>", "</s>", "<pad>").contains(token), token);
        }
        assertEquals(result, ByteLevelBpeTrainer.train(text, 100, Set.of("<s>", "</s>", "<pad>")));
    }

    @Test
    void trainerMergesTheMostFrequentPairFirst() {
        // Words: "aaab" x1, "Ġaaab" x2, "Ġcd" x2. (a,a) occurs 6 times and goes first; then (aa,a) and
        // (a,b) tie at 3 and the left symbol "a" sorts before "aa"; then (aa,ab) at 3 beats the 2s.
        ByteLevelBpeTrainer.Result result = ByteLevelBpeTrainer.train("aaab aaab aaab cd cd", 3, Set.of());
        assertEquals(List.of("aa", "ab", "aaab"), result.newTokens());
        assertEquals(List.of(new ByteLevelBpeTrainer.Merge("a", "a"), new ByteLevelBpeTrainer.Merge("a", "b"),
                new ByteLevelBpeTrainer.Merge("aa", "ab")), result.merges());
    }

    private static String escape(String s) {
        StringBuilder sb = new StringBuilder();
        s.codePoints().forEach(cp -> sb.append(cp < 0x20 || cp > 0x7e ? String.format("\\u{%x}", cp) : Character.toString(cp)));
        return sb.toString();
    }
}
