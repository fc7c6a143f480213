package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.config.ConfigException;
import dev.jtune.model.safetensors.SafetensorsFile;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Axolotl's LLMCompressorPlugin in {@code train}: the {@code llmcompressor:} block of Axolotl's
 * examples/llama-3/sparse-finetuning.yaml (067b021, copied as written) on a sparsified checkpoint
 * (fixtures/tiny-sparse-llama; the numerics against llm-compressor are ConstantPruningTest's): the saved model has
 * the base's zeros at the same positions, its other entries trained; the recipe from a file trains the same; what is
 * not implemented is refused at its position by {@code preprocess}.
 */
class SparseTrainTest {
    private static final Path SPARSE = Path.of("src", "test", "resources", "fixtures", "tiny-sparse-llama")
            .toAbsolutePath();

    /** From Axolotl 067b021 examples/llama-3/sparse-finetuning.yaml, as written there. */
    static final String EXAMPLE = """
            plugins:
              - axolotl.integrations.llm_compressor.LLMCompressorPlugin
            llmcompressor:
              recipe:
                finetuning_stage:
                  finetuning_modifiers:
                    ConstantPruningModifier:
                      targets: [
                        're:.*q_proj.weight',
                        're:.*k_proj.weight',
                        're:.*v_proj.weight',
                        're:.*o_proj.weight',
                        're:.*gate_proj.weight',
                        're:.*up_proj.weight',
                        're:.*down_proj.weight',
                      ]
                      start: 0
              save_compressed: true
            """;

    @TempDir
    static Path shared;

    @BeforeAll
    static void data() throws Exception {
        TinyTraining.countingRows(shared, 16);
    }

    private static String config(String out, String extra) {
        return TinyTraining.config(shared, SPARSE, out, 256, 2, extra);
    }

    private static String train(String name, String yaml) throws Exception {
        return TinyTraining.train(shared, name, yaml);
    }

    private static Map<String, float[]> weights(Path file) throws Exception {
        Map<String, float[]> all = new TreeMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String name : f.names()) all.put(name, f.floats(name));
        }
        return all;
    }

    @Test
    void theExampleKeepsTheCheckpointsZeros() throws Exception {
        String log = train("example", config("example", EXAMPLE));
        train("plain", config("plain", ""));
        assertTrue(log.contains("llmcompressor: ConstantPruningModifier (llm-compressor 0.10's) masks 14 weights: 24,590"
                + " of their 73,728 entries (33.4%) have |w| <= 1e-8 and are held at zero"), log);
        assertTrue(!log.contains("plain full fine-tuning"), log);
        assertTrue(log.contains("llmcompressor.save_compressed: the model is written dense"), log);
        Map<String, float[]> base = weights(SPARSE.resolve("model.safetensors"));
        Map<String, float[]> sparse = weights(shared.resolve("example/model.safetensors"));
        Map<String, float[]> plain = weights(shared.resolve("plain/model.safetensors"));
        long masked = 0, refilled = 0, kept = 0, changed = 0;
        for (var e : base.entrySet()) {
            String name = e.getKey();
            float[] b = e.getValue();
            float[] s = sparse.get(name);
            boolean targeted = name.endsWith("proj.weight");
            for (int i = 0; i < b.length; i++) {
                if (targeted && Math.abs(b[i]) <= 1e-8f) {
                    masked++;
                    assertEquals(0f, Math.abs(s[i]), name + " keeps its zero at " + i);
                    if (plain.get(name)[i] != 0f) refilled++;
                } else {
                    kept++;
                    if (s[i] != b[i]) changed++;
                }
            }
        }
        assertEquals(24_590, masked);
        // Without the plugin the zeros fill in; with it every other entry trains (embeddings of unseen tokens aside).
        assertTrue(refilled > 0.99 * masked, refilled + " of " + masked + " refilled without the plugin");
        assertTrue(changed > 0.5 * kept, changed + " of " + kept + " other entries changed");

        // The same recipe from a file (Recipe.create_instance reads a path): the same model, to the bit.
        Files.writeString(shared.resolve("recipe.yaml"), """
                finetuning_stage:
                  finetuning_modifiers:
                    ConstantPruningModifier:
                      targets: ['re:.*q_proj.weight', 're:.*k_proj.weight', 're:.*v_proj.weight', 're:.*o_proj.weight',
                                're:.*gate_proj.weight', 're:.*up_proj.weight', 're:.*down_proj.weight']
                      start: 0
                """);
        train("file", config("file", """
                plugins: [axolotl.integrations.llm_compressor.LLMCompressorPlugin]
                llmcompressor:
                  recipe: %s
                """.formatted(shared.resolve("recipe.yaml"))));
        Map<String, float[]> fromFile = weights(shared.resolve("file/model.safetensors"));
        for (var e : sparse.entrySet()) assertArrayEquals(e.getValue(), fromFile.get(e.getKey()), e.getKey());
    }

    /** Everything jtune does not run is named at its position, all in one preprocess. */
    @Test
    void whatIsNotImplementedIsRefusedAtItsKey(@TempDir Path dir) throws Exception {
        String yaml = config("refused", """
                adapter: lora
                lora_r: 2
                lora_alpha: 4
                lora_target_modules: [q_proj]
                plugins: [axolotl.integrations.llm_compressor.LLMCompressorPlugin]
                llmcompressor:
                  recipe:
                    sparsity_stage:
                      sparsity_modifiers:
                        SparseGPTModifier:
                          sparsity: 0.5
                    finetuning_stage:
                      finetuning_modifiers:
                        ConstantPruningModifier:
                          targets: ['re:.*q_proj.weight']
                          mask_structure: '2:4'
                  save_compresed: true
                """);
        Files.writeString(dir.resolve("cfg.yml"), yaml);
        var sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        var e = assertThrows(ConfigException.class, () -> PreprocessCommand.run(new String[] {"cfg.yml"}, sink, sink,
                PreprocessCommand::sampleSource, dir, false));
        Map<String, String> found = new TreeMap<>();
        for (ConfigException p : e.problems()) found.put(p.problem(), p.line() + ":" + p.column());
        assertEquals(5, found.size(), e.getMessage());
        assertPlaced(found, "llmcompressor.save_compresed is not a key of Axolotl's CompressionArgs", at(yaml,
                "save_compresed"));
        assertPlaced(found, "llmcompressor with adapter: lora is refused", at(yaml, "llmcompressor"));
        assertPlaced(found, "llmcompressor.recipe.sparsity_stage.sparsity_modifiers.SparseGPTModifier: the modifier"
                + " SparseGPTModifier is not implemented", at(yaml, "SparseGPTModifier"));
        assertPlaced(found, "llmcompressor.recipe.finetuning_stage.finetuning_modifiers.ConstantPruningModifier"
                + ".mask_structure is not a field of ConstantPruningModifier", at(yaml, "mask_structure"));
        assertPlaced(found, "llmcompressor.recipe.finetuning_stage.finetuning_modifiers.ConstantPruningModifier"
                + ".start is not set: llm-compressor then never starts the modifier", at(yaml,
                "ConstantPruningModifier"));
    }

    @Test
    void thePluginAndItsBlockGoTogether(@TempDir Path dir) throws Exception {
        var sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        String noBlock = config("noblock", "plugins: [axolotl.integrations.llm_compressor.LLMCompressorPlugin]\n");
        Files.writeString(dir.resolve("a.yml"), noBlock);
        var a = assertThrows(ConfigException.class, () -> PreprocessCommand.run(new String[] {"a.yml"}, sink, sink,
                PreprocessCommand::sampleSource, dir, false));
        assertEquals(1, a.problems().size(), a.getMessage());
        assertTrue(a.problems().get(0).problem().contains("needs an llmcompressor: block"), a.getMessage());
        assertEquals(at(noBlock, "plugins"), a.problems().get(0).line() + ":" + a.problems().get(0).column());

        String noPlugin = config("noplugin", EXAMPLE.substring(EXAMPLE.indexOf("llmcompressor:")));
        Files.writeString(dir.resolve("b.yml"), noPlugin);
        var b = assertThrows(ConfigException.class, () -> PreprocessCommand.run(new String[] {"b.yml"}, sink, sink,
                PreprocessCommand::sampleSource, dir, false));
        assertEquals(1, b.problems().size(), b.getMessage());
        assertTrue(b.problems().get(0).problem().contains("read by Axolotl's LLMCompressorPlugin only"), b.getMessage());
        assertEquals(at(noPlugin, "llmcompressor"), b.problems().get(0).line() + ":" + b.problems().get(0).column());

        // A target that selects nothing in base_model (llm-compressor: "Could not find targets").
        String missing = config("missing", EXAMPLE.replace("'re:.*down_proj.weight',", "'re:.*down_proj.weight',\n"
                + "            're:.*qkv_proj.weight',"));
        Files.writeString(dir.resolve("c.yml"), missing);
        var c = assertThrows(ConfigException.class, () -> PreprocessCommand.run(new String[] {"c.yml"}, sink, sink,
                PreprocessCommand::sampleSource, dir, false));
        assertEquals(1, c.problems().size(), c.getMessage());
        assertTrue(c.problems().get(0).problem().startsWith("llmcompressor.recipe: the target 're:.*qkv_proj.weight' selects no"
                + " parameter of base_model"), c.getMessage());
        assertEquals(at(missing, "recipe"), c.problems().get(0).line() + ":" + c.problems().get(0).column());
    }

    private static void assertPlaced(Map<String, String> found, String start, String where) {
        var hit = found.entrySet().stream().filter(en -> en.getKey().startsWith(start)).findFirst();
        assertTrue(hit.isPresent(), "no problem starting with '" + start + "' in " + found.keySet());
        assertEquals(where, hit.get().getValue(), hit.get().getKey());
    }

    private static String at(String yaml, String key) {
        List<String> lines = yaml.lines().toList();
        for (int i = 0; i < lines.size(); i++) {
            int col = lines.get(i).indexOf(key + ":");
            if (col >= 0 && (col == 0 || lines.get(i).charAt(col - 1) == ' ')) {
                return (i + 1) + ":" + (col + 1);
            }
        }
        throw new AssertionError("no " + key + " in\n" + yaml);
    }
}
