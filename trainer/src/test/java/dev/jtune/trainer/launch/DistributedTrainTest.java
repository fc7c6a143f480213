package dev.jtune.trainer.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.safetensors.SafetensorsFile;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real thing on CPU: {@code ./launch.sh --nproc-per-node 2 CONFIG.yml} (two worker JVMs, the TCP store, the
 * ring) trains the quickstart's tiny model to the same per-step losses and the same adapter as one process with
 * the same global batch (twice the gradient accumulation).
 */
class DistributedTrainTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> WORDS = List.of("red", "blue", "green", "gold", "pink", "cat", "dog", "fox", "owl",
            "bee", "sun", "moon");

    @TempDir
    static Path tmp;

    private static Path config(String name, int accumulation) throws Exception {
        Path data = tmp.resolve("rows.jsonl");
        if (!Files.exists(data)) {
            Random r = new Random(5);
            var sb = new StringBuilder();
            for (int i = 0; i < 48; i++) {
                String a = WORDS.get(r.nextInt(WORDS.size()));
                String b = WORDS.get(r.nextInt(WORDS.size()));
                sb.append("{\"instruction\": \"Which word comes last: ").append(a).append(", ").append(b)
                        .append("?\", \"output\": \"").append(b).append("\"}\n");
            }
            Files.writeString(data, sb.toString());
        }
        Path cfg = tmp.resolve(name + ".yml");
        Files.writeString(cfg, """
                base_model: %s
                base_model_init: tiny
                adapter: lora
                lora_r: 4
                lora_alpha: 8
                lora_target_linear: true
                datasets:
                  - path: %s
                    type: alpaca
                dataset_prepared_path: %s
                output_dir: %s
                sequence_len: 128
                sample_packing: true
                micro_batch_size: 2
                gradient_accumulation_steps: %d
                max_steps: 4
                learning_rate: 0.003
                warmup_steps: 1
                weight_decay: 0.01
                max_grad_norm: 1.0
                logging_steps: 1
                seed: 11
                """.formatted(tmp.resolve("tiny"), data, tmp.resolve("prepared"), tmp.resolve(name), accumulation));
        return cfg;
    }

    private static List<Double> losses(Path outputDir) throws Exception {
        return Files.readAllLines(outputDir.resolve("metrics.jsonl")).stream().map(DistributedTrainTest::json)
                .filter(n -> n.has("loss")).map(n -> n.get("loss").asDouble()).toList();
    }

    @Test
    void twoProcessesTrainAsOneWithTheSameGlobalBatch() throws Exception {
        Path one = config("one", 2);
        Path two = config("two", 1);
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        assertEquals(0, Launcher.run(new String[] {"--nproc-per-node", "1", one.toString()},
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8)),
                err.toString(StandardCharsets.UTF_8) + out.toString(StandardCharsets.UTF_8));
        int code = Launcher.run(new String[] {"--nproc-per-node", "2", two.toString()},
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(0, code, err.toString(StandardCharsets.UTF_8) + out.toString(StandardCharsets.UTF_8));

        Path logs = tmp.resolve("two/logs");
        assertTrue(Files.isRegularFile(logs.resolve("rank-0.log")) && Files.isRegularFile(logs.resolve("rank-1.log")));
        List<Double> a = losses(tmp.resolve("one"));
        List<Double> b = losses(tmp.resolve("two"));
        assertEquals(4, a.size());
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) {
            assertEquals(a.get(i), b.get(i), 1e-5 * Math.abs(a.get(i)), "step " + (i + 1) + ": " + a + " vs " + b);
        }
        try (SafetensorsFile x = SafetensorsFile.open(tmp.resolve("one/adapter_model.safetensors"));
                SafetensorsFile y = SafetensorsFile.open(tmp.resolve("two/adapter_model.safetensors"))) {
            assertEquals(x.names(), y.names());
            for (String name : x.names()) {
                float[] p = x.floats(name);
                float[] q = y.floats(name);
                double worst = 0;
                double scale = 0;
                for (int i = 0; i < p.length; i++) {
                    worst = Math.max(worst, Math.abs(p[i] - q[i]));
                    scale = Math.max(scale, Math.abs(p[i]));
                }
                assertTrue(worst <= 1e-5 * Math.max(scale, 1e-3), name + ": max diff " + worst + " of " + scale);
            }
        }
    }

    private static JsonNode json(String line) {
        try {
            return JSON.readTree(line);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
