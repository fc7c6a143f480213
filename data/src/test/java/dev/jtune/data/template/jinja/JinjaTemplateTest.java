package dev.jtune.data.template.jinja;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The interpreter against Python Jinja2 in transformers' chat-template environment (chat-templates/jinja-cases.json,
 * written by tools/reference/jinja_cases.py), and its sandbox.
 */
class JinjaTemplateTest {

    @Test
    void rendersAsTransformersJinja2() throws IOException {
        JsonNode cases;
        try (InputStream in = getClass().getResourceAsStream("/chat-templates/jinja-cases.json")) {
            cases = new ObjectMapper().readTree(in);
        }
        assertTrue(cases.size() >= 10);
        for (JsonNode c : cases) {
            @SuppressWarnings("unchecked")
            Map<String, Object> vars = new ObjectMapper().convertValue(c.get("variables"), Map.class);
            String template = c.get("template").asText();
            assertEquals(c.get("expected").asText(), JinjaTemplate.parse(template).render(vars), template);
        }
    }

    @Test
    void generationBlocksAreTracked() {
        JinjaTemplate.Rendering r = JinjaTemplate.parse("a{% generation %}bc{% endgeneration %}d").renderTracked(Map.of());
        assertEquals("abcd", r.text());
        assertEquals(1, r.generationSpans().size());
        assertEquals(List.of(1, 3), List.of(r.generationSpans().get(0)[0], r.generationSpans().get(0)[1]));
    }

    @Test
    void templatesCannotReachJavaOrModifyValues() {
        // no reflection: Python's and Java's introspection names are simply undefined
        assertEquals("", JinjaTemplate.parse("{{ ''.__class__ }}{{ x.getClass }}{{ x.class }}").render(Map.of("x", "s")));
        JinjaException e = assertThrows(JinjaException.class,
                () -> JinjaTemplate.parse("{{ ''.__class__.__mro__ }}").render(Map.of()));
        assertTrue(e.getMessage().contains("has no attribute '__class__'"), e.getMessage());
        e = assertThrows(JinjaException.class, () -> JinjaTemplate.parse("{{ m.append(1) }}").render(Map.of("m", List.of())));
        assertTrue(e.getMessage().contains("unsafe"), e.getMessage());
    }

    @Test
    void runawayTemplatesHitTheCaps() {
        JinjaException deep = assertThrows(JinjaException.class,
                () -> JinjaTemplate.parse("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").render(Map.of()));
        assertTrue(deep.getMessage().contains("nested deeper than"), deep.getMessage());
        JinjaException range = assertThrows(JinjaException.class,
                () -> JinjaTemplate.parse("{{ range(10**9)|length }}").render(Map.of()));
        assertTrue(range.getMessage().contains("range of"), range.getMessage());
        JinjaException loops = assertThrows(JinjaException.class, () -> JinjaTemplate.parse(
                "{% for a in range(2000) %}{% for b in range(2000) %}{% endfor %}{% endfor %}").render(Map.of()));
        assertTrue(loops.getMessage().contains("loop iterations"), loops.getMessage());
        JinjaTemplate.Limits small = new JinjaTemplate.Limits(1_000_000, 50, 1000, 100_000);
        JinjaException output = assertThrows(JinjaException.class, () -> JinjaTemplate.parse(
                "{% for a in range(500) %}xyz{% endfor %}", small).render(Map.of()));
        assertTrue(output.getMessage().contains("longer than 1000 characters"), output.getMessage());
    }

    @Test
    void errorsNameTheLine() {
        JinjaException e = assertThrows(JinjaException.class, () -> JinjaTemplate.parse("a\n{% if x %}\nb\n{% endfor %}"));
        assertTrue(e.getMessage().startsWith("line 4:"), e.getMessage());
        e = assertThrows(JinjaException.class, () -> JinjaTemplate.parse("a\n\n{{ x.y.z }}").render(Map.of("x", Map.of())));
        assertTrue(e.getMessage().startsWith("line 3:") && e.getMessage().contains("'y'"), e.getMessage());
        e = assertThrows(JinjaException.class, () -> JinjaTemplate.parse("{{ raise_exception('no system') }}").render(Map.of()));
        assertTrue(e.raised());
        assertEquals("no system", e.getMessage());
    }
}
