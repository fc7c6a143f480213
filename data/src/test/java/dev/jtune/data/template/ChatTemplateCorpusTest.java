package dev.jtune.data.template;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.tokenizer.PublishedTokenizers;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Real chat templates of a dozen model families (chat-templates/corpus, provenance in SOURCES.md there): for
 * each conversation, the text, the token ids and the labels equal what tools/reference/chat_template_corpus.py
 * recorded from transformers + Python Jinja2 and its own masking rule; a conversation the template rejects is
 * rejected here too.
 */
class ChatTemplateCorpusTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Map<String, Tokenizer> TOKENIZERS = new HashMap<>();

    static Stream<Arguments> cases() throws IOException {
        JsonNode root;
        try (InputStream in = ChatTemplateCorpusTest.class.getResourceAsStream("/chat-templates/corpus/expected.json")) {
            root = JSON.readTree(in);
        }
        List<Arguments> out = new ArrayList<>();
        for (JsonNode t : root.get("templates")) {
            for (JsonNode c : t.get("conversations")) {
                out.add(Arguments.of(t.get("file").asText() + " / " + c.get("name").asText(), t, c,
                        root.get("date_string").asText()));
            }
        }
        assertTrue(out.size() >= 50, "cases: " + out.size());
        return out.stream();
    }

    @AfterAll
    static void close() {
        TOKENIZERS.values().forEach(Tokenizer::close);
        TOKENIZERS.clear();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void equalsTransformers(String name, JsonNode t, JsonNode c, String date) throws IOException {
        String source;
        try (InputStream in = getClass().getResourceAsStream("/chat-templates/corpus/" + t.get("file").asText())) {
            source = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        List<String> eot = new ArrayList<>();
        if (t.hasNonNull("eot_tokens")) {
            t.get("eot_tokens").forEach(e -> eot.add(e.asText()));
        }
        JinjaChatTemplate template = new JinjaChatTemplate("corpus", source, text(t, "bos_token"), text(t, "eos_token"),
                eot, Map.of("date_string", date));
        List<Message> messages = messages(c.get("messages"));
        boolean gen = c.get("add_generation_prompt").asBoolean();
        List<?> tools = c.hasNonNull("tools") ? JSON.convertValue(c.get("tools"), List.class) : null;
        if (c.has("error")) {
            ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> template.render(messages, gen, tools));
            assertTrue(e.getMessage().contains(c.get("error").asText()), e.getMessage());
            return;
        }
        RenderedChat chat = template.render(messages, gen, tools);
        assertEquals(c.get("text").asText(), chat.text(), "text");
        assertEquals(template.render(messages, gen, tools, false), chat, "one probe per message vs one for all");
        Tokenizer tok = TOKENIZERS.computeIfAbsent(t.get("tokenizer").asText(),
                n -> Tokenizer.load(PublishedTokenizers.dir(n)));
        TokenizedChat tc = TokenizedChat.ofSpans(tok, chat, turn -> turn.trained(turn.isAssistant(), turn.isAssistant()));
        assertArrayEquals(ints(c.get("ids")), tc.inputIds(), "ids");
        assertArrayEquals(ints(c.get("labels")), tc.labels(), "labels");
    }

    private static String text(JsonNode n, String key) {
        return n.hasNonNull(key) ? n.get(key).asText() : null;
    }

    private static List<Message> messages(JsonNode list) {
        List<Message> out = new ArrayList<>();
        for (JsonNode m : list) {
            Map<String, Object> fields = new LinkedHashMap<>();
            m.properties().forEach(e -> {
                if (!e.getKey().equals("role") && !e.getKey().equals("content")) {
                    fields.put(e.getKey(), JSON.convertValue(e.getValue(), Object.class));
                }
            });
            out.add(new Message(m.get("role").asText(), m.get("content").asText(), fields));
        }
        return out;
    }

    private static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asInt();
        }
        return out;
    }
}
