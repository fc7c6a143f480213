package dev.jtune.data.template;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.template.ChatTemplateExpectations.Conversation;
import dev.jtune.data.tokenizer.ByteLevelTokenizerBuilder;
import dev.jtune.data.tokenizer.PublishedTokenizers;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Token ids equal to transformers' apply_chat_template(tokenize=True), and tokens assigned to turns. */
class ChatTemplateTokenizationTest {

    /**
     * Every token belongs to exactly one turn, in order, each non-empty turn owns tokens; only assistant turns
     * have trained tokens, and those decode to the turn's trained text (up to the whitespace before it, which
     * a straddling token may carry).
     */
    static void assertTurns(Tokenizer tok, RenderedChat chat, TokenizedChat t, String what, boolean exact) {
        int[] turn = t.turnIndex();
        boolean[] trained = t.trainable();
        assertEquals(t.size(), turn.length);
        int previous = 0;
        for (int i = 0; i < turn.length; i++) {
            assertTrue(turn[i] >= 0 && turn[i] < chat.turns().size(), what + ": token " + i + " has turn " + turn[i]);
            assertTrue(turn[i] >= previous, what + ": turns in order at token " + i);
            previous = turn[i];
            if (trained[i]) {
                assertTrue(chat.turns().get(turn[i]).isAssistant(), what + ": trained token " + i + " in a non-assistant turn");
            }
        }
        int total = 0;
        for (RenderedChat.Turn rt : chat.turns()) {
            int[] ids = t.idsOfTurn(rt.index(), false);
            total += ids.length;
            assertEquals(rt.end() > rt.start(), ids.length > 0, what + ": turn " + rt.index() + " owns tokens iff it has text");
            int[] trainedIds = t.idsOfTurn(rt.index(), true);
            if (rt.isAssistant()) {
                String decoded = tok.decode(trainedIds, false);
                String expected = chat.text(rt.span(true, true));
                if (exact) {
                    assertEquals(expected.strip(), decoded.strip(), what + ": trained tokens of turn " + rt.index());
                } else {
                    // straddling tokens at either end are trained too: the decoded text covers the span, and more
                    // only by what those tokens carry from the turn's text
                    assertTrue(decoded.contains(expected.strip()), what + ": trained tokens " + decoded + " cover " + expected);
                    assertTrue(chat.turnText(rt.index()).contains(decoded.strip()), what + ": " + decoded + " within the turn");
                }
            } else {
                assertEquals(0, trainedIds.length, what + ": turn " + rt.index() + " is not trained");
            }
        }
        assertEquals(t.size(), total, what + ": every token in exactly one turn");
        int[] labels = t.labels();
        for (int i = 0; i < labels.length; i++) {
            assertEquals(trained[i] ? t.inputIds()[i] : TokenizedChat.IGNORE_INDEX, labels[i]);
        }
    }

    @Test
    void llama31TokenizerDefaultEqualsTransformers() {
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("llama3_1"))) {
            ChatTemplate jinja = ChatTemplates.byName("tokenizer_default", tok);
            assertEquals(JinjaChatTemplate.NAME, jinja.name());
            ChatTemplate builtin = ChatTemplates.byName("llama3", tok);
            int bos = tok.bosId().orElseThrow();
            for (Conversation c : ChatTemplateExpectations.conversations()) {
                RenderedChat r = jinja.render(c.messages(), c.addGenerationPrompt());
                assertEquals(c.text("llama3_1"), r.text(), c.name());
                TokenizedChat t = TokenizedChat.of(tok, r);
                assertArrayEquals(c.ids("llama3_1"), t.inputIds(), c.name() + ": ids vs transformers");
                assertEquals(1, Arrays.stream(t.inputIds()).filter(id -> id == bos).count(), c.name() + ": one BOS");
                assertTurns(tok, r, t, "llama3_1 " + c.name(), true);
                TokenizedChat b = builtin.tokenize(tok, c.messages(), c.addGenerationPrompt());
                assertArrayEquals(c.ids("llama3_1"), b.inputIds(), c.name() + ": built-in llama3 ids");
                assertArrayEquals(t.turnIndex(), b.turnIndex(), c.name());
                assertArrayEquals(t.trainable(), b.trainable(), c.name());
            }
        }
    }

    @Test
    void llama31TrainedTokensAreExactlyContentAndEot() {
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("llama3_1"))) {
            List<Message> chat = List.of(Message.system("S"), Message.user("Hi"), Message.assistant("Hello there"));
            TokenizedChat t = ChatTemplates.byName("tokenizer_default", tok).tokenize(tok, chat, false);
            int[] trained = t.idsOfTurn(2, true);
            int[] expected = tok.encode("Hello there<|eot_id|>", false);
            assertArrayEquals(expected, trained);
            assertEquals(tok.tokenToId("<|eot_id|>").getAsInt(), t.inputIds()[t.size() - 1]);
            assertTrue(t.trainable()[t.size() - 1]);
            // the assistant header is in the assistant's turn but not trained
            int[] turn2 = t.idsOfTurn(2, false);
            assertEquals(tok.tokenToId("<|start_header_id|>").getAsInt(), turn2[0]);
            assertEquals(expected.length + 4, turn2.length, "<|start_header_id|>assistant<|end_header_id|>\\n\\n + trained");
        }
    }

    @Test
    void chatmlIdsEqualTransformers() {
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("llama3_1"))) {
            ChatTemplate chatml = ChatTemplates.byName("chatml", tok);
            for (Conversation c : ChatTemplateExpectations.conversations()) {
                RenderedChat r = chatml.render(c.messages(), c.addGenerationPrompt());
                TokenizedChat t = TokenizedChat.of(tok, r);
                assertArrayEquals(c.ids("chatml"), t.inputIds(), c.name());
                assertTurns(tok, r, t, "chatml " + c.name(), false);
                if (!c.addGenerationPrompt()) {
                    // <|im_end|> is no special token of Llama 3: its last token ">\n" straddles the trained end and is trained
                    assertEquals(">\n", tok.decode(new int[] {t.inputIds()[t.size() - 1]}, false), c.name());
                    assertTrue(t.trainable()[t.size() - 1], c.name());
                }
            }
        }
    }

    @Test
    void llama2IdsEqualTransformersBuiltInAndJinja(@TempDir Path dir) throws IOException {
        Path src = PublishedTokenizers.dir("llama2");
        Files.copy(src.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        Map<String, Object> config = new java.util.LinkedHashMap<>();
        config.put("bos_token", "<s>");
        config.put("eos_token", "</s>");
        config.put("chat_template", ChatTemplateExpectations.llama2Jinja());
        Files.writeString(dir.resolve("tokenizer_config.json"), new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(config));
        try (Tokenizer tok = Tokenizer.load(dir)) {
            int checked = 0;
            for (Conversation c : ChatTemplateExpectations.conversations()) {
                if (c.expected("llama2") == null) {
                    continue;
                }
                for (String name : List.of("llama2", "tokenizer_default")) {
                    ChatTemplate template = ChatTemplates.byName(name, tok);
                    RenderedChat r = template.render(c.messages(), c.addGenerationPrompt());
                    TokenizedChat t = TokenizedChat.of(tok, r);
                    assertArrayEquals(c.ids("llama2"), t.inputIds(), name + " " + c.name());
                    assertTurns(tok, r, t, name + " " + c.name(), true);
                }
                checked++;
            }
            assertTrue(checked >= 4);
            // " Hello! How can I help? </s>": "▁Hello" straddles the span start and is trained; "</s>" is trained
            TokenizedChat t = ChatTemplates.byName("llama2", tok).tokenize(tok,
                    List.of(Message.user("Hi"), Message.assistant("Hello! How can I help?")), false);
            int[] trained = t.idsOfTurn(1, true);
            assertEquals(tok.tokenToId("▁Hello").getAsInt(), trained[0]);
            assertEquals(tok.eosId().getAsInt(), trained[trained.length - 1]);
            assertEquals(tok.bosId().getAsInt(), t.inputIds()[0]);
            assertEquals(1, Arrays.stream(t.inputIds()).filter(id -> id == tok.bosId().getAsInt()).count(), "one BOS");
        }
    }

    @Test
    void tinyTokenizerSpecialTokensAndBoundaries(@TempDir Path dir) {
        ByteLevelTokenizerBuilder.writeDefault(dir);
        try (Tokenizer tok = Tokenizer.load(dir)) {
            List<Message> chat = List.of(Message.user("Tell me about the weather."), Message.assistant("The weather is nice."),
                    Message.user("And then?"), Message.assistant("Then it rains."));
            for (String name : List.of("vicuna_v1.1", "alpaca", "llama2")) {
                ChatTemplate template = ChatTemplates.byName(name, tok);
                RenderedChat r = template.render(chat, false);
                TokenizedChat t = TokenizedChat.of(tok, r);
                assertArrayEquals(tok.encode(r.text(), false), t.inputIds(), name);
                assertEquals(ByteLevelTokenizerBuilder.BOS_ID, t.inputIds()[0], name + ": <s> is the BOS token");
                assertEquals(1, Arrays.stream(t.inputIds()).filter(id -> id == ByteLevelTokenizerBuilder.BOS_ID).count()
                        + (name.equals("llama2") ? -1 : 0), name + ": no second BOS");
                assertEquals(2, Arrays.stream(t.inputIds()).filter(id -> id == ByteLevelTokenizerBuilder.EOS_ID).count(), name);
                assertTurns(tok, r, t, name, false);
            }
        }
    }

    @Test
    void aTokenStraddlingABoundaryBelongsToTheLaterSegment(@TempDir Path dir) {
        ByteLevelTokenizerBuilder.writeDefault(dir);
        try (Tokenizer tok = Tokenizer.load(dir)) {
            String word = " the";
            assertEquals(1, tok.encode(word, false).length, "\" the\" is one token of the tiny vocabulary");
            String text = "say" + word;
            int[] ids = tok.encode(text, false);
            int cut = 5; // "say t|he": inside the last token
            RenderedChat chat = new RenderedChat(text, List.of(
                    new RenderedChat.Turn(0, "user", 0, cut, 0, 0, 0),
                    new RenderedChat.Turn(1, "assistant", cut, text.length(), cut, text.length(), text.length())));
            TokenizedChat t = TokenizedChat.of(tok, chat);
            assertArrayEquals(ids, t.inputIds());
            int last = ids.length - 1;
            assertEquals(1, t.turnIndex()[last], "the straddling token goes to the later turn");
            assertTrue(t.trainable()[last], "and is trained");
            for (int i = 0; i < last; i++) {
                assertEquals(0, t.turnIndex()[i]);
                assertFalse(t.trainable()[i]);
            }
            // a trained part ending inside the token: the token is trained and stays in the assistant's turn
            RenderedChat endCut = new RenderedChat(text, List.of(
                    new RenderedChat.Turn(0, "assistant", 0, cut, 0, cut, cut),
                    new RenderedChat.Turn(1, "user", cut, text.length(), cut, cut, cut)));
            TokenizedChat ec = TokenizedChat.of(tok, endCut);
            assertEquals(0, ec.turnIndex()[last]);
            for (int i = 0; i <= last; i++) {
                assertTrue(ec.trainable()[i]);
            }
            assertEquals(0, ec.idsOfTurn(1, false).length);
            // a boundary exactly at a token boundary: nothing moves
            RenderedChat exact = new RenderedChat(text, List.of(
                    new RenderedChat.Turn(0, "user", 0, 3, 0, 0, 0),
                    new RenderedChat.Turn(1, "assistant", 3, text.length(), 3, text.length(), text.length())));
            TokenizedChat e = TokenizedChat.of(tok, exact);
            assertEquals(ids.length - 1, e.idsOfTurn(0, false).length);
            assertArrayEquals(new int[] {ids[last]}, e.idsOfTurn(1, true));
        }
    }
}
