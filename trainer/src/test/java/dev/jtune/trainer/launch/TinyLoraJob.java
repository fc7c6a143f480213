package dev.jtune.trainer.launch;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;

/**
 * The quickstart's tiny LoRA training as a launcher job, for the tests that run real workers: its data and config
 * in a folder, its metrics, and the launcher run in a thread of its own whose console can be read while it runs.
 */
final class TinyLoraJob {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> WORDS = List.of("red", "blue", "green", "gold", "pink", "cat", "dog", "fox", "owl",
            "bee", "sun", "moon");

    /** Only a hang guard for a job that ends by itself (a tiny training, minutes at most on a busy machine). */
    static final Duration HANG_GUARD = Duration.ofMinutes(20);

    private TinyLoraJob() {}

    /**
     * Writes {@code dir/name.yml} (and, once, the data): output in {@code dir/name}, the tiny base model, data set
     * preparation shared by every config of {@code dir}; {@code extra} are more YAML lines (e.g. save_steps).
     */
    static Path config(Path dir, String name, int accumulation, int maxSteps, String extra) throws IOException {
        Path data = dir.resolve("rows.jsonl");
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
        Path cfg = dir.resolve(name + ".yml");
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
                max_steps: %d
                learning_rate: 0.003
                warmup_steps: 1
                weight_decay: 0.01
                max_grad_norm: 1.0
                logging_steps: 1
                seed: 11
                """.formatted(dir.resolve("tiny"), data, dir.resolve("prepared"), dir.resolve(name), accumulation,
                maxSteps) + extra);
        return cfg;
    }

    /** The per-step training losses in {@code outputDir/metrics.jsonl}, in order. */
    static List<Double> losses(Path outputDir) throws IOException {
        return Files.readAllLines(outputDir.resolve("metrics.jsonl")).stream().map(TinyLoraJob::json)
                .filter(n -> n.has("loss")).map(n -> n.get("loss").asDouble()).toList();
    }

    private static JsonNode json(String line) {
        try {
            return JSON.readTree(line);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** {@code ./launch.sh ARGV} running in its own thread. */
    static final class Launch {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();
        private final ByteArrayOutputStream err = new ByteArrayOutputStream();
        private final Thread thread;
        private volatile int code = Integer.MIN_VALUE;

        private Launch(String... argv) {
            thread = Thread.ofPlatform().name("launcher").start(() -> {
                try (var o = new PrintStream(out, true, StandardCharsets.UTF_8);
                        var e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
                    code = Launcher.run(argv, o, e);
                }
            });
        }

        static Launch start(String... argv) {
            return new Launch(argv);
        }

        /**
         * Its exit code once it ends. The bound is only a hang guard: a job that ends by itself is never failed for
         * being slow on a busy machine.
         */
        int await() throws InterruptedException {
            if (!thread.join(HANG_GUARD)) {
                throw new AssertionError("the launcher did not end within " + HANG_GUARD + " (a hang):\n" + console());
            }
            return code;
        }

        /** Waits until the console shows {@code line} (fails if the launcher ends first): an event, not a duration. */
        void awaitLine(String line) throws InterruptedException {
            while (!out().contains(line + "\n")) {
                if (!running() && !out().contains(line + "\n")) {
                    throw new AssertionError("the launcher ended before printing '" + line + "':\n" + console());
                }
                Thread.sleep(20);
            }
        }

        boolean running() {
            return thread.isAlive();
        }

        String out() {
            return out.toString(StandardCharsets.UTF_8);
        }

        String err() {
            return err.toString(StandardCharsets.UTF_8);
        }

        /** Both streams, for failure messages. */
        String console() {
            return err() + out();
        }
    }
}
