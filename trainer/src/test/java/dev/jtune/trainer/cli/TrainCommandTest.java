package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.lora.PeftAdapter;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.hf.HfCheckpoint;
import dev.jtune.model.llama.LlamaModel;
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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code train} end to end on a tiny model: QLoRA with exact-match eval and merge, and full fine-tuning. */
class TrainCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> WORDS = List.of("red", "blue", "green", "gold", "pink", "cat", "dog", "fox", "owl",
            "bee", "sun", "moon");

    private static Path data(Path dir) throws Exception {
        Random r = new Random(5);
        var sb = new StringBuilder();
        for (int i = 0; i < 40; i++) {
            String a = WORDS.get(r.nextInt(WORDS.size()));
            String b = WORDS.get(r.nextInt(WORDS.size()));
            sb.append("{\"instruction\": \"Which word comes last: ").append(a).append(", ").append(b)
                    .append("?\", \"output\": \"").append(b).append("\"}\n");
        }
        Path file = dir.resolve("rows.jsonl");
        Files.writeString(file, sb.toString());
        return file;
    }

    private static String config(Path dir, String adapterKeys) throws Exception {
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
                save_steps: 3
                logging_steps: 2
                eval_steps: 3
                seed: 7
                %s
                """.formatted(dir.resolve("tiny"), data(dir), dir.resolve("prepared"), dir.resolve("out"), adapterKeys);
    }

    /** The recipe with its console captured. */
    private static String run(Path cfg, int expectedCode) throws Exception {
        var out = new ByteArrayOutputStream();
        int code = TrainCommand.train(cfg, new PrintStream(out, true, StandardCharsets.UTF_8));
        String text = out.toString(StandardCharsets.UTF_8);
        assertEquals(expectedCode, code, text);
        return text;
    }

    /** As {@code ./launch.sh CONFIG.yml}: Main routes a config file to train. */
    private static void launch(Path cfg) {
        var err = new ByteArrayOutputStream();
        int code = Main.run(new String[] {cfg.toString()}, new PrintStream(new ByteArrayOutputStream()),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(0, code, err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void qloraRunLeavesAPeftAdapterAndAMergedModel(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("qlora.yml");
        Files.writeString(cfg, config(dir, """
                load_in_4bit: true
                adapter: qlora
                lora_r: 4
                lora_alpha: 8
                lora_target_linear: true
                do_causal_lm_eval: true
                eval_causal_lm_metrics: [exact_match]
                merge_lora_on_finish: true
                """));
        String out = run(cfg, 0);
        assertTrue(Files.isRegularFile(dir.resolve("tiny/config.json")), "base_model_init created the base");
        assertTrue(out.contains("(prepared now)"), "a first run says it prepared the data: " + out);
        assertTrue(out.contains("in NF4"), out);
        assertTrue(out.contains("exact match before training"), out);
        assertTrue(out.contains("exact match on held-out samples"), out);
        assertTrue(out.contains("held-out loss:"), out);

        Path o = dir.resolve("out");
        PeftAdapter adapter = PeftAdapter.load(o);
        assertEquals(4, adapter.settings().r());
        assertEquals(7 * 4 * 2, adapter.tensors().size(), "A and B for 7 projections x 4 layers");
        try (SafetensorsFile f = SafetensorsFile.open(o.resolve("adapter_model.safetensors"))) {
            boolean trained = false;
            for (String name : f.names()) {
                if (name.contains("lora_B")) {
                    for (float v : f.floats(name)) trained |= v != 0;
                }
            }
            assertTrue(trained, "training moved lora_B away from its zero init");
        }
        List<JsonNode> metrics = Files.readAllLines(o.resolve("metrics.jsonl")).stream().map(TrainCommandTest::json).toList();
        assertEquals(3, metrics.stream().filter(n -> n.has("loss")).count(), "logging every 2 of 6 steps");
        assertEquals(List.of(0L, 3L, 6L), metrics.stream().filter(n -> n.has("eval_loss")).map(n -> n.get("step").asLong()).toList());
        assertTrue(Files.isDirectory(o.resolve("checkpoint-6")));
        assertTrue(Files.isRegularFile(o.resolve("merged/model.safetensors")));
        assertTrue(Files.isRegularFile(o.resolve("merged/tokenizer.json")));
        try (NDManager m = Torch.newManager(); HfCheckpoint merged = HfCheckpoint.open(o.resolve("merged"));
                LlamaModel model = LlamaModel.load(merged.config(), merged, Dtype.FP32, m)) {
            assertEquals(4, model.layers().size());
        }
        // A second run reuses the prepared data and, told to resume, picks up at the last checkpoint.
        Files.writeString(cfg, Files.readString(cfg) + "resume_from_checkpoint: auto\n");
        String again = run(cfg, 0);
        assertTrue(again.contains("(reused)"), again);
        assertTrue(again.contains("resumed at step 6"), again);
    }

    @Test
    void fullFineTuningLeavesAModelDirectory(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("full.yml");
        Files.writeString(cfg, config(dir, "max_grad_norm: 1.0\n").replace("max_steps: 6", "max_steps: 2"));
        launch(cfg);
        Path o = dir.resolve("out");
        for (String name : List.of("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")) {
            assertTrue(Files.isRegularFile(o.resolve(name)), name);
        }
        assertFalse(Files.exists(o.resolve("adapter_config.json")));
        try (NDManager m = Torch.newManager(); HfCheckpoint trained = HfCheckpoint.open(o);
                HfCheckpoint base = HfCheckpoint.open(dir.resolve("tiny"))) {
            String w = "model.layers.0.mlp.down_proj.weight";
            assertFalse(java.util.Arrays.equals(base.floats(w), trained.floats(w)), "the weights were trained");
        }
    }

    /**
     * Chinese-LLaMA-Alpaca's shape of run: LoRA plus trainable embeddings and head (fp32 copies) over a 16-bit
     * base. The embedding's fp32 rows must be cast to the compute dtype before the first layer in every pass —
     * training, evaluation, cached generation, scoring — which once held in scoring alone.
     */
    @ParameterizedTest
    @ValueSource(strings = {"bf16", "fp16"})
    void trainableEmbeddingsAndHeadTrainInHalfPrecisionAndReload(String precision, @TempDir Path dir) throws Exception {
        Path cfg = dir.resolve(precision + ".yml");
        Files.writeString(cfg, config(dir, """
                %s: true
                adapter: lora
                lora_r: 4
                lora_alpha: 8
                lora_target_modules: [q_proj, v_proj]
                lora_modules_to_save: [embed_tokens, lm_head]
                do_causal_lm_eval: true
                eval_causal_lm_metrics: [exact_match]
                """.formatted(precision)).replace("max_steps: 6", "max_steps: 3"));
        String out = run(cfg, 0);
        assertTrue(out.contains("held-out loss:"), out);
        Path o = dir.resolve("out");
        PeftAdapter adapter = PeftAdapter.load(o);
        String embed = PeftAdapter.savedKey("model.embed_tokens");
        assertTrue(adapter.tensors().containsKey(embed), adapter.tensors().keySet().toString());
        assertTrue(adapter.tensors().containsKey(PeftAdapter.savedKey("lm_head")), adapter.tensors().keySet().toString());
        try (HfCheckpoint base = HfCheckpoint.open(dir.resolve("tiny"))) {
            assertFalse(java.util.Arrays.equals(base.floats("model.embed_tokens.weight"), adapter.tensors().get(embed).values()),
                    "the embedding copy was trained");
        }
        // score --dtype bf16 with the adapter applied
        Path input = dir.resolve("score.jsonl");
        Files.writeString(input, "{\"text\": \"Which word comes last: red, cat?\"}\n");
        var scores = new ByteArrayOutputStream();
        assertEquals(0, ScoreCommand.score(dir.resolve("tiny"), o, input, Dtype.BF16,
                new PrintStream(scores, true, StandardCharsets.UTF_8)));
        JsonNode summary = json(scores.toString(StandardCharsets.UTF_8).strip().lines().reduce((a, b) -> b).orElseThrow());
        assertTrue(summary.get("mean_nll").isNumber() && Double.isFinite(summary.get("mean_nll").asDouble()), summary.toString());
        // inference --dtype bf16 with the adapter: cached generation through the same decoder
        var reply = new ByteArrayOutputStream();
        var log = new ByteArrayOutputStream();
        int code = InferenceCommand.infer(new InferenceCommand.Options(cfg, "Which word comes last: red, cat?", o, null, 4,
                        null, null, null, null, Dtype.BF16), new java.io.BufferedReader(java.io.Reader.nullReader()),
                new PrintStream(reply, true, StandardCharsets.UTF_8), new PrintStream(log, true, StandardCharsets.UTF_8),
                false);
        assertEquals(0, code, log.toString(StandardCharsets.UTF_8));
        assertTrue(log.toString(StandardCharsets.UTF_8).contains("(bf16) + adapter"), log.toString(StandardCharsets.UTF_8));
    }

    /** {@code lora_model_dir} in a train config continues that adapter (Axolotl loads it trainable), not a fresh one. */
    @Test
    void loraModelDirContinuesTrainingThatAdapter(@TempDir Path dir) throws Exception {
        String keys = """
                adapter: lora
                lora_r: 4
                lora_alpha: 8
                lora_target_linear: true
                """;
        Path first = dir.resolve("first.yml");
        Files.writeString(first, config(dir, keys).replace("max_steps: 6", "max_steps: 2"));
        run(first, 0);
        Path second = dir.resolve("second.yml");
        Files.writeString(second, config(dir, keys + "lora_model_dir: " + dir.resolve("out") + "\n")
                .replace("max_steps: 6", "max_steps: 2").replace("output_dir: " + dir.resolve("out"),
                        "output_dir: " + dir.resolve("out2")));
        String out = run(second, 0);
        assertTrue(out.contains("continuing the adapter in " + dir.resolve("out")), out);
        List<JsonNode> a = Files.readAllLines(dir.resolve("out/metrics.jsonl")).stream().map(TrainCommandTest::json)
                .filter(n -> n.has("eval_loss")).toList();
        List<JsonNode> b = Files.readAllLines(dir.resolve("out2/metrics.jsonl")).stream().map(TrainCommandTest::json)
                .filter(n -> n.has("eval_loss")).toList();
        assertEquals(0, b.get(0).get("step").asLong());
        assertEquals(a.get(a.size() - 1).get("eval_loss").asDouble(), b.get(0).get("eval_loss").asDouble(), 1e-12,
                "the second run starts where the first ended");
        assertTrue(a.get(0).get("eval_loss").asDouble() != b.get(0).get("eval_loss").asDouble(), "and not afresh");
    }

    /** Keys whose effect jtune lacks are refused by train and preprocess alike, naming the key: never ignored. */
    @ParameterizedTest
    @ValueSource(strings = {"gptq: true", "mora: true"})
    void keysJtuneCannotHonourAreRefusedNotIgnored(String line, @TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("bad.yml");
        Files.writeString(cfg, config(dir, "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n" + line
                + "\n"));
        for (String verb : List.of("train", "preprocess")) {
            var err = new ByteArrayOutputStream();
            int code = Main.run(new String[] {verb, cfg.toString()}, new PrintStream(new ByteArrayOutputStream()),
                    new PrintStream(err, true, StandardCharsets.UTF_8));
            String text = err.toString(StandardCharsets.UTF_8);
            assertEquals(1, code, verb + ": " + text);
            assertTrue(text.contains(line.substring(0, line.indexOf(':'))) && text.contains("not supported"),
                    verb + ": " + text);
        }
        assertFalse(Files.exists(dir.resolve("out/adapter_config.json")));
        // Refused when the config loads, so every verb refuses it, naming the line.
        var e = assertThrows(dev.jtune.data.config.ConfigException.class, () -> dev.jtune.data.config.TrainConfig.load(cfg));
        assertTrue(e.getMessage().contains(line + " is not supported"), e.getMessage());
    }

    /** curriculum_sampling over packed rows (the base config packs): Axolotl packs the sequential order per epoch; refused when it loads. */
    @Test
    void curriculumSamplingWithPackingIsRefused(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("curriculum.yml");
        Files.writeString(cfg, config(dir, "curriculum_sampling: true\n"));
        var err = new ByteArrayOutputStream();
        int code = Main.run(new String[] {"preprocess", cfg.toString()}, new PrintStream(new ByteArrayOutputStream()),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        String text = err.toString(StandardCharsets.UTF_8);
        assertEquals(1, code, text);
        assertTrue(text.contains("curriculum_sampling: true with sample_packing: true is not supported"), text);
    }

    /** Keys jtune honours its own way, or services it does not reach: one line each, once, and the run goes on. */
    @Test
    void equivalentAndOfflineKeysPrintOneLineEach(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("noted.yml");
        Files.writeString(cfg, config(dir, "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n"
                + "attn_implementation: flash_attention_2\nhub_model_id: me/tiny\noptimizer: paged_adamw_32bit\n"
                + "max_steps: 1\n").replace("max_steps: 6\n", ""));
        String out = run(cfg, 0);
        List<String> notes = out.lines().filter(l -> l.startsWith("info: ") || l.startsWith("warning: ")).toList();
        assertEquals(3, notes.size(), out);
        assertTrue(notes.get(0).startsWith("info: " + cfg + ":") && notes.get(0).contains("attn_implementation:"
                + " flash_attention_2 — jtune computes exact attention"), notes.get(0));
        assertTrue(notes.get(1).startsWith("warning: " + cfg + ":") && notes.get(1).contains("hub_model_id: me/tiny"),
                notes.get(1));
        assertTrue(notes.get(2).contains("optimizer: paged_adamw_32bit — jtune runs bitsandbytes' 32-bit AdamW"), notes.get(2));
        assertTrue(Files.exists(dir.resolve("out/adapter_config.json")), out);
    }

    /**
     * openllama-3b's precision (Axolotl examples/archived/openllama-3b/config.yml: float16: true, bf16: false, fp16:
     * false, adamw_bnb_8bit, weight_decay 0.1, flash attention): the model loaded in fp16 and trained in place — no fp32
     * master copy, no loss scale — leaving an F16 model.safetensors (config.json: float16) that score reads.
     */
    @Test
    void float16FullFineTuningTrainsFp16WeightsInPlace(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("float16.yml");
        Files.writeString(cfg, config(dir, "float16: true\nbf16: false\nfp16: false\noptimizer: adamw_bnb_8bit\n"
                + "weight_decay: 0.1\nattn_implementation: flash_attention_2\n").replace("max_steps: 6", "max_steps: 2"));
        String out = run(cfg, 0);
        assertTrue(out.contains("full fine-tuning in fp16 (float16: true): weights and gradients in fp16, bitsandbytes"
                + " 8-bit AdamW state (8-bit blocks; fp32 under 4096 values), updated in fp32 and rounded to fp16 after"
                + " the step and after the weight decay, no AMP and no loss scaling"), out);
        assertFalse(out.contains("master weights") || out.contains("loss scale") || out.contains("note: fp16"), out);
        Path o = dir.resolve("out");
        assertTrue(Files.readString(o.resolve("config.json")).contains("\"torch_dtype\" : \"float16\""));
        for (String line : Files.readAllLines(o.resolve("metrics.jsonl"))) {
            assertFalse(line.contains("loss_scale"), line);
        }
        try (var f = dev.jtune.model.safetensors.SafetensorsFile.open(o.resolve("model.safetensors"));
                HfCheckpoint base = HfCheckpoint.open(dir.resolve("tiny"))) {
            String w = "model.layers.0.mlp.down_proj.weight";
            assertEquals(dev.jtune.model.safetensors.SafetensorsDtype.F16, f.info(w).dtype());
            assertFalse(java.util.Arrays.equals(base.floats(w), f.floats(w)), "the weights were trained");
        }
        Path input = dir.resolve("score.jsonl");
        Files.writeString(input, "{\"text\": \"Which word comes last: red, blue? blue\"}\n");
        var scored = new ByteArrayOutputStream();
        assertEquals(0, ScoreCommand.score(o, input, Dtype.FP16, new PrintStream(scored, true, StandardCharsets.UTF_8)));
        JsonNode line = json(scored.toString(StandardCharsets.UTF_8).lines().findFirst().orElseThrow());
        assertTrue(Double.isFinite(line.get("mean_nll").asDouble()) && line.get("tokens").asInt() > 0, line.toString());
    }

    /**
     * float16 with an adapter: fp32 LoRA over the fp16 base (PEFT's autocast_adapter_dtype), no GradScaler (fp16:
     * true's run logs a loss scale, this one none).
     */
    @Test
    void float16AdapterRunsWithoutLossScaling(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("float16-lora.yml");
        Files.writeString(cfg, config(dir, "float16: true\nadapter: lora\nlora_r: 4\nlora_alpha: 8\n"
                + "lora_target_linear: true\n").replace("max_steps: 6", "max_steps: 2"));
        String out = run(cfg, 0);
        assertTrue(out.contains("fp16 base"), out);
        for (String line : Files.readAllLines(dir.resolve("out/metrics.jsonl"))) {
            assertFalse(line.contains("loss_scale"), line);
        }
        Files.writeString(cfg, config(dir, "fp16: true\nadapter: lora\nlora_r: 4\nlora_alpha: 8\n"
                + "lora_target_linear: true\n").replace("max_steps: 6", "max_steps: 2")
                .replace(dir.resolve("out").toString(), dir.resolve("out-amp").toString()));
        run(cfg, 0);
        assertTrue(Files.readString(dir.resolve("out-amp/metrics.jsonl")).contains("loss_scale"));
    }

    /** float16 where jtune does not run it (FSDP, DeepSpeed, Muon full fine-tuning): refused at preprocess, naming it. */
    @ParameterizedTest
    @ValueSource(strings = {"fsdp: [full_shard]", "deepspeed: deepspeed_configs/zero2.json", "optimizer: muon"})
    void float16WhereItIsNotPortedIsRefused(String line, @TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("bad.yml");
        Files.writeString(cfg, config(dir, "float16: true\n" + line + "\n"));
        var err = new ByteArrayOutputStream();
        int code = Main.run(new String[] {"preprocess", cfg.toString()}, new PrintStream(new ByteArrayOutputStream()),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        String text = err.toString(StandardCharsets.UTF_8);
        assertEquals(1, code, text);
        assertTrue(text.contains("float16: true") && text.contains("is not supported")
                && text.contains(line.substring(0, line.indexOf(':'))), text);
    }

    /**
     * fp16 full fine-tuning: Axolotl loads the model in fp16 and transformers' Trainer stops in its GradScaler; jtune
     * runs torch AMP's recipe (fp32 master weights, fp16 compute, dynamic loss scaling) and says so in one line. The
     * saved model is F32 ({@code torch_dtype: float32}).
     */
    @Test
    void fp16FullFineTuningRunsWithFp32MasterWeights(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("fp16.yml");
        Files.writeString(cfg, config(dir, "fp16: true\n").replace("max_steps: 6", "max_steps: 2"));
        String out = run(cfg, 0);
        assertEquals(1, out.lines().filter(l -> l.contains("Attempting to unscale FP16 gradients")).count(), out);
        assertTrue(out.contains("info: fp16: true without an adapter: Axolotl loads the model in fp16")
                && out.contains("fp32 master weights and AdamW state, fp16 forward and backward"), out);
        assertTrue(out.contains("full fine-tuning in fp16 compute, fp32 master weights and AdamW state"), out);
        Path o = dir.resolve("out");
        assertTrue(Files.readString(o.resolve("config.json")).contains("\"torch_dtype\" : \"float32\""));
        try (var f = dev.jtune.model.safetensors.SafetensorsFile.open(o.resolve("model.safetensors"));
                HfCheckpoint base = HfCheckpoint.open(dir.resolve("tiny"))) {
            String w = "model.layers.0.mlp.down_proj.weight";
            assertEquals(dev.jtune.model.safetensors.SafetensorsDtype.F32, f.info(w).dtype());
            assertFalse(java.util.Arrays.equals(base.floats(w), f.floats(w)), "the weights were trained");
        }
    }

    /**
     * bf16 full fine-tuning in place with the 8-bit optimizers (Axolotl's 3b-qat-mxfp4.yaml: adamw_torch_8bit) and
     * bitsandbytes' AdamW: trains, says where the state lives, and leaves a BF16 model (their bf16 updates are checked
     * bit for bit in TorchaoAdamWFixtureTest / BnbAdamWFixtureTest, resume in Bf16FullFineTuningTest).
     */
    @Test
    void bf16FullFineTuningTrainsWithThe8bitOptimizers(@TempDir Path dir) throws Exception {
        for (String optimizer : List.of("adamw_torch_8bit", "paged_adamw_8bit")) {
            Path cfg = dir.resolve(optimizer + ".yml");
            Files.writeString(cfg, config(dir, "bf16: true\noptimizer: " + optimizer + "\n")
                    .replace("max_steps: 6", "max_steps: 2").replace(dir.resolve("out").toString(),
                            dir.resolve(optimizer).toString()));
            String out = run(cfg, 0);
            assertTrue(out.contains(optimizer.equals("adamw_torch_8bit") ? "torchao AdamW8bit state (8-bit blocks"
                    : "bitsandbytes 8-bit AdamW state (8-bit blocks"), out);
            try (var f = dev.jtune.model.safetensors.SafetensorsFile.open(dir.resolve(optimizer).resolve(
                    "model.safetensors")); HfCheckpoint base = HfCheckpoint.open(dir.resolve("tiny"))) {
                String w = "model.layers.0.mlp.down_proj.weight";
                assertEquals(dev.jtune.model.safetensors.SafetensorsDtype.BF16, f.info(w).dtype());
                assertFalse(java.util.Arrays.equals(base.floats(w), f.floats(w)), "the weights were trained");
            }
        }
    }

    /**
     * bf16 full fine-tuning under FSDP (accelerate upcasts to fp32 master weights) or DeepSpeed (its bf16 optimizer
     * keeps fp32 master weights): trained with fp32 master weights, one info line, an F32 model.safetensors; any
     * optimizer (it updates fp32 tensors).
     */
    @ParameterizedTest
    @ValueSource(strings = {"fsdp: [full_shard, auto_wrap]|accelerate runs FSDP mixed precision",
            "deepspeed: deepspeed_configs/zero3_bf16.json|DeepSpeed's bf16 optimizer",
            "fsdp: [full_shard, auto_wrap]\noptimizer: paged_adamw_32bit|accelerate runs FSDP mixed precision"})
    void bf16FullFineTuningUnderFsdpOrDeepSpeedKeepsFp32MasterWeights(String caseText, @TempDir Path dir)
            throws Exception {
        String[] c = caseText.split("\\|");
        Path cfg = dir.resolve("mixed.yml");
        Files.writeString(cfg, config(dir, "bf16: true\n" + c[0].replace("\\n", "\n") + "\n")
                .replace("max_steps: 6", "max_steps: 2"));
        String out = run(cfg, 0);
        assertTrue(out.contains("info: full fine-tuning in mixed precision: fp32 master weights and AdamW state, bf16"
                + " forward and backward") && out.contains(c[1]), out);
        assertFalse(out.contains("note: bf16 full fine-tuning trains every weight in bf16"), out);
        Path o = dir.resolve("out");
        assertTrue(Files.readString(o.resolve("config.json")).contains("\"torch_dtype\" : \"float32\""));
        try (var f = dev.jtune.model.safetensors.SafetensorsFile.open(o.resolve("model.safetensors"))) {
            assertEquals(dev.jtune.model.safetensors.SafetensorsDtype.F32,
                    f.info("model.layers.0.mlp.down_proj.weight").dtype());
        }
    }

    /**
     * Stanford Alpaca's precision: bf16 full fine-tuning trains the bf16 weights in place and leaves a BF16
     * model.safetensors (config.json: bfloat16) that score reads; the note says where Axolotl would differ.
     */
    @Test
    void bf16FullFineTuningLeavesABf16ModelThatScores(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("bf16.yml");
        Files.writeString(cfg, config(dir, "bf16: true\n").replace("max_steps: 6", "max_steps: 3"));
        String out = run(cfg, 0);
        assertTrue(out.contains("full fine-tuning in bf16: weights and gradients in bf16, AdamW state in bf16"), out);
        assertTrue(out.contains("note: bf16 full fine-tuning trains every weight in bf16")
                && out.contains("Axolotl would keep embed_tokens, lm_head and the norms in fp32"), out);
        Path o = dir.resolve("out");
        assertTrue(Files.readString(o.resolve("config.json")).contains("\"torch_dtype\" : \"bfloat16\""));
        try (var f = dev.jtune.model.safetensors.SafetensorsFile.open(o.resolve("model.safetensors"));
                HfCheckpoint base = HfCheckpoint.open(dir.resolve("tiny"))) {
            String w = "model.layers.0.mlp.down_proj.weight";
            assertEquals(dev.jtune.model.safetensors.SafetensorsDtype.BF16, f.info(w).dtype());
            assertFalse(java.util.Arrays.equals(base.floats(w), f.floats(w)), "the weights were trained");
        }
        Path input = dir.resolve("score.jsonl");
        Files.writeString(input, "{\"text\": \"Which word comes last: red, blue? blue\"}\n");
        var scored = new ByteArrayOutputStream();
        assertEquals(0, ScoreCommand.score(o, input, Dtype.BF16, new PrintStream(scored, true, StandardCharsets.UTF_8)));
        JsonNode line = json(scored.toString(StandardCharsets.UTF_8).lines().findFirst().orElseThrow());
        assertTrue(Double.isFinite(line.get("mean_nll").asDouble()) && line.get("tokens").asInt() > 0, line.toString());
    }

    /**
     * deepspeed: Axolotl's zero2.json (absent here: known by name) runs as jtune's data parallel — one info line —
     * and the adapter is byte-identical to the run without it: ZeRO changes where state lives, not the numbers.
     */
    @Test
    void deepspeedZero2IsDataParallelWithTheSameAdapter(@TempDir Path dir) throws Exception {
        String lora = "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\nmax_grad_norm: 1.0\n";
        Path plain = dir.resolve("plain.yml");
        Files.writeString(plain, config(dir, lora).replace("max_steps: 6", "max_steps: 2"));
        run(plain, 0);
        Path first = dir.resolve("first");
        Files.move(dir.resolve("out"), first);
        Path ds = dir.resolve("ds.yml");
        Files.writeString(ds, config(dir, lora + "deepspeed: deepspeed_configs/zero2.json\n")
                .replace("max_steps: 6", "max_steps: 2"));
        String out = run(ds, 0);
        assertTrue(out.contains("deepspeed: deepspeed_configs/zero2.json (ZeRO-2, Axolotl's shipped"
                + " deepspeed_configs/zero2.json) — equivalent here: jtune runs data parallel"), out);
        assertTrue(out.contains("offloading optimizer state to CPU is a memory placement"), out);
        assertEquals(1, out.lines().filter(l -> l.contains("deepspeed")).count(), out);
        assertTrue(java.util.Arrays.equals(Files.readAllBytes(first.resolve("adapter_model.safetensors")),
                Files.readAllBytes(dir.resolve("out/adapter_model.safetensors"))), "the same adapter");
    }

    private static JsonNode json(String line) {
        try {
            return JSON.readTree(line);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
