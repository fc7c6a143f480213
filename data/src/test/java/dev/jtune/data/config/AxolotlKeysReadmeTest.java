package dev.jtune.data.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.config.AxolotlKeys.Policy;
import dev.jtune.data.config.AxolotlKeys.Rule;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * README's list of Axolotl keys by policy is rendered from {@link AxolotlKeys}, so it cannot drift: this test
 * fails when the two differ. {@code -Djtune.updateReadme=true} rewrites the section instead.
 */
class AxolotlKeysReadmeTest {
    static final String BEGIN = "<!-- axolotl-keys:begin (generated from AxolotlKeys by AxolotlKeysReadmeTest;"
            + " refresh: ./mvnw -o test -pl data -Dtest=AxolotlKeysReadmeTest -Djtune.updateReadme=true) -->";
    static final String END = "<!-- axolotl-keys:end -->";

    private static final Map<Policy, String> TITLES = Map.of(
            Policy.IMPLEMENTED, "Implemented",
            Policy.EQUIVALENT, "Equivalent here (one `info:` line)",
            Policy.NOT_OFFLINE, "Not available offline (one `warning:` line)",
            Policy.REFUSED, "Refused (an error naming the key, its value and what jtune offers)");

    static String render() {
        StringBuilder md = new StringBuilder();
        md.append("Axolotl commit [`").append(AxolotlKeys.COMMIT, 0, 7).append("`](https://github.com/axolotl-ai-cloud/"
                + "axolotl/tree/").append(AxolotlKeys.COMMIT).append("/src/axolotl/utils/schemas): ")
                .append(AxolotlKeys.top().size()).append(" top-level keys, ").append(AxolotlKeys.dataset().size())
                .append(" keys of a `datasets:` entry.\n");
        section(md, "Top level", AxolotlKeys.top());
        section(md, "One `datasets:` entry", AxolotlKeys.dataset());
        return md.toString();
    }

    private static void section(StringBuilder md, String title, Map<String, Rule> table) {
        md.append("\n#### ").append(title).append("\n");
        List<Rule> byValue = table.values().stream().filter(r -> r.values().isPresent()).toList();
        for (Policy policy : Policy.values()) {
            List<Rule> rules = table.values().stream().filter(r -> r.policy() == policy && r.values().isEmpty()).toList();
            if (rules.isEmpty()) continue;
            md.append("\n**").append(TITLES.get(policy)).append("** (").append(rules.size()).append("):\n");
            if (policy == Policy.IMPLEMENTED) {
                md.append(String.join(", ", rules.stream().map(r -> "`" + r.key() + "`").toList())).append("\n");
                continue;
            }
            Map<String, List<String>> byNote = new LinkedHashMap<>();
            for (Rule r : rules) byNote.computeIfAbsent(r.note(), n -> new ArrayList<>()).add("`" + r.key() + "`");
            byNote.forEach((note, keys) -> md.append("- ").append(String.join(", ", keys)).append(": ").append(note)
                    .append("\n"));
        }
        if (!byValue.isEmpty()) {
            md.append("\n**By value** (").append(byValue.size()).append("):\n");
            for (Rule r : byValue) md.append("- `").append(r.key()).append("`: ").append(r.values().get()).append("\n");
        }
    }

    @Test
    void readmeListsTheTable() throws IOException {
        Path readme = Path.of("..", "README.md");
        String text = Files.readString(readme, StandardCharsets.UTF_8);
        int begin = text.indexOf(BEGIN);
        int end = text.indexOf(END);
        assertTrue(begin >= 0 && end > begin, "README.md lacks the generated section (" + BEGIN + " ... " + END + ")");
        String current = text.substring(begin + BEGIN.length(), end);
        String wanted = "\n" + render() + "\n";
        if (Boolean.getBoolean("jtune.updateReadme")) {
            Files.writeString(readme, text.substring(0, begin + BEGIN.length()) + wanted + text.substring(end),
                    StandardCharsets.UTF_8);
            return;
        }
        assertEquals(wanted, current, "README's key list differs from AxolotlKeys; refresh it with"
                + " -Djtune.updateReadme=true");
    }

    @Test
    void renderingCountsEveryKeyOnce() {
        String md = render();
        for (String key : AxolotlKeys.top().keySet()) {
            assertTrue(md.contains("`" + key + "`"), key);
        }
    }
}
