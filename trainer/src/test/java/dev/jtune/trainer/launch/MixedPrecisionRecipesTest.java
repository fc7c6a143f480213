package dev.jtune.trainer.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsFile;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Two historic full fine-tuning recipes as Axolotl configs (test resources recipes/*.yml, with their provenance):
 * Stanford Alpaca's (bf16, FSDP full_shard auto_wrap) and Vicuna's (FastChat's train_vicuna_7b.sh: fp16, FSDP,
 * gradient checkpointing), on the tiny model, through {@code ./launch.sh}: one process with twice the gradient
 * accumulation and two FSDP processes train with fp32 master weights to the same losses and weights, and leave an
 * F32 model.safetensors.
 */
class MixedPrecisionRecipesTest {
    @TempDir
    static Path tmp;

    @ParameterizedTest
    @CsvSource({"stanford_alpaca.yml, bf16, accelerate runs FSDP mixed precision",
            "vicuna_7b.yml, fp16, dynamic loss scaling"})
    void oneAndTwoProcessesTrainAlike(String recipe, String precision, String note) throws Exception {
        String name = recipe.replace(".yml", "");
        Path one = config(recipe, name + "-one", 2);
        Path two = config(recipe, name + "-two", 1);
        TinyLoraJob.Launch first = TinyLoraJob.Launch.start("--nproc-per-node", "1", one.toString());
        assertEquals(0, first.await(), first.console());
        TinyLoraJob.Launch second = TinyLoraJob.Launch.start("--nproc-per-node", "2", two.toString());
        assertEquals(0, second.await(), second.console());
        for (TinyLoraJob.Launch l : List.of(first, second)) {
            assertTrue(l.out().contains("info: full fine-tuning in mixed precision: fp32 master weights and AdamW"
                    + " state, " + precision + " forward and backward") && l.out().contains(note), l.out());
            assertTrue(l.out().contains("full fine-tuning in " + precision + " compute, fp32 master weights"), l.out());
        }
        assertTrue(second.out().contains("FSDP (trainable tensors, gradients and optimizer state sharded)"),
                second.out());

        List<Double> a = TinyLoraJob.losses(tmp.resolve(name + "-one"));
        List<Double> b = TinyLoraJob.losses(tmp.resolve(name + "-two"));
        System.out.println("recipe " + name + ": one process " + a + ", two FSDP processes " + b);
        assertEquals(3, a.size());
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) {
            assertEquals(a.get(i), b.get(i), 1e-4 * a.get(i), "step " + (i + 1) + ": " + a + " vs " + b);
        }
        double lr = 2e-5;
        try (SafetensorsFile x = SafetensorsFile.open(tmp.resolve(name + "-one/model.safetensors"));
                SafetensorsFile y = SafetensorsFile.open(tmp.resolve(name + "-two/model.safetensors"))) {
            assertEquals(x.names(), y.names());
            long n = 0, close = 0;
            for (String t : x.names()) {
                // Axolotl + accelerate save the upcast fp32 parameters (save_pretrained writes their dtype).
                assertEquals(SafetensorsDtype.F32, x.info(t).dtype(), t);
                float[] p = x.floats(t);
                float[] q = y.floats(t);
                for (int i = 0; i < p.length; i++, n++) {
                    if (Math.abs(p[i] - q[i]) <= 0.1 * lr) close++;
                }
            }
            assertTrue(close >= 0.99 * n, close + " of " + n + " weights within 0.1·lr");
        }
        assertTrue(Files.readString(tmp.resolve(name + "-two/config.json")).contains("\"torch_dtype\" : \"float32\""));
    }

    /**
     * The recipe with the test's paths, three steps of micro-batches of 2 rows, and {@code accumulation} (the
     * recipe's own values are checked to be there before they are replaced).
     */
    private static Path config(String recipe, String name, int accumulation) throws IOException {
        TinyLoraJob.config(tmp, "data-only", 1, 1, ""); // writes tmp/rows.jsonl once
        String text;
        try (InputStream in = MixedPrecisionRecipesTest.class.getResourceAsStream("/recipes/" + recipe)) {
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        text = text.replace("@BASE_MODEL@", tmp.resolve("tiny").toString())
                .replace("@DATA@", tmp.resolve("rows.jsonl").toString())
                .replace("@PREPARED@", tmp.resolve("prepared-" + name).toString())
                .replace("@OUTPUT@", tmp.resolve(name).toString());
        text = replaceLine(text, "micro_batch_size: ", "micro_batch_size: 2");
        text = replaceLine(text, "gradient_accumulation_steps: ", "gradient_accumulation_steps: " + accumulation);
        text = replaceLine(text, "num_epochs: 3", "max_steps: 3");
        Path cfg = tmp.resolve(name + ".yml");
        Files.writeString(cfg, text);
        return cfg;
    }

    private static String replaceLine(String text, String prefix, String line) {
        List<String> lines = text.lines().toList();
        assertEquals(1, lines.stream().filter(l -> l.startsWith(prefix)).count(), prefix);
        return String.join("\n", lines.stream().map(l -> l.startsWith(prefix) ? line : l).toList()) + "\n";
    }
}
