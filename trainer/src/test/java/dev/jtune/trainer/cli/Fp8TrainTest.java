package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.config.ConfigException;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Axolotl's {@code fp8: true} in training: full fine-tuning of the tiny model with torchao's Float8Linear emulated
 * (the numerics are Fp8FixtureTest's) on every projection but the first and lm_head; the deferred backward gives the
 * same weights whether the layers keep their activations or are recomputed (gradient_checkpointing); fp32 and bf16;
 * and what jtune does not run refused at load with its position.
 */
class Fp8TrainTest {
    @TempDir
    static Path shared;

    @BeforeAll
    static void data() throws Exception {
        TinyTraining.tinyModelAndRows(shared);
    }

    private static String config(String out, String extra) {
        return TinyTraining.config(shared, shared.resolve("tiny"), out, 128, 2, extra);
    }

    private static String train(String name, String yaml) throws Exception {
        return TinyTraining.train(shared, name, yaml);
    }

    private static Map<String, byte[]> weights(String out) throws Exception {
        return TinyTraining.weightBytes(shared.resolve(out));
    }

    private static int differing(Map<String, byte[]> a, Map<String, byte[]> b) {
        assertEquals(a.keySet(), b.keySet());
        int n = 0;
        for (String k : a.keySet()) n += Arrays.equals(a.get(k), b.get(k)) ? 0 : 1;
        return n;
    }

    @Test
    void fp8TrainsTheConvertedProjectionsTheSameWithAndWithoutCheckpointing() throws Exception {
        for (String precision : List.of("", "bf16: true\n")) {
            String tag = precision.isEmpty() ? "fp32" : "bf16";
            train("plain-" + tag, config("plain-" + tag, precision));
            String log = train("fp8-" + tag, config("fp8-" + tag, precision + "fp8: true\n"));
            train("fp8-ckpt-" + tag, config("fp8-ckpt-" + tag, precision + "fp8: true\ngradient_checkpointing: true\n"));
            // The tiny preset: 4 layers of 7 projections and lm_head, every size a multiple of 16; layer 0's q_proj
            // and lm_head stay as they are.
            assertTrue(log.contains("on 27 projections"), log);
            Map<String, byte[]> plain = weights("plain-" + tag);
            Map<String, byte[]> fp8 = weights("fp8-" + tag);
            assertEquals(0, differing(fp8, weights("fp8-ckpt-" + tag)), tag + ": checkpointing changed fp8's weights");
            // Every projection trains differently under fp8 (its own product or the gradients reaching it); in fp32
            // every tensor does (in bf16 a norm weight at 1.0 moves by less than half its ulp in both runs).
            for (String k : plain.keySet()) {
                if (k.contains("proj") || k.contains("embed") || precision.isEmpty()) {
                    assertFalse(Arrays.equals(plain.get(k), fp8.get(k)), tag + ": " + k + " the same as without fp8");
                }
            }
        }
    }

    @Test
    void adapterAndQatAreRefusedAtTheKey(@TempDir Path dir) throws Exception {
        String yaml = config("refused", """
                adapter: lora
                lora_r: 2
                lora_alpha: 4
                lora_target_modules: [q_proj]
                qat:
                  activation_dtype: int8
                  weight_dtype: int4
                fp8: true
                """);
        Files.writeString(dir.resolve("cfg.yml"), yaml);
        var sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        var e = assertThrows(ConfigException.class, () -> PreprocessCommand.run(new String[] {"cfg.yml"}, sink, sink,
                PreprocessCommand::sampleSource, dir, false));
        List<String> fp8 = new ArrayList<>();
        for (ConfigException p : e.problems()) {
            if (p.problem().startsWith("fp8")) {
                fp8.add(p.problem() + " @" + p.line() + ":" + p.column());
            }
        }
        int line = (int) yaml.lines().takeWhile(l -> !l.startsWith("fp8:")).count() + 1;
        assertEquals(2, fp8.size(), e.getMessage());
        assertTrue(fp8.get(0).startsWith("fp8: true with adapter: lora is not implemented"), fp8.toString());
        assertTrue(fp8.get(1).startsWith("fp8: true with qat: both replace the projections' products"), fp8.toString());
        fp8.forEach(p -> assertTrue(p.endsWith("@" + line + ":1"), p));
    }
}
