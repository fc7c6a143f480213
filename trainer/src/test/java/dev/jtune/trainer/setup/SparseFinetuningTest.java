package dev.jtune.trainer.setup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.config.TrainConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code llmcompressor:} block as llm-compressor 0.10.0 reads a recipe ({@code Recipe.create_instance},
 * {@code from_dict}) and selects parameters ({@code match_targets}: {@code re.match}, anchored at the start only).
 */
class SparseFinetuningTest {
    private static final String HEAD = """
            base_model: m
            datasets:
              - path: d.jsonl
                type: alpaca
            plugins: [axolotl.integrations.llm_compressor.LLMCompressorPlugin]
            """;

    private static TrainConfig config(String block) {
        return TrainConfig.parse(HEAD + block, Path.of("cfg.yml"));
    }

    private static List<String> messages(String block, Path dir) {
        return SparseFinetuning.problems(config(block), dir).stream().map(KeyProblem::message).toList();
    }

    @Test
    void recipeAsYamlTextAndNegativeStart(@TempDir Path dir) {
        String block = """
                llmcompressor:
                  recipe: |
                    a_stage:
                      b_modifiers:
                        ConstantPruningModifier:
                          targets: 're:.*up_proj.weight'
                          start: -1
                """;
        Optional<SparseFinetuning> s = SparseFinetuning.from(config(block), dir);
        assertEquals(List.of("re:.*up_proj.weight"), s.orElseThrow().targets());
        assertFalse(s.get().saveCompressed());
        assertTrue(s.get().saveNote().isEmpty());
    }

    @Test
    void selectsAsReMatch() {
        SparseFinetuning s = new SparseFinetuning(List.of("re:.*q_proj.weight", "re:q_proj", "lm_head.weight"), false, 1);
        List<String> names = List.of("model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.bias",
                "model.layers.0.self_attn.qkv_proj.weight", "lm_head.weight", "model.embed_tokens.weight");
        // 're:q_proj' is anchored at the start (re.match): it selects nothing here; exact names match whole.
        assertEquals(List.of("model.layers.0.self_attn.q_proj.weight", "lm_head.weight"), s.select(names));
        // '.' matches any character, as in Python: 'q_proj.weight' also matches 'q_projXweight'.
        assertTrue(SparseFinetuning.matches("re:.*q_proj.weight", "a.q_projXweight"));
    }

    @Test
    void refusals(@TempDir Path dir) {
        List<String> m = messages("""
                llmcompressor:
                  recipe:
                    version: 1
                    finetuning_stage:
                      finetuning_modifiers:
                        ConstantPruningModifier:
                          targets: [__ALL_PRUNABLE__]
                          start: 2
                          end: 5
                        QuantizationModifier:
                          scheme: W8A8
                  save_compressed: yes please
                """, dir);
        assertEquals(6, m.size(), m.toString());
        assertTrue(m.get(0).startsWith("llmcompressor.save_compressed must be true or false"), m.toString());
        assertTrue(m.stream().anyMatch(x -> x.startsWith("llmcompressor.recipe.version: llm-compressor's"
                + " Recipe.from_dict reads only <name>_stage:")), m.toString());
        assertTrue(m.stream().anyMatch(x -> x.contains("__ALL_PRUNABLE__ is not implemented")), m.toString());
        assertTrue(m.stream().anyMatch(x -> x.contains(".start: 2 is not implemented")), m.toString());
        assertTrue(m.stream().anyMatch(x -> x.contains(".end: 5 is not implemented")), m.toString());
        assertTrue(m.stream().anyMatch(x -> x.contains("the modifier QuantizationModifier is not implemented")),
                m.toString());
        // A string that is neither a file nor a recipe mapping.
        List<String> path = messages("llmcompressor:\n  recipe: recipes/missing.yaml\n", dir);
        assertEquals(1, path.size(), path.toString());
        assertTrue(path.get(0).contains("neither a file (looked for " + dir.resolve("recipes/missing.yaml")), path.toString());
    }

    @Test
    void describeSaysWhenTheBaseHasNoZeros() {
        SparseFinetuning s = new SparseFinetuning(List.of("re:.*proj.weight"), true, 1);
        assertTrue(s.describe(28, 0, 737_280).contains("this trains as plain full fine-tuning"));
        assertFalse(s.describe(14, 24_590, 73_728).contains("plain full fine-tuning"));
        assertTrue(s.saveNote().orElseThrow().startsWith("llmcompressor.save_compressed: the model is written dense"));
    }
}
