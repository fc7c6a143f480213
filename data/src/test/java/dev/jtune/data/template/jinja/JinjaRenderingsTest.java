package dev.jtune.data.template.jinja;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The llama.cpp chat-template collection (chat-templates/renderings, provenance in SOURCES.md there) rendered as
 * transformers' own environment renders it (renderings.json, tools/reference/chat_template_renderings.py): the
 * same text, or an error where Python raises one.
 */
class JinjaRenderingsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    static Stream<Arguments> cases() throws IOException {
        JsonNode root;
        try (InputStream in = JinjaRenderingsTest.class.getResourceAsStream("/chat-templates/renderings/renderings.json")) {
            root = JSON.readTree(in);
        }
        List<Arguments> out = new ArrayList<>();
        int k = 0;
        for (JsonNode c : root) {
            out.add(Arguments.of(c.get("file").asText() + " #" + (k++ % 8), c));
        }
        assertTrue(out.size() >= 200, "cases: " + out.size());
        return out.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void rendersAsTransformers(String name, JsonNode c) throws IOException {
        String source;
        try (InputStream in = getClass().getResourceAsStream("/chat-templates/renderings/" + c.get("file").asText())) {
            source = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> vars = JSON.convertValue(c.get("variables"), Map.class);
        if (c.has("error")) {
            assertThrows(JinjaException.class, () -> JinjaTemplate.parse(source).render(vars), c.get("error").asText());
        } else {
            assertEquals(c.get("text").asText(), JinjaTemplate.parse(source).render(vars));
        }
    }
}
