package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.config.ConfigException;
import dev.jtune.model.safetensors.SafetensorsFile;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Axolotl's {@code qat:} in training: full fine-tuning of the tiny model with torchao's int8/int4, MXFP4 and NVFP4
 * fake quantization (the numerics are QatFixtureTest's), NVFP4's untrained projection biases (Qwen2), {@code fake_quant_after_n_steps} as Axolotl's QATCallback applies it, the saved
 * model unquantized, and every value jtune does not run refused at load with its position.
 */
class QatTrainTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path shared;

    @BeforeAll
    static void data() throws Exception {
        TinyTraining.tinyModelAndRows(shared);
    }

    private static String config(String out, String extra) {
        return TinyTraining.config(shared, shared.resolve("tiny"), out, 128, 3, "bf16: true\n" + extra);
    }

    private static String train(String name, String yaml) throws Exception {
        return TinyTraining.train(shared, name, yaml);
    }

    private static List<Double> losses(String out) throws Exception {
        List<Double> losses = new ArrayList<>();
        for (String line : Files.readAllLines(shared.resolve(out).resolve("metrics.jsonl"))) {
            JsonNode n = JSON.readTree(line);
            if (n.has("loss") && !n.has("eval_loss")) {
                losses.add(n.get("loss").asDouble());
            }
        }
        return losses;
    }

    private static Map<String, byte[]> weights(String out) throws Exception {
        return TinyTraining.weightBytes(shared.resolve(out));
    }

    @Test
    void fakeQuantAfterNStepsTrainsPlainUntilStepN() throws Exception {
        train("plain", config("plain", ""));
        String qatLog = train("qat", config("qat", "qat:\n  activation_dtype: int8\n  weight_dtype: int4\n"
                + "  group_size: 32\n"));
        String lateLog = train("late", config("late", "qat:\n  activation_dtype: int8\n  weight_dtype: int4\n"
                + "  group_size: 32\n  fake_quant_after_n_steps: 2\n"));
        List<Double> plain = losses("plain");
        List<Double> qat = losses("qat");
        List<Double> late = losses("late");
        assertEquals(3, plain.size());
        assertTrue(qatLog.contains("qat: fake quantization of every linear layer"), qatLog);
        // From the first step on, the fake-quantized forward gives another loss.
        assertNotEquals(plain.get(0), qat.get(0), "step 1 with fake quantization");
        // Off for steps 0 and 1 (QATCallback: disabled when step 0 begins): the plain run's losses, to the bit; on
        // again when step 2 begins, as the log says.
        assertEquals(plain.get(0), late.get(0), "step 1, fake quantization off");
        assertEquals(plain.get(1), late.get(1), "step 2, fake quantization off");
        assertNotEquals(plain.get(2), late.get(2), "step 3, fake quantization on");
        assertTrue(lateLog.contains("qat: fake quantization enabled at step 2"), lateLog);
        // The saved model holds the trained weights unquantized (Axolotl's convert step), in the run's dtype.
        Map<String, byte[]> a = weights("plain");
        Map<String, byte[]> b = weights("qat");
        assertEquals(a.keySet(), b.keySet());
        assertFalse(a.keySet().stream().allMatch(k -> Arrays.equals(a.get(k), b.get(k))), "qat changes the weights");
        assertTrue(qatLog.contains("saved with its trained weights unquantized"), qatLog);
        // MXFP4 activations and weights (Axolotl's 3b-qat-mxfp4 example): another forward again.
        String mxLog = train("mx", config("mx", "qat:\n  activation_dtype: mxfp4\n  weight_dtype: mxfp4\n"
                + "  group_size: 32\n"));
        assertTrue(mxLog.contains("mxfp4 activations, mxfp4 weights in groups of 32"), mxLog);
        List<Double> mx = losses("mx");
        assertNotEquals(plain.get(0), mx.get(0), "step 1 with MXFP4 fake quantization");
        assertNotEquals(qat.get(0), mx.get(0), "MXFP4 is not int8/int4");
        // NVFP4 activations and weights (Axolotl's 3b-qat-nvfp4 example, as torchao's QAT defines NVFP4).
        String nvLog = train("nv", config("nv", "qat:\n  activation_dtype: nvfp4\n  weight_dtype: nvfp4\n"
                + "  group_size: 16\n"));
        assertTrue(nvLog.contains("NVFP4FakeQuantizedLinear") && nvLog.contains("nvfp4 activations, nvfp4 weights in"
                + " groups of 16"), nvLog);
        List<Double> nv = losses("nv");
        assertEquals(3, nv.size());
        assertNotEquals(plain.get(0), nv.get(0), "step 1 with NVFP4 fake quantization");
        assertNotEquals(mx.get(0), nv.get(0), "NVFP4 is not MXFP4");
        assertFalse(nvLog.contains("projection biases stay as loaded"), "the tiny Llama has no projection biases");
    }

    /**
     * torchao's NVFP4 autograd function returns no gradient for the projection's bias: Qwen2's q/k/v biases keep their
     * loaded values under NVFP4 QAT, while every weight trains; without qat the same run changes them.
     */
    @Test
    void nvfp4LeavesProjectionBiasesUntrained() throws Exception {
        Path qwen2 = Path.of("..", "model", "src", "test", "resources", "fixtures", "families", "qwen2")
                .toAbsolutePath();
        String base = config("q-plain", "").replace(shared.resolve("tiny").toString(), qwen2.toString())
                .replace(shared.resolve("prepared").toString(), shared.resolve("prepared-qwen2").toString())
                .replace("sequence_len: 128", "sequence_len: 512"); // a byte-level vocabulary: longer rows
        train("q-plain", base);
        String nvLog = train("q-nv", base.replace(shared.resolve("q-plain").toString(), shared.resolve("q-nv").toString())
                + "qat:\n  activation_dtype: nvfp4\n  weight_dtype: nvfp4\n  group_size: 16\n");
        assertTrue(nvLog.contains("qat: 9 projection biases stay as loaded"), nvLog);
        Map<String, byte[]> loaded = new TreeMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(qwen2.resolve("model.safetensors"))) {
            for (String name : f.names()) loaded.put(name, f.bytes(name));
        }
        Map<String, byte[]> plain = weights("q-plain");
        Map<String, byte[]> nv = weights("q-nv");
        int biases = 0;
        for (String name : loaded.keySet()) {
            boolean bias = name.endsWith("_proj.bias");
            if (bias) {
                biases++;
                assertTrue(Arrays.equals(loaded.get(name), nv.get(name)), name + " trained under NVFP4");
                assertFalse(Arrays.equals(loaded.get(name), plain.get(name)), name + " unchanged without qat");
            } else if (name.endsWith("_proj.weight")) {
                assertFalse(Arrays.equals(loaded.get(name), nv.get(name)), name + " did not train under NVFP4");
            }
        }
        assertEquals(9, biases);
    }

    /** Every qat value jtune does not run is named at its position, with the file's other problems, by preprocess. */
    @Test
    void unsupportedValuesAreRefusedAtTheirKeys(@TempDir Path dir) throws Exception {
        String yaml = config("refused", """
                adapter: lora
                lora_r: 2
                lora_alpha: 4
                lora_target_modules: [q_proj]
                qat:
                  activation_dtype: int8
                  weight_dtype: nvfp4
                  group_size: 16
                  quantize_embedding: true
                  fake_quant_after_n_steps: 0
                  group_sise: 8
                """);
        Files.writeString(dir.resolve("cfg.yml"), yaml);
        var sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        var e = assertThrows(ConfigException.class, () -> PreprocessCommand.run(new String[] {"cfg.yml"}, sink, sink,
                PreprocessCommand::sampleSource, dir, false));
        Map<String, String> found = new TreeMap<>();
        for (ConfigException p : e.problems()) found.put(p.problem(), p.line() + ":" + p.column());
        assertEquals(5, found.size(), e.getMessage());
        assertPlaced(found, "qat.weight_dtype nvfp4 with qat.activation_dtype int8 is refused: torchao's NVFP4 QAT"
                + " (NVFP4FakeQuantizedLinear) has no weight-only or mixed form", at(yaml, "weight_dtype"));
        assertPlaced(found, "qat.quantize_embedding: true is not implemented", at(yaml, "quantize_embedding"));
        assertPlaced(found, "qat.fake_quant_after_n_steps: 0 is refused", at(yaml, "fake_quant_after_n_steps"));
        assertPlaced(found, "qat.group_sise is not a key of Axolotl's QATConfig", at(yaml, "group_sise"));
        assertPlaced(found, "qat with adapter: lora is not implemented", at(yaml, "qat"));
    }

    /** Axolotl's group_size defaults to 32, which its nvfp4 check refuses: the examples all write 16. */
    @Test
    void nvfp4NeedsGroupSize16(@TempDir Path dir) throws Exception {
        String yaml = config("nv32", "qat:\n  activation_dtype: nvfp4\n  weight_dtype: nvfp4\n");
        Files.writeString(dir.resolve("cfg.yml"), yaml);
        var sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        var e = assertThrows(ConfigException.class, () -> PreprocessCommand.run(new String[] {"cfg.yml"}, sink, sink,
                PreprocessCommand::sampleSource, dir, false));
        assertEquals(1, e.problems().size(), e.getMessage());
        assertTrue(e.problems().get(0).problem().startsWith("qat.group_size 32 with qat.weight_dtype nvfp4 is refused,"
                + " as Axolotl refuses it (\"NVFP4 quantization must use a group_size of 16\"); Axolotl's default"
                + " group_size is 32"), e.getMessage());
    }

    @Test
    void groupSizeMustDivideTheModelsProjections(@TempDir Path dir) throws Exception {
        // The tiny preset's projections read 128 or 352 features: Qwen3-8B's group_size 256 divides neither.
        String yaml = config("wide", "qat:\n  activation_dtype: int8\n  weight_dtype: int4\n  group_size: 256\n");
        Files.writeString(dir.resolve("cfg.yml"), yaml);
        var sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        var e = assertThrows(ConfigException.class, () -> PreprocessCommand.run(new String[] {"cfg.yml"}, sink, sink,
                PreprocessCommand::sampleSource, dir, false));
        assertEquals(1, e.problems().size(), e.getMessage());
        assertTrue(e.problems().get(0).problem().startsWith("qat.group_size 256 does not divide 128"), e.getMessage());
        assertEquals(at(yaml, "group_size"), e.problems().get(0).line() + ":" + e.problems().get(0).column());
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
