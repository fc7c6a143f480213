package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.lora.PeftAdapter;
import dev.jtune.model.safetensors.SafetensorsFile;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code load_in_8bit: true} with {@code adapter: lora} (Axolotl's combination, 20 of its example configs) trains
 * LoRA over an LLM.int8 base: the loss falls, the adapter differs from the one trained over the 16-bit base (the key
 * changes the result), the merged model is written; the combinations Axolotl refuses are refused, naming the key.
 */
class Int8TrainTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> WORDS = List.of("red", "blue", "green", "gold", "pink", "cat", "dog", "fox", "owl",
            "bee", "sun", "moon");

    private static String config(Path dir, String out, String keys) throws Exception {
        Random r = new Random(5);
        var sb = new StringBuilder();
        for (int i = 0; i < 40; i++) {
            String a = WORDS.get(r.nextInt(WORDS.size()));
            String b = WORDS.get(r.nextInt(WORDS.size()));
            sb.append("{\"instruction\": \"Which word comes last: ").append(a).append(", ").append(b)
                    .append("?\", \"output\": \"").append(b).append("\"}\n");
        }
        Path rows = dir.resolve("rows.jsonl");
        Files.writeString(rows, sb.toString());
        return """
                base_model: %s
                base_model_init: tiny
                datasets:
                  - path: %s
                    type: alpaca
                val_set_size: 8
                dataset_prepared_path: %s
                output_dir: %s
                sequence_len: 128
                sample_packing: true
                micro_batch_size: 2
                max_steps: 6
                learning_rate: 0.003
                warmup_steps: 1
                logging_steps: 2
                eval_steps: 3
                seed: 7
                bf16: true
                adapter: lora
                lora_r: 4
                lora_alpha: 8
                lora_target_linear: true
                %s
                """.formatted(dir.resolve("tiny"), rows, dir.resolve("prepared"), dir.resolve(out), keys);
    }

    private static String train(Path cfg) throws Exception {
        var out = new ByteArrayOutputStream();
        int code = TrainCommand.train(cfg, new PrintStream(out, true, StandardCharsets.UTF_8));
        String text = out.toString(StandardCharsets.UTF_8);
        assertEquals(0, code, text);
        return text;
    }

    private static List<Double> evalLosses(Path out) throws Exception {
        return Files.readAllLines(out.resolve("metrics.jsonl")).stream().map(l -> {
            try {
                return JSON.readTree(l);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }).filter(n -> n.has("eval_loss")).map(n -> n.get("eval_loss").asDouble()).toList();
    }

    private static float[] loraB(Path out) throws Exception {
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("adapter_model.safetensors"))) {
            String name = f.names().stream().filter(n -> n.contains("layers.1.mlp.down_proj.lora_B")).findFirst()
                    .orElseThrow();
            return f.floats(name);
        }
    }

    @Test
    void loraOverTheInt8BaseTrainsAndDiffersFromTheSixteenBitBase(@TempDir Path dir) throws Exception {
        Path int8 = dir.resolve("int8.yml");
        Files.writeString(int8, config(dir, "out8", "load_in_8bit: true\nmerge_lora_on_finish: true\n"));
        String log = train(int8);
        assertTrue(log.contains("bf16 base in LLM.int8 (8-bit, outlier threshold 6.0), lora r=4"), log);
        List<Double> losses = evalLosses(dir.resolve("out8"));
        assertTrue(losses.get(losses.size() - 1) < losses.get(0) - 0.1, "the held-out loss falls: " + losses);
        PeftAdapter adapter = PeftAdapter.load(dir.resolve("out8"));
        assertEquals(7 * 4 * 2, adapter.tensors().size(), "A and B for 7 projections x 4 layers");
        assertTrue(Files.isRegularFile(dir.resolve("out8/merged/model.safetensors")), "merged into the dense base");

        Path bf16 = dir.resolve("bf16.yml");
        Files.writeString(bf16, config(dir, "out16", ""));
        String log16 = train(bf16);
        assertFalse(log16.contains("LLM.int8"), log16);
        List<Double> losses16 = evalLosses(dir.resolve("out16"));
        // The same adapter init and data: the base alone makes the difference, from the first evaluation on.
        System.out.println("held-out losses over the LLM.int8 base " + losses + ", over the bf16 base " + losses16);
        assertTrue(!losses16.get(0).equals(losses.get(0)), "int8 " + losses + " vs bf16 " + losses16);
        assertFalse(Arrays.equals(loraB(dir.resolve("out8")), loraB(dir.resolve("out16"))),
                "load_in_8bit changes the trained adapter");
        assertFalse(Arrays.equals(Files.readAllBytes(dir.resolve("out8/adapter_model.safetensors")),
                Files.readAllBytes(dir.resolve("out16/adapter_model.safetensors"))));
    }

    @Test
    void gradientCheckpointingGivesTheSameAdapter(@TempDir Path dir) throws Exception {
        // The recomputed forward refills the shared dequantized-weight buffers (prepareBackward) as the first did.
        for (String gc : List.of("false", "true")) {
            Path cfg = dir.resolve("gc-" + gc + ".yml");
            Files.writeString(cfg, config(dir, "out-" + gc, "load_in_8bit: true\ngradient_checkpointing: " + gc + "\n")
                    .replace("max_steps: 6", "max_steps: 3"));
            train(cfg);
        }
        assertTrue(Arrays.equals(Files.readAllBytes(dir.resolve("out-false/adapter_model.safetensors")),
                Files.readAllBytes(dir.resolve("out-true/adapter_model.safetensors"))), "bit for bit");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "adapter: qlora\\nload_in_8bit: true|load_in_8bit: true with adapter: qlora: Axolotl refuses it",
            "load_in_8bit: true\\nload_in_4bit: true|load_in_8bit: true with load_in_4bit: true is not supported",
    })
    void combinationsAxolotlRefusesAreRefused(String keys, String message, @TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("bad.yml");
        String text = config(dir, "out", keys.replace("\\n", "\n"));
        if (keys.contains("adapter: qlora")) {
            text = text.replace("adapter: lora\n", ""); // a YAML key once: the case's adapter replaces the template's
        }
        Files.writeString(cfg, text);
        for (String verb : List.of("train", "preprocess")) {
            var err = new ByteArrayOutputStream();
            int code = Main.run(new String[] {verb, cfg.toString()}, new PrintStream(new ByteArrayOutputStream()),
                    new PrintStream(err, true, StandardCharsets.UTF_8));
            String printed = err.toString(StandardCharsets.UTF_8);
            assertEquals(1, code, verb + ": " + printed);
            assertTrue(printed.contains(message), verb + ": " + printed);
            assertTrue(printed.contains("bad.yml"), "names the file: " + printed);
        }
        assertFalse(Files.exists(dir.resolve("out/adapter_config.json")));
        assertFalse(Files.exists(dir.resolve("prepared")), "refused before any data work");
    }

    /** Rank 0 of two, for a refusal that must come before any collective (each call here fails the test). */
    private static final class TwoRanks implements dev.jtune.trainer.dist.ProcessGroup {
        @Override public int rank() { return 0; }
        @Override public int worldSize() { return 2; }
        @Override public void allReduceSum(ai.djl.ndarray.NDArray x) { throw new AssertionError("allReduceSum"); }
        @Override public ai.djl.ndarray.NDArray allGather(ai.djl.ndarray.NDArray x) { throw new AssertionError("allGather"); }
        @Override public ai.djl.ndarray.NDArray reduceScatterSum(ai.djl.ndarray.NDArray x) {
            throw new AssertionError("reduceScatterSum");
        }
        @Override public void broadcast(ai.djl.ndarray.NDArray x, int root) { throw new AssertionError("broadcast"); }
        @Override public void barrier() { throw new AssertionError("barrier: the refusal came after rank 0's work"); }
        @Override public void close() {}
    }

    @Test
    void fsdpOverAnInt8BaseIsRefusedBeforeAnyWork(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("fsdp.yml");
        Files.writeString(cfg, config(dir, "out", "load_in_8bit: true\nfsdp:\n  - full_shard\n  - auto_wrap\n"));
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () ->
                TrainCommand.train(cfg, new PrintStream(new ByteArrayOutputStream()), new TwoRanks()));
        assertTrue(e.getMessage().contains("fsdp.yml: load_in_8bit: true with fsdp is not supported"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("prepared")), "no data work");
        assertFalse(Files.exists(dir.resolve("tiny")), "no base model created");
    }

    @Test
    void fullFineTuningOfAnInt8BaseIsRefused(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("full.yml");
        String text = config(dir, "out", "load_in_8bit: true").replace("adapter: lora\nlora_r: 4\nlora_alpha: 8\n"
                + "lora_target_linear: true\n", "");
        Files.writeString(cfg, text);
        var err = new ByteArrayOutputStream();
        int code = Main.run(new String[] {"train", cfg.toString()}, new PrintStream(new ByteArrayOutputStream()),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        String printed = err.toString(StandardCharsets.UTF_8);
        assertEquals(1, code, printed);
        assertTrue(printed.contains("load_in_8bit: true needs adapter: lora"), printed);
    }
}
