package dev.jtune.data.template;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.template.jinja.JinjaException;
import dev.jtune.data.template.jinja.JinjaTemplate;
import dev.jtune.data.tokenizer.ByteLevelTokenizerBuilder;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.io.TempDir;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Axolotl's named chat templates (resources dev/jtune/data/template/axolotl, copied at the pinned commit) rendered
 * by jtune's interpreter as transformers' own environment renders them (chat-templates/axolotl-renderings.json,
 * tools/reference/axolotl_template_renderings.py): the same text, or an error where Python raises one.
 */
class AxolotlTemplatesTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    static List<JsonNode> all() throws IOException {
        try (InputStream in = AxolotlTemplatesTest.class.getResourceAsStream("/chat-templates/axolotl-renderings.json")) {
            List<JsonNode> out = new ArrayList<>();
            JSON.readTree(in).forEach(out::add);
            return out;
        }
    }

    static Stream<Arguments> cases() throws IOException {
        List<Arguments> out = new ArrayList<>();
        int k = 0;
        for (JsonNode c : all()) out.add(Arguments.of(c.get("name").asText() + " #" + (k++ % 4), c));
        return out.stream();
    }

    @Test
    void everyShippedTemplateHasReferenceRenderings() throws IOException {
        TreeSet<String> rendered = new TreeSet<>();
        for (JsonNode c : all()) rendered.add(c.get("name").asText());
        assertEquals(new TreeSet<>(ChatTemplates.AXOLOTL), rendered);
        assertTrue(ChatTemplates.NAMES.containsAll(ChatTemplates.AXOLOTL));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void rendersAsTransformers(String label, JsonNode c) {
        String source = ChatTemplates.axolotlSource(c.get("name").asText());
        @SuppressWarnings("unchecked")
        Map<String, Object> vars = JSON.convertValue(c.get("variables"), Map.class);
        if (c.has("error")) {
            assertThrows(JinjaException.class, () -> JinjaTemplate.parse(source).render(vars), c.get("error").asText());
        } else {
            assertEquals(c.get("text").asText(), JinjaTemplate.parse(source).render(vars));
        }
    }

    /** By name, as chat_template: NAME selects it, with a tokenizer whose BOS/EOS are Python's: the same text. */
    static Stream<Arguments> pingPong() throws IOException {
        // The two-message conversation, where Python renders it.
        return cases().filter(a -> {
            JsonNode c = (JsonNode) a.get()[1];
            return !c.has("error") && c.get("variables").get("messages").size() == 2;
        });
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("pingPong")
    void byNameRendersAShortConversation(String label, JsonNode c, @TempDir Path dir) {
        JsonNode vars = c.get("variables");
        ByteLevelTokenizerBuilder.writeDefault(dir);
        try (Tokenizer tok = Tokenizer.load(dir)) {
            assertEquals(Optional.of("<s>"), tok.bosToken());
            assertEquals(Optional.of("</s>"), tok.eosToken());
            ChatTemplate template = ChatTemplates.byName(c.get("name").asText(), tok, List.of(), Map.of());
            assertEquals(c.get("name").asText(), template.name());
            RenderedChat rendered = template.render(List.of(Message.user("ping"), Message.assistant("pong")),
                    vars.get("add_generation_prompt").asBoolean());
            assertEquals(c.get("text").asText(), rendered.text());
            assertEquals("pong", rendered.contentText(1).strip());
        }
    }
}
