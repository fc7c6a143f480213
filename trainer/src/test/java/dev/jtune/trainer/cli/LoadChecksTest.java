package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.data.config.ConfigException;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What can be checked without data or a training step is checked when the config loads ({@code ConfigChecks}):
 * {@code preprocess} refuses it as {@code train} does, before any data work, every problem of the file in one run,
 * each at the file:line:column of its key.
 */
class LoadChecksTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path shared;

    @BeforeAll
    static void model() throws Exception {
        InitModelCommand.initModel(shared.resolve("tiny"), "tiny", null, 3, true,
                new PrintStream(new ByteArrayOutputStream()));
        var sb = new StringBuilder();
        for (int i = 0; i < 12; i++) {
            sb.append("{\"instruction\": \"Say ").append(i).append(".\", \"input\": \"\", \"output\": \"")
                    .append(i).append("\"}\n");
        }
        Files.writeString(shared.resolve("rows.jsonl"), sb.toString());
    }

    /** A valid LoRA config on the tiny model, with {@code extra} appended. */
    private static String config(Path model, String extra) {
        return """
                base_model: %s
                datasets:
                  - path: %s
                    type: alpaca
                output_dir: out
                sequence_len: 256
                adapter: lora
                lora_r: 2
                lora_alpha: 4
                lora_target_modules: [q_proj, v_proj]
                learning_rate: 0.001
                max_steps: 1
                """.formatted(model, shared.resolve("rows.jsonl")) + extra;
    }

    private static int preprocess(Path dir, String yaml) throws Exception {
        Files.writeString(dir.resolve("cfg.yml"), yaml);
        var sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        return PreprocessCommand.run(new String[] {"cfg.yml"}, sink, sink, PreprocessCommand::sampleSource, dir, false);
    }

    /** problem text → "line:column" of each problem, for a config whose text is {@code yaml}. */
    private static Map<String, String> problems(ConfigException e) {
        Map<String, String> out = new TreeMap<>();
        for (ConfigException p : e.problems()) out.put(p.problem(), p.line() + ":" + p.column());
        return out;
    }

    /** 1-based line and column of the first occurrence of {@code key:} in {@code yaml}. */
    private static String at(String yaml, String key) {
        List<String> lines = yaml.lines().toList();
        for (int i = 0; i < lines.size(); i++) {
            int col = lines.get(i).indexOf(key + ":");
            if (col >= 0 && (col == 0 || !Character.isLetterOrDigit(lines.get(i).charAt(col - 1))
                    && lines.get(i).charAt(col - 1) != '_')) {
                return (i + 1) + ":" + (col + 1);
            }
        }
        throw new AssertionError("no " + key + " in\n" + yaml);
    }

    @Test
    void validConfigPreprocesses(@TempDir Path dir) throws Exception {
        assertEquals(0, preprocess(dir, config(shared.resolve("tiny"), "")));
        assertTrue(Files.isDirectory(dir.resolve("out/last_run_prepared")));
    }

    /** Problems of the trainer, FSDP, precision, adapter and LoRA-target checks, all from one preprocess run, each placed. */
    @Test
    void everyProblemInOneRunEachAtItsKey(@TempDir Path dir) throws Exception {
        String yaml = config(shared.resolve("tiny"), """
                bf16: true
                fp16: true
                fsdp: [full_shard, hybrid_shard]
                fsdp_config:
                  fsdp_offload_params: sometimes
                  fsdp_sharding_strategy: SHARD_GRAD_OP
                lora_dropout: 1.5
                """).replace("lora_target_modules: [q_proj, v_proj]", "lora_target_modules: [q_proj, qkv_proj]");
        var e = assertThrows(ConfigException.class, () -> preprocess(dir, yaml));
        Map<String, String> found = problems(e);
        assertEquals(6, found.size(), e.getMessage());
        assertPlaced(found, "bf16: true and fp16: true", at(yaml, "bf16"));
        assertPlaced(found, "fsdp: 'hybrid_shard' is not supported", at(yaml, "fsdp"));
        assertPlaced(found, "fsdp_config.fsdp_offload_params: 'sometimes' is not supported", at(yaml, "fsdp_offload_params"));
        assertPlaced(found, "fsdp_config.fsdp_sharding_strategy: 'SHARD_GRAD_OP'", at(yaml, "fsdp_sharding_strategy"));
        // The second list item: the tiny Llama has q/k/v, not Phi-3's fused qkv_proj.
        int line = Integer.parseInt(at(yaml, "lora_target_modules").split(":")[0]);
        assertPlaced(found, "lora_target_modules[1]: 'qkv_proj' matches no linear layer of this model",
                line + ":" + (yaml.lines().toList().get(line - 1).indexOf("qkv_proj") + 1));
        assertPlaced(found, "lora_dropout must be in [0, 1)", at(yaml, "lora_dropout"));
        assertTrue(e.getMessage().startsWith(dir.resolve("cfg.yml") + ": 6 problems"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("out/last_run_prepared")), "refused before any data work");
        // train refuses the same, in the same words, before anything is written.
        var t = assertThrows(ConfigException.class, () -> TrainCommand.train(dir.resolve("cfg.yml"),
                new PrintStream(new ByteArrayOutputStream())));
        assertEquals(found.keySet(), problems(t).keySet());
    }

    /**
     * use_eaft with held-out data (transformers' EAFT eval loss is a mean of per-batch means that jtune does not
     * report) and eaft_k 0, and cls_model_config naming another family's config class than config.json's model_type:
     * each refused at its key, before any data work; the tiny Llama's own class is accepted.
     */
    @Test
    void eaftAndConfigClassProblemsAtLoad(@TempDir Path dir) throws Exception {
        String yaml = config(shared.resolve("tiny"), """
                use_eaft: true
                eaft_k: 0
                val_set_size: 0.25
                cls_model_config: Qwen3Config
                """);
        var e = assertThrows(ConfigException.class, () -> preprocess(dir, yaml));
        Map<String, String> found = problems(e);
        assertEquals(3, found.size(), e.getMessage());
        assertPlaced(found, "use_eaft: true with held-out data (val_set_size/test_datasets) is not supported",
                at(yaml, "use_eaft"));
        assertPlaced(found, "eaft_k: expected a positive number of top logits, got 0", at(yaml, "eaft_k"));
        assertPlaced(found, "cls_model_config: Qwen3Config is the config class of model_type 'qwen3', but base_model's"
                + " config.json is 'llama'", at(yaml, "cls_model_config"));
        assertFalse(Files.exists(dir.resolve("out/last_run_prepared")), "refused before any data work");

        var unknown = assertThrows(ConfigException.class, () -> preprocess(dir, config(shared.resolve("tiny"),
                "cls_model_config: Gemma3Config\n")));
        assertTrue(unknown.getMessage().contains("cls_model_config") && unknown.getMessage().contains("Gemma3Config")
                && unknown.getMessage().contains("Gemma3TextConfig"), unknown.getMessage());

        assertEquals(0, preprocess(dir, config(shared.resolve("tiny"),
                "use_eaft: true\neaft_alpha: 0.5\neaft_k: 5\ncls_model_config: LlamaConfig\n")));
    }

    /**
     * The DiffusionPlugin's block: a value out of DiffusionConfig's range and an unknown sub-key, each at its nested
     * key, and use_eaft beside the plugin, before any data work; the same block without the plugin is refused as
     * unread; a valid block passes preprocess.
     */
    @Test
    void diffusionProblemsAtLoad(@TempDir Path dir) throws Exception {
        String yaml = config(shared.resolve("tiny"), """
                plugins:
                  - axolotl.integrations.diffusion.DiffusionPlugin
                use_eaft: true
                diffusion:
                  eps: 1.5
                  mask_token: 5
                """);
        var e = assertThrows(ConfigException.class, () -> preprocess(dir, yaml));
        Map<String, String> found = problems(e);
        assertEquals(3, found.size(), e.getMessage());
        assertPlaced(found, "diffusion.eps: expected a number in [0.0, 1.0], got '1.5'", at(yaml, "eps"));
        assertPlaced(found, "diffusion.mask_token is not a key of Axolotl's DiffusionConfig", at(yaml, "mask_token"));
        assertPlaced(found, "use_eaft: true with the DiffusionPlugin", at(yaml, "use_eaft"));
        assertFalse(Files.exists(dir.resolve("out/last_run_prepared")), "refused before any data work");

        String alone = config(shared.resolve("tiny"), "diffusion:\n  eps: 0.5\n");
        var unread = assertThrows(ConfigException.class, () -> preprocess(dir, alone));
        assertPlaced(problems(unread), "diffusion: is read by Axolotl's DiffusionPlugin only", at(alone, "diffusion"));

        assertEquals(0, preprocess(dir, config(shared.resolve("tiny"), "plugins: [axolotl.integrations.diffusion"
                + ".DiffusionPlugin]\ndiffusion: {eps: 0.5, mask_token_id: 5, noise_schedule: cosine}\n")));
    }

    /**
     * tokenizer_use_mistral_common: true on a folder without tekken.json and an alpaca dataset: both refused at load,
     * each at its key, before any data work.
     */
    @Test
    void mistralCommonNeedsTekkenAndChatData(@TempDir Path dir) throws Exception {
        String yaml = config(shared.resolve("tiny"), "tokenizer_use_mistral_common: true\n");
        var e = assertThrows(ConfigException.class, () -> preprocess(dir, yaml));
        Map<String, String> found = problems(e);
        assertEquals(2, found.size(), e.getMessage());
        assertPlaced(found, "datasets[0].type: only chat_template datasets are implemented", at(yaml, "type"));
        assertPlaced(found, "tokenizer_use_mistral_common: true: " + shared.resolve("tiny") + " has no tekken.json",
                at(yaml, "tokenizer_use_mistral_common"));
        assertFalse(Files.exists(dir.resolve("out/last_run_prepared")), "refused before any data work");
    }

    /** The checks across trainer keys (ranges, exclusive pairs) report every one too. */
    @Test
    void everyRangeProblemInOneRun(@TempDir Path dir) throws Exception {
        String yaml = config(shared.resolve("tiny"), """
                micro_batch_size: 0
                warmup_steps: 2
                warmup_ratio: 0.1
                max_grad_norm: -1
                save_steps: 1.5
                """);
        var e = assertThrows(ConfigException.class, () -> preprocess(dir, yaml));
        Map<String, String> found = problems(e);
        assertEquals(4, found.size(), e.getMessage());
        assertPlaced(found, "micro_batch_size must be at least 1", at(yaml, "micro_batch_size"));
        assertPlaced(found, "warmup_steps and warmup_ratio are mutually exclusive", at(yaml, "warmup_steps"));
        assertPlaced(found, "max_grad_norm must be >= 0", at(yaml, "max_grad_norm"));
        assertPlaced(found, "save_steps must be a whole number", at(yaml, "save_steps"));
    }

    private static void assertPlaced(Map<String, String> found, String start, String position) {
        var hit = found.entrySet().stream().filter(en -> en.getKey().startsWith(start)).toList();
        assertEquals(1, hit.size(), "one problem starting '" + start + "' in " + found);
        assertEquals(position, hit.get(0).getValue(), start);
    }

    /** Checks that train made only after preprocess had passed, each now refused by preprocess at its key. */
    @Test
    void eachMovedCheckFiresAtLoad(@TempDir Path dir) throws Exception {
        Path tiny = shared.resolve("tiny");
        Map<String, String> cases = new java.util.LinkedHashMap<>();
        cases.put("fsdp_config:\n  fsdp_offload_params: sometimes\n", "fsdp_config.fsdp_offload_params");
        cases.put("fsdp_config:\n  fsdp_version: 3\n", "fsdp_config.fsdp_version");
        cases.put("fsdp_config:\n  fsdp_unknown: 1\n", "fsdp_config.fsdp_unknown");
        cases.put("bf16: true\nfp16: true\n", "bf16");
        cases.put("adam_beta1: 1.5\n", "adam_beta1");
        cases.put("warmup_steps: 2\nwarmup_ratio: 0.1\n", "warmup_steps");
        cases.put("micro_batch_size: 0\n", "micro_batch_size");
        cases.put("max_grad_norm: -1\n", "max_grad_norm");
        cases.put("eval_steps: 2\nevals_per_epoch: 2\n", "eval_steps");
        cases.put("lora_modules_to_save: [lm_head]\nlora_target_modules: [lm_head]\n", "lora_modules_to_save");
        cases.put("lora_dropout: 1.5\n", "lora_dropout");
        cases.put("lora_fan_in_fan_out: true\n", "lora_fan_in_fan_out");
        cases.put("added_tokens_overrides:\n  abc: x\n", "added_tokens_overrides");
        for (var c : cases.entrySet()) {
            String yaml = config(tiny, "").replace("lora_target_modules: [q_proj, v_proj]\n",
                    c.getKey().contains("lora_target_modules") ? "" : "lora_target_modules: [q_proj, v_proj]\n")
                    + c.getKey();
            var e = assertThrows(ConfigException.class, () -> preprocess(dir, yaml), c.getKey());
            assertEquals(1, e.problems().size(), e.getMessage());
            assertEquals(at(yaml, c.getValue().substring(c.getValue().lastIndexOf('.') + 1)),
                    e.line() + ":" + e.column(), e.getMessage());
        }
        // Without an adapter: the quantized base needs one (adapter/precision pairs).
        String noAdapter = config(tiny, "load_in_4bit: true\n").replaceAll("(?m)^(adapter|lora_\\w+): .*\\n", "");
        var e = assertThrows(ConfigException.class, () -> preprocess(dir, noAdapter));
        assertTrue(e.problem().startsWith("load_in_4bit: true needs adapter: qlora"), e.getMessage());
        assertEquals(at(noAdapter, "load_in_4bit"), e.line() + ":" + e.column());
        String qlora = config(tiny, "").replace("adapter: lora", "adapter: qlora");
        e = assertThrows(ConfigException.class, () -> preprocess(dir, qlora));
        assertTrue(e.problem().contains("requires load_in_4bit"), e.getMessage());
        assertEquals(at(qlora, "adapter"), e.line() + ":" + e.column());
    }

    /**
     * LISA, ReLoRA and LoftQ combinations jtune does not run are refused at load, each at its key: one LISA count
     * without the other, LISA under an adapter, ReLoRA without jagged_restart_steps, ReLoRA with a torchao optimizer,
     * LoftQ on a 4-bit base, 8-bit LoftQ, and LISA asking for more layers than config.json has.
     */
    @Test
    void lisaReloraAndLoftqRefusalsAtTheirKeys(@TempDir Path dir) throws Exception {
        Path tiny = shared.resolve("tiny");
        String full = config(tiny, "").replaceAll("(?m)^(adapter|lora_\\w+): .*\\n", "");
        Map<String, String[]> cases = new java.util.LinkedHashMap<>();
        cases.put(full + "lisa_n_layers: 1\n", new String[] {"lisa_n_layers", "lisa_n_layers without lisa_step_interval"});
        cases.put(config(tiny, "lisa_n_layers: 1\nlisa_step_interval: 2\n"),
                new String[] {"lisa_n_layers", "lisa_n_layers with adapter: lora is not supported"});
        cases.put(full + "lisa_n_layers: 9\nlisa_step_interval: 2\n",
                new String[] {"lisa_n_layers", "lisa_n_layers: 9 is more than the model's"});
        cases.put(config(tiny, "relora: true\n"), new String[] {"relora", "relora: true without jagged_restart_steps"});
        cases.put(config(tiny, "relora: true\njagged_restart_steps: 2\noptimizer: adamw_torch_4bit\n"),
                new String[] {"optimizer", "optimizer: adamw_torch_4bit with relora is not supported"});
        cases.put(config(tiny, "peft:\n  loftq_config:\n    loftq_bits: 4\n").replace("adapter: lora",
                "adapter: qlora\nload_in_4bit: true"), new String[] {"loftq_config", "peft.loftq_config needs adapter: lora"});
        cases.put(config(tiny, "peft:\n  loftq_config:\n    loftq_bits: 8\n"),
                new String[] {"peft", "peft: {loftq_config: {loftq_bits: 8}} is not supported"});
        for (var c : cases.entrySet()) {
            String yaml = c.getKey();
            var e = assertThrows(ConfigException.class, () -> preprocess(dir, yaml), yaml);
            assertEquals(1, e.problems().size(), e.getMessage());
            assertTrue(e.problem().startsWith(c.getValue()[1]), e.getMessage());
            assertEquals(at(yaml, c.getValue()[0]), e.line() + ":" + e.column(), e.getMessage());
        }
    }

    /** config.json's side: an architecture jtune lacks, tied embeddings, a tokenizer larger than the embedding. */
    @Test
    void checksAgainstTheModelsConfigJson(@TempDir Path dir) throws Exception {
        Path other = dir.resolve("neox");
        copy(shared.resolve("tiny"), other);
        ObjectNode cfg = (ObjectNode) JSON.readTree(other.resolve("config.json").toFile());
        cfg.put("model_type", "gpt_neox").putArray("architectures").add("GPTNeoXForCausalLM");
        JSON.writeValue(other.resolve("config.json").toFile(), cfg);
        String yaml = config(other, "");
        var e = assertThrows(ConfigException.class, () -> preprocess(dir, yaml));
        assertTrue(e.problem().contains("gpt_neox"), e.getMessage());
        assertEquals(at(yaml, "base_model"), e.line() + ":" + e.column());

        Path tied = dir.resolve("tied");
        copy(shared.resolve("tiny"), tied);
        cfg = (ObjectNode) JSON.readTree(tied.resolve("config.json").toFile());
        cfg.put("tie_word_embeddings", true);
        JSON.writeValue(tied.resolve("config.json").toFile(), cfg);
        String save = config(tied, "lora_modules_to_save: [embed_tokens]\n");
        e = assertThrows(ConfigException.class, () -> preprocess(dir, save));
        assertTrue(e.problem().startsWith("lora_modules_to_save[0]: 'embed_tokens' is not supported for a model with"
                + " tie_word_embeddings"), e.getMessage());

        Path small = dir.resolve("small");
        copy(shared.resolve("tiny"), small);
        cfg = (ObjectNode) JSON.readTree(small.resolve("config.json").toFile());
        cfg.put("vocab_size", cfg.get("vocab_size").asInt() - 5);
        JSON.writeValue(small.resolve("config.json").toFile(), cfg);
        String vocab = config(small, "");
        e = assertThrows(ConfigException.class, () -> preprocess(dir, vocab));
        assertTrue(e.problem().contains("embedding rows (config.json vocab_size)"), e.getMessage());
        assertEquals(at(vocab, "base_model"), e.line() + ":" + e.column());
        assertFalse(Files.exists(dir.resolve("out/last_run_prepared")));
    }

    /**
     * Axolotl's own llama-2/qlora-fsdp.yml (trainer/src/test/resources/axolotl-examples, with base_model, the
     * dataset path and output folders pointed here): preprocess passed it and train refused it (the corpus run's
     * "train refused", on fsdp_offload_params); offloading is an equivalent now (it moves tensors, it does not
     * change them), so preprocess passes it with nothing to refuse, and a bad value is still named at its line.
     */
    @Test
    void axolotlQloraFsdpExamplePreprocesses(@TempDir Path dir) throws Exception {
        String yaml;
        try (var in = LoadChecksTest.class.getResourceAsStream("/axolotl-examples/llama-2-qlora-fsdp.yml")) {
            yaml = new String(in.readAllBytes(), StandardCharsets.UTF_8)
                    .replace("base_model: NousResearch/Llama-2-7b-hf", "base_model: " + shared.resolve("tiny"))
                    .replace("path: yahma/alpaca-cleaned", "path: " + shared.resolve("rows.jsonl"))
                    .replace("output_dir: ./outputs/qlora-out", "output_dir: out");
        }
        assertEquals(0, preprocess(dir, yaml));
        String bad = yaml.replace("fsdp_offload_params: true", "fsdp_offload_params: sometimes");
        var e = assertThrows(ConfigException.class, () -> preprocess(dir, bad));
        assertEquals(1, e.problems().size(), e.getMessage());
        assertTrue(e.problem().startsWith("fsdp_config.fsdp_offload_params: 'sometimes' is not supported"),
                e.getMessage());
        assertEquals(at(bad, "fsdp_offload_params"), e.line() + ":" + e.column());
    }

    /**
     * Parallelism degrees whose data-parallel ranks this run's process count does not give: preprocess (no launcher,
     * no count) passes, train stops before any data or model work at the key, with the count that fits.
     */
    @Test
    void processCountOfTheDeclaredLayoutIsCheckedByTrain(@TempDir Path dir) throws Exception {
        String yaml = config(shared.resolve("tiny"), """
                tensor_parallel_size: 2
                dp_replicate_size: 2
                """);
        assertEquals(0, preprocess(dir, yaml));
        var t = assertThrows(ConfigException.class, () -> TrainCommand.train(dir.resolve("cfg.yml"),
                new PrintStream(new ByteArrayOutputStream())));
        assertTrue(t.problem().startsWith("dp_replicate_size 2, tensor_parallel_size 2: this run has 1 process"),
                t.getMessage());
        assertTrue(t.problem().contains("./launch.sh --nproc-per-node 2"), t.getMessage());
        assertEquals(at(yaml, "dp_replicate_size"), t.line() + ":" + t.column());
        assertFalse(Files.exists(dir.resolve("out/adapter_model.safetensors")));
    }

    /**
     * Tensor and context parallelism are equivalent here: one process computes a group's share, so a run with the
     * degrees (and Axolotl's requirements for them: flash attention, one row per packed micro-batch) trains the same
     * adapter, byte for byte, as the run without them, and prints its layout and global batch.
     */
    @Test
    void tensorAndContextParallelismLeaveTheAdapterUnchanged(@TempDir Path dir) throws Exception {
        String plain = config(shared.resolve("tiny"), "micro_batch_size: 1\nattn_implementation: flash_attention_2\n"
                + "sample_packing: true\nseed: 5\n");
        String parallel = plain + "tensor_parallel_size: 2\ncontext_parallel_size: 2\n";
        byte[][] adapters = new byte[2][];
        String[] printed = new String[2];
        for (int i = 0; i < 2; i++) {
            Path run = Files.createDirectories(dir.resolve("run" + i));
            Files.writeString(run.resolve("cfg.yml"), (i == 0 ? plain : parallel)
                    .replace("output_dir: out", "output_dir: " + run.resolve("out")));
            var text = new ByteArrayOutputStream();
            assertEquals(0, TrainCommand.train(run.resolve("cfg.yml"), new PrintStream(text, true,
                    StandardCharsets.UTF_8)));
            printed[i] = text.toString(StandardCharsets.UTF_8);
            adapters[i] = Files.readAllBytes(run.resolve("out/adapter_model.safetensors"));
        }
        assertTrue(java.util.Arrays.equals(adapters[0], adapters[1]), "the degrees changed the trained adapter");
        assertFalse(printed[0].contains("info: parallelism:"), printed[0]);
        assertTrue(printed[1].contains("info: parallelism: 1 process = Axolotl's data-parallel ranks (dp_replicate 1"
                + " × dp_shard 1) of its world of 4"), printed[1]);
    }

    /**
     * Axolotl's Gemma 3 QLoRA examples' {@code unfrozen_parameters: [^model.language_model.*, ^lm_head.*]}: Axolotl
     * applies them after PEFT wrapped the model (train.py, freeze_layers_except on ModelLoader.load()'s PeftModel),
     * whose names start with base_model.model., so nothing would train. preprocess refuses it at its key now, on both
     * Gemma 3 layouts (Gemma3ForCausalLM, Gemma3ForConditionalGeneration); the PEFT model's own names pass, a base
     * weight is refused, and without an adapter the plain names match.
     */
    @Test
    void unfrozenParametersAreCheckedAgainstAxolotlsNamesAtLoad(@TempDir Path dir) throws Exception {
        Path families = Path.of("../model/src/test/resources/fixtures/families").toAbsolutePath().normalize();
        String gemma = "unfrozen_parameters:\n  - ^model.language_model.*\n  - ^lm_head.*\n";
        for (String family : List.of("gemma3-text", "gemma3-conditional")) {
            String yaml = config(families.resolve(family), gemma).replace("adapter: lora", "adapter: qlora\nload_in_4bit: true");
            var e = assertThrows(ConfigException.class, () -> preprocess(dir, yaml), family);
            assertEquals(1, e.problems().size(), e.getMessage());
            assertTrue(e.problem().startsWith("unfrozen_parameters: [^model.language_model.*, ^lm_head.*] match no"
                    + " trainable parameter; Axolotl matches them against the PEFT model's names (base_model.model.model."
                    + (family.equals("gemma3-conditional") ? "language_model." : "") + "layers.0.self_attn.q_proj.lora_A"
                    + ".default.weight"), e.getMessage());
            assertEquals(at(yaml, "unfrozen_parameters"), e.line() + ":" + e.column(), family);
            assertFalse(Files.exists(dir.resolve("out/last_run_prepared")), "refused before any data work");
        }
        Path conditional = families.resolve("gemma3-conditional");
        assertEquals(0, preprocess(dir, config(conditional, "unfrozen_parameters:\n  - .+layers.0.self_attn.q_proj.lora_\n")));
        var base = assertThrows(ConfigException.class, () -> preprocess(dir, config(conditional,
                "unfrozen_parameters:\n  - .+layers.0.self_attn.q_proj\n")));
        assertTrue(base.problem().contains("unfreezes the base weight base_model.model.model.language_model.layers.0"
                + ".self_attn.q_proj.base_layer.weight"), base.getMessage());
        String full = config(conditional, gemma).replace("adapter: lora\n", "").replace("lora_r: 2\n", "")
                .replace("lora_alpha: 4\n", "").replace("lora_target_modules: [q_proj, v_proj]\n", "");
        assertEquals(0, preprocess(dir, full));
    }

    private static void copy(Path from, Path to) throws Exception {
        Files.createDirectories(to);
        try (var files = Files.list(from)) {
            for (Path f : files.toList()) Files.copy(f, to.resolve(f.getFileName()));
        }
    }
}
