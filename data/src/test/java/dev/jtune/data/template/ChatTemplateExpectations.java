package dev.jtune.data.template;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/**
 * chat-templates/expected.json: what transformers' apply_chat_template gives, written by
 * tools/reference/chat_template_expected.py.
 */
final class ChatTemplateExpectations {
    static final JsonNode ROOT = load();

    record Conversation(String name, List<Message> messages, boolean addGenerationPrompt, JsonNode node) {
        /** {"text", "ids"} for a template key (llama3_1, chatml, llama2), or null when not recorded. */
        JsonNode expected(String key) {
            return node.get(key);
        }

        String text(String key) {
            return node.get(key).get("text").asText();
        }

        int[] ids(String key) {
            JsonNode ids = node.get(key).get("ids");
            int[] out = new int[ids.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = ids.get(i).asInt();
            }
            return out;
        }
    }

    private ChatTemplateExpectations() {}

    private static JsonNode load() {
        try (InputStream in = ChatTemplateExpectations.class.getResourceAsStream("/chat-templates/expected.json")) {
            if (in == null) {
                throw new IllegalStateException("chat-templates/expected.json is not on the test classpath");
            }
            return new ObjectMapper().readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static String chatmlJinja() {
        return ROOT.get("chatml_template").asText();
    }

    static String llama2Jinja() {
        return ROOT.get("llama2_template").asText();
    }

    static List<Conversation> conversations() {
        List<Conversation> out = new ArrayList<>();
        for (JsonNode c : ROOT.get("conversations")) {
            List<Message> messages = new ArrayList<>();
            for (JsonNode m : c.get("messages")) {
                messages.add(new Message(m.get("role").asText(), m.get("content").asText()));
            }
            out.add(new Conversation(c.get("name").asText(), List.copyOf(messages), c.get("add_generation_prompt").asBoolean(), c));
        }
        if (out.size() < 5) {
            throw new IllegalStateException("expected.json holds only " + out.size() + " conversations");
        }
        return out;
    }
}
