package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jtune.model.safetensors.SafetensorsFile;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * The small full fine-tuning runs of the training-feature tests (QAT, fp8, sparse fine-tuning): counting rows in a
 * shared folder, a config over them, a {@code train} that must succeed, and the saved weights.
 */
final class TinyTraining {
    private TinyTraining() {}

    /** Writes {@code dir/rows.jsonl}: {@code rows} Alpaca rows "Count to i." → "i i+1". */
    static void countingRows(Path dir, int rows) throws Exception {
        var sb = new StringBuilder();
        for (int i = 0; i < rows; i++) {
            sb.append("{\"instruction\": \"Count to ").append(i).append(".\", \"input\": \"\", \"output\": \"")
                    .append(i).append(" ").append(i + 1).append("\"}\n");
        }
        Files.writeString(dir.resolve("rows.jsonl"), sb.toString());
    }

    /** The tiny preset's random checkpoint in {@code dir/tiny} (seed 3, bf16) and 24 counting rows. */
    static void tinyModelAndRows(Path dir) throws Exception {
        InitModelCommand.initModel(dir.resolve("tiny"), "tiny", null, 3, true,
                new PrintStream(new ByteArrayOutputStream()));
        countingRows(dir, 24);
    }

    /** Full fine-tuning of {@code base} on {@code dir}'s rows into {@code dir/out}; {@code extra}: more YAML lines. */
    static String config(Path dir, Path base, String out, int sequenceLen, int maxSteps, String extra) {
        return """
                base_model: %s
                datasets:
                  - path: %s
                    type: alpaca
                dataset_prepared_path: %s
                output_dir: %s
                sequence_len: %d
                micro_batch_size: 2
                max_steps: %d
                learning_rate: 0.001
                logging_steps: 1
                seed: 7
                """.formatted(base, dir.resolve("rows.jsonl"), dir.resolve("prepared"), dir.resolve(out), sequenceLen,
                maxSteps) + extra;
    }

    /** Writes {@code dir/name.yml} and trains it; the console, after asserting the exit status 0. */
    static String train(Path dir, String name, String yaml) throws Exception {
        Path cfg = dir.resolve(name + ".yml");
        Files.writeString(cfg, yaml);
        var out = new ByteArrayOutputStream();
        int code = TrainCommand.train(cfg, new PrintStream(out, true, StandardCharsets.UTF_8));
        String text = out.toString(StandardCharsets.UTF_8);
        assertEquals(0, code, text);
        return text;
    }

    /** Every tensor of {@code outputDir/model.safetensors} as its stored bytes, by name. */
    static Map<String, byte[]> weightBytes(Path outputDir) throws Exception {
        Map<String, byte[]> all = new TreeMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(outputDir.resolve("model.safetensors"))) {
            for (String name : f.names()) all.put(name, f.bytes(name));
        }
        return all;
    }
}
