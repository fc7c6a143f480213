package dev.jtune.data.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerEditsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private Path base() {
        Path dir = tmp.resolve("base");
        ByteLevelTokenizerBuilder.writeDefault(dir);
        return dir;
    }

    @Test
    void newTokensGetTheNextIdsAndAreSplitOutWhole() throws Exception {
        Path base = base();
        int before;
        int[] plain;
        try (Tokenizer t = Tokenizer.load(base)) {
            before = t.vocabSize();
            plain = t.encode("你好", false);
        }
        assertTrue(plain.length > 2, "the base splits 你好 into byte tokens");
        // "the" is in the base vocabulary: it keeps its id (no new row), as the tokenizers library does.
        Path grown = new TokenizerEdits(Map.of(), Map.of(), List.of("你好", "世界", "你好"))
                .writeTo(base, tmp.resolve("grown"));
        try (Tokenizer t = Tokenizer.load(grown)) {
            assertEquals(before + 2, t.vocabSize());
            assertEquals(before, t.tokenToId("你好").getAsInt());
            assertEquals(before + 1, t.tokenToId("世界").getAsInt());
            assertArrayEquals(new int[] {ByteLevelTokenizerBuilder.BOS_ID, before, before + 1},
                    t.encode("你好世界", true));
            assertEquals("你好世界", t.decode(t.encode("你好世界", false), false));
        }
        JsonNode added = JSON.readTree(grown.resolve("tokenizer.json").toFile()).get("added_tokens");
        JsonNode last = added.get(added.size() - 1);
        assertEquals("世界", last.get("content").asText());
        assertFalse(last.get("special").asBoolean());
        assertFalse(last.get("normalized").asBoolean());
    }

    @Test
    void specialTokensAreAddedAsSpecialOrOverrideExistingOnes() throws Exception {
        Path base = base();
        int before;
        try (Tokenizer t = Tokenizer.load(base)) {
            before = t.vocabSize();
        }
        Path grown = new TokenizerEdits(Map.of(), Map.of("pad_token", "[PAD]", "eos_token", "<s>"), List.of())
                .writeTo(base, tmp.resolve("grown"));
        try (Tokenizer t = Tokenizer.load(grown)) {
            assertEquals(before + 1, t.vocabSize());
            assertEquals("[PAD]", t.padToken().orElseThrow());
            assertEquals(before, t.padId().getAsInt());
            assertEquals(ByteLevelTokenizerBuilder.BOS_ID, t.eosId().getAsInt(), "an existing token, no new row");
            assertEquals("", t.decode(new int[] {before}, true), "[PAD] is special: skipped when asked");
        }
        JsonNode config = JSON.readTree(grown.resolve("tokenizer_config.json").toFile());
        assertEquals("[PAD]", config.get("pad_token").asText());
        if (config.has("added_tokens_decoder")) {
            assertEquals("[PAD]", config.get("added_tokens_decoder").get(Integer.toString(before)).get("content").asText());
        }
        assertEquals("[PAD]", JSON.readTree(grown.resolve("special_tokens_map.json").toFile()).get("pad_token").asText());
    }

    @Test
    void overridesRenameAddedTokensOnly() throws Exception {
        Path base = base();
        Path grown = new TokenizerEdits(Map.of(ByteLevelTokenizerBuilder.PAD_ID, "<|im_end|>"), Map.of(), List.of())
                .writeTo(base, tmp.resolve("grown"));
        try (Tokenizer t = Tokenizer.load(grown)) {
            assertEquals(ByteLevelTokenizerBuilder.PAD_ID, t.tokenToId("<|im_end|>").getAsInt());
            assertTrue(t.tokenToId("<pad>").isEmpty());
        }
        TokenizerException e = assertThrows(TokenizerException.class,
                () -> new TokenizerEdits(Map.of(300, "x"), Map.of(), List.of()).writeTo(base, tmp.resolve("bad")));
        assertTrue(e.getMessage().contains("added_tokens_overrides") && e.getMessage().contains("300"), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("bad")));
    }

    @Test
    void rewritingReplacesTheFolderWhole() throws Exception {
        Path base = base();
        Path target = tmp.resolve("grown");
        new TokenizerEdits(Map.of(), Map.of(), List.of("alpha1", "beta2")).writeTo(base, target);
        new TokenizerEdits(Map.of(), Map.of(), List.of("gamma3")).writeTo(base, target);
        try (Tokenizer t = Tokenizer.load(target)) {
            assertTrue(t.tokenToId("alpha1").isEmpty());
            assertTrue(t.tokenToId("gamma3").isPresent());
        }
    }
}
