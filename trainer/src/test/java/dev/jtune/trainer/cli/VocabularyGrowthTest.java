package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.tokenizer.ByteLevelTokenizerBuilder;
import dev.jtune.data.tokenizer.Tokenizer;
import dev.jtune.data.tokenizer.TokenizerEdits;
import dev.jtune.lora.PeftAdapter;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.hf.HfCheckpoint;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Growing the vocabulary (Axolotl's {@code tokens}, {@code special_tokens}, {@code resize_token_embeddings_to_32x}),
 * Chinese-LLaMA-Alpaca's shape of run on the tiny model: the grown tokenizer in the output, the embedding and head
 * grown and trained, the adapter scored, merged and scored again; and the refusals.
 */
class VocabularyGrowthTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int TINY_VOCAB = ByteLevelTokenizerBuilder.DEFAULT_VOCAB_SIZE;

    private static String config(Path dir, String keys) throws Exception {
        StringBuilder rows = new StringBuilder();
        String[][] pairs = {{"Greet in Chinese", "你好"}, {"Say world in Chinese", "世界"}, {"Greet the world", "你好世界"}};
        for (int i = 0; i < 24; i++) {
            rows.append("{\"instruction\": \"").append(pairs[i % 3][0]).append("\", \"output\": \"").append(pairs[i % 3][1])
                    .append("\"}\n");
        }
        Files.writeString(dir.resolve("zh.jsonl"), rows.toString());
        return """
                base_model: %s
                base_model_init: tiny
                datasets:
                  - path: %s
                    type: alpaca
                dataset_prepared_path: %s
                output_dir: %s
                sequence_len: 128
                sample_packing: true
                micro_batch_size: 4
                max_steps: 2
                learning_rate: 0.003
                seed: 7
                adapter: lora
                lora_r: 4
                lora_alpha: 8
                lora_target_modules: [q_proj, v_proj]
                %s
                """.formatted(dir.resolve("tiny"), dir.resolve("zh.jsonl"), dir.resolve("prepared"), dir.resolve("out"), keys);
    }

    private static String[] run(String verb, Path cfg) {
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        int code = Main.run(new String[] {verb, cfg.toString()}, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new String[] {Integer.toString(code), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)};
    }

    private static double meanNll(Path model, Path adapter, Path input) throws Exception {
        var scores = new ByteArrayOutputStream();
        assertEquals(0, ScoreCommand.score(model, adapter, input, Dtype.FP32, new PrintStream(scores, true, StandardCharsets.UTF_8)));
        String last = scores.toString(StandardCharsets.UTF_8).strip().lines().reduce((a, b) -> b).orElseThrow();
        return JSON.readTree(last).get("mean_nll").asDouble();
    }

    @Test
    void newTokensGrowTheModelTrainAndMerge(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("grow.yml");
        Files.writeString(cfg, config(dir, """
                bf16: true
                lora_modules_to_save: [embed_tokens, lm_head]
                tokens: ["你好", "世界"]
                special_tokens:
                  pad_token: "[PAD]"
                resize_token_embeddings_to_32x: true
                merge_lora_on_finish: true
                """));
        var console = new ByteArrayOutputStream();
        assertEquals(0, TrainCommand.train(cfg, new PrintStream(console, true, StandardCharsets.UTF_8)));
        String log = console.toString(StandardCharsets.UTF_8);
        assertTrue(log.contains("embedding and head grown to 544 rows"), log);
        Path out = dir.resolve("out");
        // The output holds the grown tokenizer: 512 + [PAD], 你好, 世界 (special tokens first, as Axolotl adds them).
        try (Tokenizer t = Tokenizer.load(out)) {
            assertEquals(TINY_VOCAB + 3, t.vocabSize());
            assertEquals(TINY_VOCAB, t.padId().getAsInt());
            assertEquals(TINY_VOCAB + 1, t.tokenToId("你好").getAsInt());
            assertEquals(TINY_VOCAB + 2, t.tokenToId("世界").getAsInt());
            assertArrayEquals(new int[] {TINY_VOCAB + 1, TINY_VOCAB + 2}, t.encode("你好世界", false));
        }
        // The adapter's copies have the 32x-rounded rows (ceil(515 / 32) * 32), and the new rows trained.
        PeftAdapter adapter = PeftAdapter.load(out);
        PeftAdapter.Tensor embed = adapter.tensors().get(PeftAdapter.savedKey("model.embed_tokens"));
        assertArrayEquals(new long[] {544, 128}, embed.shape());
        assertArrayEquals(new long[] {544, 128}, adapter.tensors().get(PeftAdapter.savedKey("lm_head")).shape());
        // merge_lora_on_finish: the merged model has the grown vocabulary and tokenizer.
        Path merged = out.resolve("merged");
        JsonNode mergedConfig = JSON.readTree(merged.resolve("config.json").toFile());
        assertEquals(544, mergedConfig.get("vocab_size").asInt());
        try (HfCheckpoint m = HfCheckpoint.open(merged)) {
            assertEquals(544, m.config().vocabSize());
            assertArrayEquals(embed.values(), m.floats("model.embed_tokens.weight"), "the merged embedding is the trained copy (stored exactly: the tiny base is fp32)");
        }
        try (Tokenizer t = Tokenizer.load(merged)) {
            assertEquals(TINY_VOCAB + 3, t.vocabSize());
        }
        // A grown embedding without a head of the same rows cannot merge into a consistent model.
        var tensors = new java.util.LinkedHashMap<>(adapter.tensors());
        tensors.remove(PeftAdapter.savedKey("lm_head"));
        var headless = new PeftAdapter(adapter.settings(), adapter.baseModelNameOrPath(), tensors);
        var e = org.junit.jupiter.api.Assertions.assertThrows(dev.jtune.lora.AdapterException.class,
                () -> dev.jtune.lora.LoraMerge.merge(dir.resolve("tiny"), headless, dir.resolve("bad-merge")));
        assertTrue(e.getMessage().contains("grows the vocabulary to 544 rows but has no lm_head"), e.getMessage());
        // score: the base grows to the adapter's rows; the adapter and the merged model score alike.
        Path input = dir.resolve("score.jsonl");
        Files.writeString(input, "{\"text\": \"你好世界 and 你好\"}\n{\"prompt\": \"Greet in Chinese: \", \"completion\": \"你好\"}\n");
        double withAdapter = meanNll(dir.resolve("tiny"), out, input);
        double fromMerged = meanNll(merged, null, input);
        assertEquals(withAdapter, fromMerged, 1e-5 * Math.abs(withAdapter));
        assertTrue(Double.isFinite(withAdapter));
        // inference with the grown adapter: the base grows to the adapter's rows, the tokenizer is the adapter's.
        var reply = new ByteArrayOutputStream();
        var inferLog = new ByteArrayOutputStream();
        int code = InferenceCommand.infer(new InferenceCommand.Options(cfg, "Greet in Chinese", out, null, 3, null, null,
                        null, null, Dtype.FP32), new java.io.BufferedReader(java.io.Reader.nullReader()),
                new PrintStream(reply, true, StandardCharsets.UTF_8), new PrintStream(inferLog, true, StandardCharsets.UTF_8),
                false);
        assertEquals(0, code, inferLog.toString(StandardCharsets.UTF_8));
        assertTrue(inferLog.toString(StandardCharsets.UTF_8).contains("+ adapter " + out), inferLog.toString(StandardCharsets.UTF_8));
    }

    @Test
    void fullFineTuningWritesTheGrownModelAndTokenizer(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("full.yml");
        Files.writeString(cfg, config(dir, "mean_resizing_embeddings: true\ntokens: [\"你好\", \"世界\"]\n")
                .replace("adapter: lora\n", "").replace("lora_r: 4\n", "").replace("lora_alpha: 8\n", "")
                .replace("lora_target_modules: [q_proj, v_proj]\n", "").replace("max_steps: 2", "max_steps: 1"));
        var console = new ByteArrayOutputStream();
        assertEquals(0, TrainCommand.train(cfg, new PrintStream(console, true, StandardCharsets.UTF_8)));
        String log = console.toString(StandardCharsets.UTF_8);
        assertTrue(log.contains("grown to " + (TINY_VOCAB + 2) + " rows (new rows from the old rows' mean"), log);
        Path out = dir.resolve("out");
        assertEquals(TINY_VOCAB + 2, JSON.readTree(out.resolve("config.json").toFile()).get("vocab_size").asInt());
        try (HfCheckpoint m = HfCheckpoint.open(out);
                Tokenizer t = Tokenizer.load(out)) {
            assertArrayEquals(new long[] {TINY_VOCAB + 2, 128}, m.shape("model.embed_tokens.weight"));
            assertArrayEquals(new long[] {TINY_VOCAB + 2, 128}, m.shape("lm_head.weight"));
            assertEquals(TINY_VOCAB + 2, t.vocabSize());
        }
    }

    @Test
    void growthWithoutTrainableEmbeddingsIsRefusedByTrainAndPreprocess(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("bad.yml");
        Files.writeString(cfg, config(dir, "tokens: [\"你好\", \"世界\"]\n"));
        // train creates the base model (base_model_init) and refuses before training.
        String[] t = run("train", cfg);
        assertEquals("1", t[0], t[1] + t[2]);
        assertTrue(t[2].contains("lora_modules_to_save: [embed_tokens, lm_head]") && t[2].contains(TINY_VOCAB + " to "
                + (TINY_VOCAB + 2)), t[2]);
        String[] p = run("preprocess", cfg);
        assertEquals("1", p[0], p[1] + p[2]);
        assertTrue(p[2].contains("lora_modules_to_save: [embed_tokens, lm_head]"), p[2]);
        assertFalse(Files.exists(dir.resolve("out/adapter_config.json")));
    }

    @Test
    void aTokenizerLargerThanTheModelIsRefusedNamingBothSizes(@TempDir Path dir) throws Exception {
        Path tok = dir.resolve("big-tokenizer");
        Path plain = dir.resolve("plain-tokenizer");
        ByteLevelTokenizerBuilder.writeDefault(plain);
        new TokenizerEdits(Map.of(), Map.of(), List.of("alpha1", "beta2", "gamma3")).writeTo(plain, tok);
        Path cfg = dir.resolve("bad.yml");
        Files.writeString(cfg, config(dir, "lora_modules_to_save: [embed_tokens, lm_head]\ntokenizer_config: " + tok + "\n"));
        for (String verb : List.of("train", "preprocess")) {
            String[] r = run(verb, cfg);
            assertEquals("1", r[0], verb + ": " + r[1] + r[2]);
            assertTrue(r[2].contains("has " + (TINY_VOCAB + 3) + " tokens") && r[2].contains("has " + TINY_VOCAB
                    + " embedding rows"), verb + ": " + r[2]);
        }
        assertFalse(Files.exists(dir.resolve("prepared")) && Files.list(dir.resolve("prepared")).findAny().isPresent(),
                "refused before the data work");
    }
}
