package dev.jtune.data.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerTest {
    @TempDir
    Path dir;

    @BeforeEach
    void writeTiny() {
        ByteLevelTokenizerBuilder.writeDefault(dir);
    }

    private void config(String json) throws IOException {
        Files.writeString(dir.resolve(Tokenizer.TOKENIZER_CONFIG_JSON), json);
    }

    private void generationConfig(String json) throws IOException {
        Files.writeString(dir.resolve(Tokenizer.GENERATION_CONFIG_JSON), json);
    }

    private TokenizerException loadFails() {
        return assertThrows(TokenizerException.class, () -> Tokenizer.load(dir).close());
    }

    @Test
    void specialTokensMayBeContentObjects() throws IOException {
        config("""
                {"bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
                 "eos_token": {"content": "</s>", "special": true},
                 "pad_token": null}
                """);
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertEquals(OptionalInt.of(0), t.bosId());
            assertEquals(Optional.of("</s>"), t.eosToken());
            assertEquals(OptionalInt.of(1), t.eosId());
            // pad_token null is "no pad token", even though special_tokens_map.json names one.
            assertEquals(OptionalInt.empty(), t.padId());
            assertEquals(Optional.empty(), t.padToken());
            assertEquals(OptionalLong.empty(), t.modelMaxLength());
        }
    }

    @Test
    void eosIdsMergeGenerationConfigIntOrList() throws IOException {
        generationConfig("{\"bos_token_id\": 0, \"eos_token_id\": [2, 1, 300]}");
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertEquals(OptionalInt.of(1), t.eosId());
            assertEquals(List.of(1, 2, 300), t.eosIds());
        }
        generationConfig("{\"eos_token_id\": 7}");
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertEquals(List.of(1, 7), t.eosIds());
        }
        generationConfig("{\"eos_token_id\": null}");
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertEquals(List.of(1), t.eosIds());
        }
    }

    @Test
    void withoutTokenizerConfigTheMapAndGenerationConfigAreUsed() throws IOException {
        Files.delete(dir.resolve(Tokenizer.TOKENIZER_CONFIG_JSON));
        try (Tokenizer t = Tokenizer.load(dir)) {
            // special_tokens_map.json still names all three.
            assertEquals(OptionalInt.of(0), t.bosId());
            assertEquals(OptionalInt.of(2), t.padId());
            assertEquals(OptionalLong.empty(), t.modelMaxLength());
        }
        Files.delete(dir.resolve(Tokenizer.SPECIAL_TOKENS_MAP_JSON));
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertEquals(OptionalInt.empty(), t.bosId());
            assertEquals(OptionalInt.empty(), t.eosId());
            assertEquals(List.of(), t.eosIds());
            assertEquals(Optional.empty(), t.bosToken());
            // The post-processor still adds <s>: it lives in tokenizer.json.
            assertEquals(0, t.encode("hi", true)[0]);
        }
        generationConfig("{\"bos_token_id\": 0, \"eos_token_id\": [1, 2], \"pad_token_id\": 2}");
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertEquals(OptionalInt.of(0), t.bosId());
            assertEquals(Optional.of("<s>"), t.bosToken());
            assertEquals(OptionalInt.of(1), t.eosId());
            assertEquals(List.of(1, 2), t.eosIds());
            assertEquals(Optional.of("<pad>"), t.padToken());
        }
    }

    @Test
    void chatTemplateStringListOrJinjaFile() throws IOException {
        config("{\"eos_token\": \"</s>\", \"chat_template\": \"{{ messages }}\"}");
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertEquals(Optional.of("{{ messages }}"), t.chatTemplate());
        }
        config("""
                {"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}
                """);
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertEquals(Optional.of("D"), t.chatTemplate());
        }
        config("""
                {"chat_template": [{"name": "rag", "template": "R"}, {"name": "tool_use", "template": "T"}]}
                """);
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertEquals(Optional.of("R"), t.chatTemplate());
        }
        config("{}");
        Files.writeString(dir.resolve(Tokenizer.CHAT_TEMPLATE_JINJA), "{% for m in messages %}{{ m.content }}{% endfor %}");
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertEquals(Optional.of("{% for m in messages %}{{ m.content }}{% endfor %}"), t.chatTemplate());
        }
    }

    @Test
    void missingTokenizerJsonNamesTheFile() throws IOException {
        Files.delete(dir.resolve(Tokenizer.TOKENIZER_JSON));
        TokenizerException e = loadFails();
        assertTrue(e.getMessage().contains(dir.resolve("tokenizer.json").toString()), e.getMessage());
        assertTrue(e.getMessage().contains("missing"), e.getMessage());

        TokenizerException notDir = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir.resolve("nope")));
        assertTrue(notDir.getMessage().contains("nope") && notDir.getMessage().contains("not a directory"), notDir.getMessage());
    }

    @Test
    void malformedTokenizerJsonNamesTheFileAndPlace() throws IOException {
        Files.writeString(dir.resolve(Tokenizer.TOKENIZER_JSON), "{\n  \"version\": \"1.0\",\n  \"model\": {\"vocab\": {\"a\": 0,}}\n}");
        TokenizerException e = loadFails();
        assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
        assertTrue(e.getMessage().contains("malformed JSON"), e.getMessage());
        assertTrue(e.getMessage().contains("line 3"), e.getMessage());

        Files.writeString(dir.resolve(Tokenizer.TOKENIZER_JSON), "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\", \"vo");
        e = loadFails();
        assertTrue(e.getMessage().contains("tokenizer.json") && e.getMessage().contains("malformed JSON"), e.getMessage());

        Files.writeString(dir.resolve(Tokenizer.TOKENIZER_JSON), "[1, 2]");
        e = loadFails();
        assertTrue(e.getMessage().contains("tokenizer.json") && e.getMessage().contains("expected a JSON object"), e.getMessage());

        Files.writeString(dir.resolve(Tokenizer.TOKENIZER_JSON), "{\"version\": \"1.0\"}");
        e = loadFails();
        assertTrue(e.getMessage().contains("tokenizer.json") && e.getMessage().contains("no model.vocab"), e.getMessage());
    }

    @Test
    void tokenizerJsonRejectedByTheLibraryNamesTheFile() throws IOException {
        Path file = dir.resolve(Tokenizer.TOKENIZER_JSON);
        Files.writeString(file, Files.readString(file).replace("\"type\": \"BPE\"", "\"type\": \"NoSuchModel\""));
        TokenizerException e = loadFails();
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("rejected by the Hugging Face tokenizers library"), e.getMessage());
    }

    @Test
    void malformedSideFilesNameTheFile() throws IOException {
        config("{\"bos_token\": \"<s>\",");
        TokenizerException e = loadFails();
        assertTrue(e.getMessage().contains("tokenizer_config.json") && e.getMessage().contains("malformed JSON"), e.getMessage());

        config("{\"eos_token\": \"<|not_there|>\"}");
        e = loadFails();
        assertTrue(e.getMessage().contains("tokenizer_config.json") && e.getMessage().contains("<|not_there|>"), e.getMessage());

        config("{\"eos_token\": 5}");
        e = loadFails();
        assertTrue(e.getMessage().contains("tokenizer_config.json") && e.getMessage().contains("eos_token"), e.getMessage());

        config("{\"chat_template\": 3}");
        e = loadFails();
        assertTrue(e.getMessage().contains("tokenizer_config.json") && e.getMessage().contains("chat_template"), e.getMessage());

        writeTiny();
        generationConfig("{\"eos_token_id\": [1, 99999]}");
        e = loadFails();
        assertTrue(e.getMessage().contains("generation_config.json") && e.getMessage().contains("99999"), e.getMessage());

        generationConfig("{\"eos_token_id\": \"</s>\"}");
        e = loadFails();
        assertTrue(e.getMessage().contains("generation_config.json") && e.getMessage().contains("eos_token_id"), e.getMessage());

        generationConfig("not json");
        e = loadFails();
        assertTrue(e.getMessage().contains("generation_config.json") && e.getMessage().contains("malformed JSON"), e.getMessage());

        Files.delete(dir.resolve(Tokenizer.GENERATION_CONFIG_JSON));
        Files.write(dir.resolve(Tokenizer.SPECIAL_TOKENS_MAP_JSON), new byte[] {'{', (byte) 0xC3, '}'});
        Files.delete(dir.resolve(Tokenizer.TOKENIZER_CONFIG_JSON));
        e = loadFails();
        assertTrue(e.getMessage().contains("special_tokens_map.json") && e.getMessage().contains("UTF-8"), e.getMessage());
    }

    @Test
    void closedTokenizerRefusesWork() {
        Tokenizer t = Tokenizer.load(dir);
        assertArrayEquals(new int[] {0, 3 + 'x'}, t.encode("x", true));
        t.close();
        t.close(); // idempotent
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> t.encode("x", true));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> t.decode(new int[] {5}, false));
        // What was read from the files stays available.
        assertEquals(512, t.vocabSize());
        assertEquals(dir.toAbsolutePath().normalize(), t.directory());
    }

    @Test
    void cleanUpSpacesAppliesToNonBpeModelsOnly(@TempDir Path wordLevel) throws IOException {
        Files.writeString(wordLevel.resolve(Tokenizer.TOKENIZER_JSON), """
                {"version": "1.0", "truncation": null, "padding": null,
                 "added_tokens": [{"id": 3, "content": "[UNK]", "single_word": false, "lstrip": false,
                                   "rstrip": false, "normalized": false, "special": true}],
                 "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
                 "model": {"type": "WordLevel", "vocab": {"hello": 0, ",": 1, "world": 2, "[UNK]": 3},
                           "unk_token": "[UNK]"}}
                """);
        try (Tokenizer t = Tokenizer.load(wordLevel)) {
            assertArrayEquals(new int[] {0, 1, 2}, t.encode("hello, world", true));
            assertEquals("hello , world", t.decode(new int[] {0, 1, 2}, false));
        }
        Files.writeString(wordLevel.resolve(Tokenizer.TOKENIZER_CONFIG_JSON), "{\"clean_up_tokenization_spaces\": true}");
        try (Tokenizer t = Tokenizer.load(wordLevel)) {
            assertEquals("hello, world", t.decode(new int[] {0, 1, 2}, false));
            assertEquals("WordLevel", t.modelType());
        }
        // The tiny tokenizer is BPE: the flag is ignored there, as transformers 5 does.
        config("{\"clean_up_tokenization_spaces\": true}");
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertEquals("Hello , world n't", t.decode(t.encode("Hello , world n't", false), false));
        }
    }

    @Test
    void unigramVocabularyIsAListOfPieces(@TempDir Path unigram) throws IOException {
        Files.writeString(unigram.resolve(Tokenizer.TOKENIZER_JSON), """
                {"version": "1.0", "truncation": null, "padding": null,
                 "added_tokens": [{"id": 0, "content": "<unk>", "single_word": false, "lstrip": false,
                                   "rstrip": false, "normalized": false, "special": true}],
                 "normalizer": null,
                 "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
                 "post_processor": null,
                 "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
                 "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": false,
                           "vocab": [["<unk>", 0.0], ["▁hello", -1.0], ["▁world", -1.5], ["▁", -3.0],
                                     ["h", -4.0], ["e", -4.0], ["l", -4.0], ["o", -4.0]]}}
                """);
        try (Tokenizer t = Tokenizer.load(unigram)) {
            assertEquals("Unigram", t.modelType());
            assertEquals(8, t.vocabSize());
            assertEquals(OptionalInt.of(2), t.tokenToId("▁world"));
            assertEquals("o", t.idToToken(7));
            int[] ids = t.encode("hello world hole", false);
            assertArrayEquals(new int[] {1, 2, 3, 4, 7, 6, 5}, ids);
            assertEquals("hello world hole", t.decode(ids, false));
        }
    }

    @Test
    void concurrentEncodingGivesTheSameIds() {
        List<String> texts = java.util.stream.IntStream.range(0, 400)
                .mapToObj(i -> "text number " + i + " with some words, ünïcödé and 😀 ".repeat(1 + i % 7))
                .toList();
        try (Tokenizer t = Tokenizer.load(dir)) {
            List<int[]> sequential = texts.stream().map(x -> t.encode(x, true)).toList();
            List<int[]> parallel = texts.parallelStream().map(x -> t.encode(x, true)).toList();
            List<String> decoded = parallel.parallelStream().map(ids -> t.decode(ids, true)).toList();
            for (int i = 0; i < texts.size(); i++) {
                assertArrayEquals(sequential.get(i), parallel.get(i));
                assertEquals(texts.get(i), decoded.get(i));
            }
        }
    }

    @Test
    void loadingForcesDjlOffline() {
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertEquals("BPE", t.modelType());
        }
        assertEquals("true", System.getProperty("ai.djl.offline"));
        assertTrue("cpu".equals(System.getProperty("RUST_FLAVOR")) || System.getenv("RUST_FLAVOR") != null);
        assertTrue("true".equals(System.getProperty("OPT_OUT_TRACKING")) || System.getenv("OPT_OUT_TRACKING") != null);
    }
}
