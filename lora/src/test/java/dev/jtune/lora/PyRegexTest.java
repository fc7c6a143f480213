package dev.jtune.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** PEFT's re.fullmatch of a target_modules string, through PyRegex, against CPython's own answers. */
class PyRegexTest {
    private static final List<String> NAMES = names();

    private static List<String> names() {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            for (String m : List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")) {
                out.add("model.layers." + i + "." + m);
            }
        }
        out.add("lm_head");
        return out;
    }

    private static List<String> matched(String python) {
        Pattern p = PyRegex.compile(python);
        return NAMES.stream().filter(n -> p.matcher(n).matches()).toList();
    }

    @Test
    void matchesWhatPythonFullmatchMatches() {
        // Expected: CPython 3.11's [n for n in NAMES if re.fullmatch(pattern, n)] for each pattern; the first two are
        // Axolotl example configs' lora_target_modules (qwen3 layer-pruned LoRA, deepseek-v2).
        Map<String, List<String>> python = Map.of(
                ".*\\.layers\\.(1)\\.self_attn\\.(q|k|v|o)_proj|.*\\.mlp\\.(gate|up|down)_proj",
                List.of("model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj",
                        "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.k_proj",
                        "model.layers.1.self_attn.v_proj", "model.layers.1.self_attn.o_proj",
                        "model.layers.1.mlp.gate_proj", "model.layers.1.mlp.up_proj", "model.layers.1.mlp.down_proj"),
                "model.layers.[\\d]+.(self_attn.(q_a_proj|q_b_proj|kv_a_proj_with_mqa|kv_b_proj|o_proj)|mlp.(shared_experts.)?"
                        + "(gate_proj|up_proj|down_proj))",
                List.of("model.layers.0.self_attn.o_proj", "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj",
                        "model.layers.0.mlp.down_proj", "model.layers.1.self_attn.o_proj", "model.layers.1.mlp.gate_proj",
                        "model.layers.1.mlp.up_proj", "model.layers.1.mlp.down_proj"),
                "(?P<x>model)\\.layers\\.0\\.self_attn\\.[qv]_proj",
                List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"),
                "model\\.layers\\.\\d{,1}\\.mlp\\.down_proj\\Z",
                List.of("model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"),
                "q_proj", List.of(),
                "(?i)MODEL\\.layers\\.1\\.self_attn\\.[^kvo]_proj|lm_head",
                List.of("model.layers.1.self_attn.q_proj", "lm_head"),
                "model\\.layers\\.(?P<n>\\d)\\.self_attn\\.q_proj",
                List.of("model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"));
        python.forEach((pattern, expected) -> assertEquals(expected, matched(pattern), pattern));
    }

    @Test
    void spellingsThatDifferAreTranslated() {
        assertEquals("(?<n>a)\\k<n>", PyRegex.translate("(?P<n>a)(?P=n)"));
        assertEquals("a{0,3}\\z", PyRegex.translate("a{,3}\\Z"));
        assertEquals("a\\{x}", PyRegex.translate("a{x}"));           // a literal brace in Python
        assertEquals("[\\[a]", PyRegex.translate("[[a]"));           // '[' is a member in a Python set
        assertEquals("[\\]a]", PyRegex.translate("[]a]"));           // so is a leading ']'
        assertEquals("[a\\&\\&b]", PyRegex.translate("[a&&b]"));     // no set intersection in Python
        assertEquals("\\x0B\\x07", PyRegex.translate("\\v\\a"));
        assertTrue(PyRegex.compile("[[]").matcher("[").matches());
        assertTrue(PyRegex.compile("a{x}").matcher("a{x}").matches());
    }

    @Test
    void whatOneEngineLacksIsRefused() {
        for (var c : List.of(
                List.of("\\p{L}+", "\\p"), List.of("\\Qa.b\\E", "\\Q"), List.of("a\\h", "\\h"),
                List.of("(?<n>a)", "Python spells a named group (?P<name>...)"), List.of("a(?#note)", "comment"),
                List.of("(a)?(?(1)b|c)", "conditional"), List.of("a(?i)b", "not at the start"),
                List.of("(?a)\\w", "inline flags a, L, u"), List.of("q_proj(", "not a valid regular expression"))) {
            var e = assertThrows(IllegalArgumentException.class, () -> PyRegex.compile(c.get(0)));
            assertTrue(e.getMessage().contains(c.get(1)), c.get(0) + ": " + e.getMessage());
        }
    }
}
