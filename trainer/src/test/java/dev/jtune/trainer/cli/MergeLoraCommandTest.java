package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.lora.LoraSettings;
import dev.jtune.lora.PeftAdapter;
import dev.jtune.model.safetensors.SafetensorsCheckpoint;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MergeLoraCommandTest {
    @TempDir
    Path tmp;

    @Test
    void mergesIntoOutputDirMergedByDefault() throws Exception {
        Path base = tmp.resolve("base");
        InitModelCommand.initModel(base, "tiny", null, 1, false, new PrintStream(new ByteArrayOutputStream()));
        Path out = tmp.resolve("run");
        float[] a = new float[2 * 128];
        float[] b = new float[128 * 2];
        a[0] = 1f;
        b[0] = 0.5f; // delta[0][0] = scaling (2/2) · B[0][0] · A[0][0] = 0.5
        var s = new LoraSettings(LoraSettings.Adapter.LORA, 2, 2, 0, List.of("q_proj"), false, List.of());
        new PeftAdapter(s, base.toString(), Map.of(
                PeftAdapter.loraAKey("model.layers.0.self_attn.q_proj"), new PeftAdapter.Tensor(new long[] {2, 128}, a),
                PeftAdapter.loraBKey("model.layers.0.self_attn.q_proj"), new PeftAdapter.Tensor(new long[] {128, 2}, b)))
                .save(out);
        Path yml = tmp.resolve("cfg.yml");
        Files.writeString(yml, "base_model: " + base + "\ndatasets:\n  - path: d.jsonl\n    type: completion\n"
                + "output_dir: " + out + "\n");
        var stdout = new ByteArrayOutputStream();
        var stderr = new ByteArrayOutputStream();
        PrintStream old = System.out;
        System.setOut(new PrintStream(stdout, true, StandardCharsets.UTF_8));
        int code;
        try {
            code = Main.run(new String[] {"merge-lora", yml.toString()}, System.out, new PrintStream(stderr));
        } finally {
            System.setOut(old);
        }
        assertEquals(0, code, stderr.toString());
        Path merged = out.resolve("merged");
        assertTrue(Files.exists(merged.resolve("tokenizer.json")) && Files.exists(merged.resolve("config.json")));
        try (var m = SafetensorsCheckpoint.open(merged); var o = SafetensorsCheckpoint.open(base)) {
            String q = "model.layers.0.self_attn.q_proj.weight";
            assertEquals(o.floats(q)[0] + 0.5f, m.floats(q)[0], 1e-6);
            assertEquals(o.floats(q)[1], m.floats(q)[1]);
        }

        int missing = Main.run(new String[] {"merge-lora", yml.toString(), "--lora-model-dir", tmp.resolve("none")
                .toString()}, new PrintStream(new ByteArrayOutputStream()), new PrintStream(stderr));
        assertEquals(1, missing);
        assertTrue(stderr.toString().contains("no adapter_config.json"), stderr.toString());
    }
}
