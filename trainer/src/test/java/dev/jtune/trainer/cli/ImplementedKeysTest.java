package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.config.AxolotlKeys;
import dev.jtune.model.safetensors.SafetensorsFile;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.Yaml;

/**
 * No implemented key is silently ignored: for every key {@link AxolotlKeys} marks {@link AxolotlKeys.Policy#IMPLEMENTED}
 * (top level and {@code datasets:} entries) a two-step run on the tiny model with the key set to a value other than
 * its default, against the same run without it (its reference), shows the key's effect. For most keys that is a
 * different adapter (or full model); keys that by nature leave the weights alone (where files go, logging,
 * checkpoints, evaluation) each say what is asserted instead, and a key whose only other value is refused says so.
 *
 * <p>Adding a key is one line in {@link #CASES}; {@link #everyImplementedKeyHasACase} fails naming any implemented
 * key without one, and any case whose key is no longer implemented.
 */
class ImplementedKeysTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String DS = "datasets[]."; // the prefix of a datasets: entry's key in the table

    @TempDir
    static Path dir;

    /** The reference run: LoRA on the tiny model, two steps, a checkpoint after each. */
    private static final String BASE = """
            base_model: {tiny}
            datasets:
              - path: {rows}
                type: alpaca
            output_dir: {out}
            sequence_len: 200
            adapter: lora
            lora_r: 2
            lora_alpha: 4
            lora_target_modules: [q_proj, v_proj]
            learning_rate: 0.01
            max_steps: 2
            micro_batch_size: 2
            save_steps: 1
            seed: 7
            """;

    /** A chat dataset in its own template (renders system, tools, reasoning), the reference of the chat keys. */
    private static final String CHAT = """
            datasets:
              - path: {chat}
                type: chat_template
            chat_template: jinja
            chat_template_jinja: "{% if tools %}[tools: {{ tools | tojson }}]{% endif %}{% for m in messages %}<{{ m.role }}>{% if m.reasoning_content %}(think: {{ m.reasoning_content }}){% endif %}{{ m.content }}</s>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
            """;

    /** ReLoRA with a restart before step 3 of four: the reference of its pruning keys. */
    private static final String RELORA = """
            max_steps: 4
            jagged_restart_steps: 2
            relora: true
            """;

    /** Full fine-tuning (no adapter): the reference of the LISA keys. */
    private static final String FULL = """
            adapter:
            lora_r:
            lora_alpha:
            lora_target_modules:
            """;

    /** A completion dataset, the reference of {@code field}. */
    private static final String COMPLETION = """
            datasets:
              - path: {rows}
                type: completion
            """;

    /** The vocabulary grows (a new token; embed_tokens and lm_head train): the reference of the resizing keys. */
    private static final String GROWN = """
            tokens: ["<|zz|>"]
            lora_modules_to_save: [embed_tokens, lm_head]
            """;

    /**
     * A Mistral folder (tekken.json, no tokenizer.json; data's mistral-common fixture, v7) and plain chats: the
     * reference of tokenizer_use_mistral_common (without it the chats render as chatml over the same vocabulary).
     */
    private static final String MISTRAL = """
            base_model: {mtiny}
            datasets:
              - path: {mchat}
                type: chat_template
            """;

    /** Evaluation on held-out rows: the reference of the exact-match keys. */
    private static final String EVAL = """
            val_set_size: 4
            eval_max_new_tokens: 6
            """;

    /**
     * Each implemented key: the fragment (merged over the reference: a key given replaces the reference's, a key given
     * nothing removes it) and what is asserted. {@code reference} is merged over {@link #BASE} for both runs.
     */
    static final List<Case> CASES = List.of(
            // --- model, adapter
            weights("base_model", "base_model: {tiny2}"),
            weights("tokenizer_config", "tokenizer_config: {tok2}"), // same files, eos_token </s> → <pad>
            weights("adapter", "adapter: qlora\nload_in_4bit: true"),
            weights("load_in_4bit", "adapter: qlora\nload_in_4bit: true"),
            weights("load_in_8bit", "load_in_8bit: true"),
            // Full fine-tuning (the reference without the adapter): torchao's int8/int4 fake quantization in every linear.
            weights("qat", "adapter:\nlora_r:\nlora_alpha:\nlora_target_modules:",
                    "qat: {activation_dtype: int8, weight_dtype: int4, group_size: 32}"),
            // Full fine-tuning with torchao's Float8Linear (emulated) on every linear but the first and lm_head.
            weights("fp8", "adapter:\nlora_r:\nlora_alpha:\nlora_target_modules:", "fp8: true"),
            // Full fine-tuning of a sparsified checkpoint: ConstantPruningModifier keeps its zeros (the reference fills them).
            weights("llmcompressor", FULL + "base_model: {sparse}", "plugins:"
                    + " [axolotl.integrations.llm_compressor.LLMCompressorPlugin]\nllmcompressor: {recipe: {finetuning_stage:"
                    + " {finetuning_modifiers: {ConstantPruningModifier: {targets: ['re:.*proj.weight'], start: 0}}}}}"),
            weights("lora_model_dir", "lora_model_dir: {reference}"), // continues the reference's adapter
            weights("lora_r", "lora_r: 4"),
            weights("lora_alpha", "lora_alpha: 16"),
            refusedOtherwise("lora_fan_in_fan_out", "lora_fan_in_fan_out: true"), // Conv1D layouts only
            weights("lora_target_modules", "lora_target_modules: [k_proj, o_proj]"),
            weights("lora_target_linear", "lora_target_linear: true"),
            weights("lora_modules_to_save", "lora_modules_to_save: [lm_head]"),
            weights("lora_dropout", "lora_dropout: 0.5"),
            weights("peft_use_rslora", "peft_use_rslora: true"),
            // Under an adapter Axolotl matches the PEFT model's names: q_proj's LoRA trains, v_proj's stays at its init.
            weights("unfrozen_parameters", "unfrozen_parameters: [\".+q_proj.lora_\"]"),
            // LISA (full fine-tuning): one layer of the tiny model's four trains at a time.
            weights("lisa_n_layers", FULL, "lisa_n_layers: 1\nlisa_step_interval: 1"),
            // Drawn before every step (interval 1) or before steps 1, 2 and 4 (interval 3: global_step 0, 1, 3); on
            // the tiny model's two layers the draws of steps 3-4 agree, step 5's do not.
            weights("lisa_step_interval", FULL + "lisa_n_layers: 1\nlisa_step_interval: 1\nmax_steps: 5\n",
                    "lisa_step_interval: 3"),
            refusedOtherwise("lisa_layers_attribute", "lisa_layers_attribute: model.model.layers"),
            // EAFT: each token's NLL weighted by its top-k entropy^alpha (trainer.train.Eaft, EaftTest for the numbers).
            weights("use_eaft", "use_eaft: true"),
            weights("eaft_alpha", "use_eaft: true\n", "eaft_alpha: 2.0"),
            weights("eaft_k", "use_eaft: true\n", "eaft_k: 3"),
            // The DiffusionPlugin's block (its objective with an existing mask token): its eps and weighting train.
            weights("diffusion", "plugins: [axolotl.integrations.diffusion.DiffusionPlugin]\ndiffusion: {mask_token_id: 5}\n",
                    "diffusion: {mask_token_id: 5, eps: 0.5, importance_weighting: false}"),
            // ReLoRA: restarts before step 3 (jagged_restart_steps: 2) of four; the run ends in the merged full model.
            effect("relora", "max_steps: 4\njagged_restart_steps: 2\n", "relora: true",
                    "ends in the merged full model (no adapter), the LoRA targets changed, the others not",
                    (run, ref) -> {
                        assertFalse(Files.exists(run.out().resolve("adapter_model.safetensors")));
                        assertTrue(run.console().contains("ReLoRA restart 1 before step 3"), run.console());
                        try (SafetensorsFile merged = SafetensorsFile.open(run.out().resolve("model.safetensors"));
                                var base = dev.jtune.model.safetensors.SafetensorsCheckpoint.open(run.path("{tiny}"))) {
                            String q = "model.layers.0.self_attn.q_proj.weight";
                            String k = "model.layers.0.self_attn.k_proj.weight";
                            assertFalse(Arrays.equals(base.floats(q), merged.floats(q)), q);
                            assertTrue(Arrays.equals(base.floats(k), merged.floats(k)), k);
                        }
                    }),
            // LoftQ: the base becomes its NF4 round trip and A, B the SVD factors of the residual.
            effect("peft", "", "peft:\n  loftq_config:\n    loftq_bits: 4", "initialises the adapter by LoftQ",
                    (run, ref) -> {
                        assertTrue(run.console().contains("LoftQ: "), run.console());
                        assertWeightsDiffer(run, ref);
                    }),
            weights("relora_prune_ratio", RELORA, "relora_prune_ratio: 0.2"),
            weights("relora_prune_method", RELORA, "relora_prune_method: reset"),
            weights("jagged_restart_steps", "max_steps: 4\n", "jagged_restart_steps: 2"),
            weights("jagged_restart_warmup_steps", "max_steps: 5\njagged_restart_steps: 2\n",
                    "jagged_restart_warmup_steps: 2"),
            weights("jagged_restart_anneal_steps", "max_steps: 5\njagged_restart_steps: 3\n",
                    "jagged_restart_anneal_steps: 2"),
            effect("merge_lora_on_finish", "merge_lora_on_finish: true", "writes output_dir/merged",
                    (run, ref) -> {
                        assertTrue(Files.isRegularFile(run.out().resolve("merged/model.safetensors")));
                        assertFalse(Files.exists(ref.out().resolve("merged")));
                    }),
            effect("base_model_init", "base_model: {absent}\nbase_model_init: tiny", "creates base_model when absent",
                    (run, ref) -> assertTrue(Files.isRegularFile(run.path("{absent}").resolve("config.json")))),
            same("model_type", "model_type: LlamaForCausalLM", "names the checkpoint's own class: accepted, the"
                    + " same model"),
            effect("trust_remote_code", "trust_remote_code: true", "says jtune runs its own implementation",
                    (run, ref) -> {
                        assertTrue(run.console().contains("trust_remote_code: true — jtune runs its own"));
                        assertSameWeights(run, ref);
                    }),
            // --- optimizer, schedule, precision
            weights("learning_rate", "learning_rate: 0.02"),
            weights("weight_decay", "weight_decay: 0.5"),
            weights("adam_epsilon", "adam_epsilon: 0.1"),
            weights("adam_beta1", "adam_beta1: 0.5"),
            weights("adam_beta2", "adam_beta2: 0.5"),
            weights("max_grad_norm", "max_grad_norm: 0.001"),
            same("optimizer", "optimizer: adamw_torch_fused", "the same AdamW update as adamw_torch"),
            weights("lr_scheduler", "lr_scheduler: constant"),
            weights("warmup_steps", "warmup_steps: 1"),
            weights("warmup_ratio", "warmup_ratio: 0.5"),
            weights("cosine_min_lr_ratio", "cosine_min_lr_ratio: 0.5"),
            weights("cosine_constant_lr_ratio", "cosine_min_lr_ratio: 0.5", "cosine_min_lr_ratio: 0.5\ncosine_constant_lr_ratio: 0.5"),
            weights("lr_scheduler_kwargs", "lr_scheduler_kwargs: {num_cycles: 1.0}"),
            weights("bf16", "bf16: true"),
            weights("bfloat16", "bfloat16: true"),
            weights("fp16", "fp16: true"),
            // An fp16 base (fp32 LoRA) without loss scaling. Against fp16: true the adapter is byte-identical here:
            // a 2^16 loss scale is exact in fp16 when no gradient overflows or underflows.
            weights("float16", "float16: true"),
            same("gradient_checkpointing", "gradient_checkpointing: true", "recomputing layers changes memory, not"
                    + " numbers"),
            same("fsdp", "fsdp: [full_shard, auto_wrap]", "sharding over one rank is no sharding (the 2-rank"
                    + " equality is DistributedTrainTest's)"),
            same("fsdp_config", "fsdp_config: {fsdp_sharding_strategy: FULL_SHARD}", "sharding over one rank is no"
                    + " sharding"),
            // --- batches and steps
            weights("gradient_accumulation_steps", "gradient_accumulation_steps: 2"),
            weights("micro_batch_size", "micro_batch_size: 1"),
            weights("max_steps", "max_steps: 3"),
            weights("num_epochs", "max_steps:\nnum_epochs: 0.25"),
            weights("seed", "seed: 8"),
            // --- data
            weights("datasets", "datasets: [{path: {rows2}, type: alpaca}]"),
            weights("train_on_inputs", "train_on_inputs: true"),
            weights("sequence_len", "sequence_len: 400"),
            weights("excess_length_strategy", "excess_length_strategy: truncate"),
            weights("sample_packing", "sample_packing: true"),
            weights("group_by_length", "group_by_length: true"), // rows of 24 to 100+ tokens: another order
            weights("curriculum_sampling", "curriculum_sampling: true"), // the file's order, every epoch
            // Fresh weights as transformers' _init_weights draws them, instead of the checkpoint's.
            weights("reinit_weights", "reinit_weights: true"),
            // Axolotl's streamed, packed path: windows of the text with EOS, packed first-fit per buffer of rows.
            weights("pretraining_dataset", "datasets:\npretraining_dataset: [{path: {rows}, text_column: output}]"
                    + "\nsample_packing: true"),
            refusedOtherwise("pretrain_multipack_attn", "datasets:\npretraining_dataset: [{path: {rows}, text_column:"
                    + " output}]\nsample_packing: true\npretrain_multipack_attn: false"),
            weights("streaming", "sample_packing: true", "sample_packing: true\nstreaming: true"),
            weights("streaming_multipack_buffer_size", "sample_packing: true\nstreaming: true",
                    "sample_packing: true\nstreaming: true\nstreaming_multipack_buffer_size: 3"),
            weights("pretrain_multipack_buffer_size", "sample_packing: true\nstreaming: true",
                    "sample_packing: true\nstreaming: true\npretrain_multipack_buffer_size: 3"),
            weights("min_sample_len", "min_sample_len: 125"), // drops about half the rows
            weights("dataset_exact_deduplication", "datasets: [{path: {rows}, type: alpaca}, {path: {rows}, type:"
                    + " alpaca}]", "dataset_exact_deduplication: true"), // each row once instead of twice
            effect("pad_to_sequence_len", "pad_to_sequence_len: true", "padded rows: other float rounding, the"
                    + " same weights within it (padding is masked from the loss)", (run, ref) -> {
                        assertWeightsDiffer(run, ref);
                        assertWeightsClose(run, ref, 1e-4);
                    }),
            weights("shuffle_merged_datasets", "datasets: [{path: {rows}, type: alpaca}, {path: {rows2}, type:"
                    + " alpaca}]", "shuffle_merged_datasets: false"),
            weights("val_set_size", "val_set_size: 6"),
            effect("test_datasets", "test_datasets: [{path: {few}, type: alpaca}]\neval_steps: 1",
                    "evaluates on them", (run, ref) -> assertEquals(List.of(0L, 1L, 2L), run.evalSteps())),
            effect("dataset_prepared_path", "dataset_prepared_path: {prepared}", "keeps the prepared rows there",
                    (run, ref) -> assertTrue(Files.isDirectory(run.path("{prepared}")))),
            effect("output_dir", "output_dir: {elsewhere}", "writes the adapter there",
                    (run, ref) -> assertTrue(Files.isRegularFile(run.path("{elsewhere}")
                            .resolve("adapter_model.safetensors")))),
            weights("special_tokens", "special_tokens: {eos_token: <pad>}"),
            // --- evaluation, logging, checkpoints
            effect("eval_steps", EVAL, "eval_steps: 1", "evaluates every step",
                    (run, ref) -> assertEquals(List.of(0L, 1L, 2L), run.evalSteps())),
            effect("evals_per_epoch", EVAL, "max_steps:\nsave_steps:\nnum_epochs: 1\nmicro_batch_size: 4\nevals_per_epoch: 2",
                    "evaluates twice an epoch (4 steps: at 2 and 4)", (run, ref) -> {
                        assertEquals(4L, run.lossSteps().getLast());
                        assertEquals(List.of(0L, 2L, 4L), run.evalSteps());
                    }),
            effect("use_tensorboard", "use_tensorboard: true", "writes TensorBoard event files under output_dir/runs",
                    (run, ref) -> {
                        assertFalse(Files.exists(ref.out().resolve("runs")));
                        try (var files = Files.walk(run.out().resolve("runs"))) {
                            assertTrue(files.anyMatch(f -> f.getFileName().toString().startsWith("events.out.tfevents.")));
                        }
                    }),
            // learning_rate 0: the eval loss never falls, so patience 1 stops at the second evaluation (HF's rule).
            effect("early_stopping_patience", EVAL + "eval_steps: 1\nmax_steps: 4\nlearning_rate: 0\n",
                    "early_stopping_patience: 1", "stops at step 2 of 4 (no lower eval loss after step 1)",
                    (run, ref) -> {
                        assertEquals(4L, ref.lossSteps().getLast());
                        assertEquals(2L, run.lossSteps().getLast(), run.console());
                    }),
            effect("load_best_model_at_end", EVAL + "eval_steps: 1\nmax_steps: 4\n", "load_best_model_at_end: true",
                    "ends on the checkpoint with the lowest eval loss", (run, ref) -> {
                        long best = -1;
                        double lowest = Double.POSITIVE_INFINITY;
                        for (JsonNode n : run.metrics()) {
                            if (n.has("eval_loss") && n.get("step").asLong() > 0 && n.get("eval_loss").asDouble() < lowest) {
                                lowest = n.get("eval_loss").asDouble();
                                best = n.get("step").asLong();
                            }
                        }
                        assertTrue(run.console().contains("load_best_model_at_end: loaded"), run.console());
                        assertFalse(ref.console().contains("load_best_model_at_end"));
                        try (SafetensorsFile a = SafetensorsFile.open(run.weightsFile());
                                SafetensorsFile b = SafetensorsFile.open(run.out().resolve("checkpoint-" + best)
                                        .resolve("adapter_model.safetensors"))) {
                            for (String name : a.names()) assertArrayEquals(b.bytes(name), a.bytes(name), name);
                        }
                    }),
            // Every logged loss is above 0: the watchdog counts from step 2 (it sees step 1's line) and stops at 3 (default).
            effect("loss_watchdog_threshold", "max_steps: 6\n", "loss_watchdog_threshold: 0.0",
                    "stops at step 4 of 6", (run, ref) -> {
                        assertEquals(6L, ref.lossSteps().getLast());
                        assertEquals(4L, run.lossSteps().getLast(), run.console());
                    }),
            effect("loss_watchdog_patience", "max_steps: 6\nloss_watchdog_threshold: 0.0\n", "loss_watchdog_patience: 1",
                    "stops at step 2 instead of 4", (run, ref) -> {
                        assertEquals(4L, ref.lossSteps().getLast());
                        assertEquals(2L, run.lossSteps().getLast(), run.console());
                    }),
            effect("logging_steps", "logging_steps: 2", "logs every 2nd step",
                    (run, ref) -> {
                        assertEquals(List.of(1L, 2L), ref.lossSteps());
                        assertEquals(List.of(2L), run.lossSteps());
                    }),
            effect("save_steps", "save_steps: 2", "checkpoints every 2nd step",
                    (run, ref) -> {
                        assertEquals(List.of("checkpoint-1", "checkpoint-2"), ref.checkpoints());
                        assertEquals(List.of("checkpoint-2"), run.checkpoints());
                    }),
            effect("saves_per_epoch", "save_steps:\nmax_steps:\nnum_epochs: 1\nmicro_batch_size: 5\nsaves_per_epoch: 2",
                    "checkpoints twice an epoch (4 steps: at 2 and 4)", (run, ref) -> {
                        assertEquals(4L, run.lossSteps().getLast());
                        assertEquals(List.of("checkpoint-2", "checkpoint-4"), run.checkpoints());
                    }),
            effect("save_total_limit", "save_total_limit: 1", "keeps the newest checkpoint only",
                    (run, ref) -> assertEquals(List.of("checkpoint-2"), run.checkpoints())),
            effect("resume_from_checkpoint", "resume_from_checkpoint: {reference}/checkpoint-1",
                    "continues the reference at step 1, to the same weights", (run, ref) -> {
                        assertTrue(run.console().contains("resumed at step 1"), run.console());
                        assertSameWeights(run, ref);
                    }),
            effect("do_causal_lm_eval", EVAL, "do_causal_lm_eval: true\neval_causal_lm_metrics: [exact_match]",
                    "asks the held-out samples before and after", (run, ref) ->
                            assertTrue(run.console().contains("exact match before training"), run.console())),
            effect("eval_causal_lm_metrics", EVAL, "do_causal_lm_eval: true\neval_causal_lm_metrics: [exact_match]",
                    "names exact_match", (run, ref) ->
                            assertTrue(run.console().contains("exact match on held-out samples"), run.console())),
            effect("eval_max_new_tokens", EVAL + "do_causal_lm_eval: true\neval_causal_lm_metrics: [exact_match]\n",
                    "eval_max_new_tokens: 1", "answers of one token: the start of the reference's", (run, ref) -> {
                        List<String> answers = run.answers();
                        List<String> full = ref.answers();
                        assertEquals(full.size(), answers.size(), run.console());
                        for (int i = 0; i < answers.size(); i++) {
                            assertTrue(full.get(i).startsWith(answers.get(i)), answers.get(i) + " / " + full.get(i));
                        }
                        assertTrue(String.join("", full).length() > String.join("", answers).length(), ref.console());
                    }),
            // --- vocabulary
            weights("tokens", "lora_modules_to_save: [embed_tokens, lm_head]",
                    "tokens: [\"<|zz|>\"]"),
            weights("added_tokens_overrides", "added_tokens_overrides: {1: \"<|end|>\"}"), // eos' text
            weights("resize_token_embeddings_to_32x", GROWN, "resize_token_embeddings_to_32x: true"),
            weights("mean_resizing_embeddings", GROWN, "mean_resizing_embeddings: true"),
            // --- chat templates
            weights("chat_template", CHAT, "chat_template: chatml\nchat_template_jinja:"),
            weights("chat_template_jinja", CHAT, "chat_template_jinja: \"{% for m in messages %}{{ m.content }}</s>"
                    + "{% endfor %}\""),
            weights("chat_template_kwargs", CHAT.replace("{% if tools %}", "{{ greeting }}{% if tools %}"),
                    "chat_template_kwargs: {greeting: hello}"),
            weights("eot_tokens", CHAT.replace("<{{ m.role }}>", "<{{ m.role }}>[eot]"),
                    "eot_tokens: [\"[eot]\"]"),
            weights("tokenizer_use_mistral_common", MISTRAL, "tokenizer_use_mistral_common: true"),
            // --- one datasets: entry
            weights(DS + "path", "datasets: [{path: {rows2}, type: alpaca}]"),
            weights(DS + "type", "datasets: [{path: {rows}, type: completion, field: output}]"),
            same(DS + "split", "datasets: [{path: {rows}, type: alpaca, split: train}]", "train is the one split of"
                    + " local files (others are refused)"),
            weights(DS + "data_files", "datasets: [{path: {data}, type: alpaca}]",
                    "datasets: [{path: {data}, type: alpaca, data_files: [rows2.jsonl]}]"),
            same(DS + "ds_type", "datasets: [{path: {rowsdat}, type: alpaca, ds_type: json}]", "reads rows.dat as"
                    + " JSON lines: the reference's rows"),
            weights(DS + "name", "datasets: [{path: {data}, type: alpaca, data_files: [rows.jsonl]}]",
                    "datasets: [{path: {data}, type: alpaca, data_files: [rows.jsonl], name: subset}]"),
            weights(DS + "field", COMPLETION, "datasets: [{path: {rows}, type: completion, field: instruction}]"),
            weights(DS + "chat_template", CHAT, "datasets: [{path: {chat}, type: chat_template, chat_template:"
                    + " chatml}]"),
            weights(DS + "field_messages", CHAT, "datasets: [{path: {chat}, type: chat_template, field_messages:"
                    + " other}]"),
            weights(DS + "field_tools", CHAT, "datasets: [{path: {chat}, type: chat_template, field_tools:"
                    + " other_tools}]"),
            weights(DS + "message_field_role", CHAT, "datasets: [{path: {chat}, type: chat_template,"
                    + " message_field_role: speaker}]"),
            weights(DS + "message_field_content", CHAT, "datasets: [{path: {chat}, type: chat_template,"
                    + " message_field_content: text}]"),
            weights(DS + "message_property_mappings", CHAT, "datasets: [{path: {chat}, type: chat_template,"
                    + " message_property_mappings: {content: text}}]"),
            weights(DS + "message_field_training", CHAT, "datasets: [{path: {chat}, type: chat_template,"
                    + " message_field_training: train}]"),
            weights(DS + "message_field_training_detail", CHAT, "datasets: [{path: {chat}, type: chat_template,"
                    + " message_field_training_detail: detail}]"),
            weights(DS + "split_thinking", CHAT, "datasets: [{path: {chat}, type: chat_template, split_thinking:"
                    + " true}]"),
            weights(DS + "roles_to_train", CHAT, "datasets: [{path: {chat}, type: chat_template, roles_to_train:"
                    + " [user, assistant]}]"),
            weights(DS + "train_on_eos", CHAT, "datasets: [{path: {chat}, type: chat_template, train_on_eos: all}]"),
            weights(DS + "roles", CHAT, "datasets: [{path: {chat}, type: chat_template, roles: {user: [user, system],"
                    + " assistant: [assistant]}}]"), // the system turn becomes the user's
            weights(DS + "drop_system_message", CHAT, "datasets: [{path: {chat}, type: chat_template,"
                    + " drop_system_message: true}]"));

    /** One implemented key: what is merged over the reference, and what is asserted. */
    record Case(String key, String reference, String fragment, String expected, Check check) {}

    /** An assertion on a run and its reference. */
    @FunctionalInterface
    interface Check {
        void verify(Run run, Run reference) throws Exception;
    }

    private static Case weights(String key, String fragment) {
        return weights(key, "", fragment);
    }

    private static Case weights(String key, String reference, String fragment) {
        return new Case(key, reference, fragment, "changes the trained weights", ImplementedKeysTest::assertWeightsDiffer);
    }

    private static Case same(String key, String fragment, String why) {
        return new Case(key, "", fragment, "the same weights: " + why, ImplementedKeysTest::assertSameWeights);
    }

    private static Case effect(String key, String fragment, String expected, Check check) {
        return new Case(key, "", fragment, expected, check);
    }

    private static Case effect(String key, String reference, String fragment, String expected, Check check) {
        return new Case(key, reference, fragment, expected, check);
    }

    /** A key whose only other value jtune refuses (the default is the one it implements). */
    private static Case refusedOtherwise(String key, String fragment) {
        return new Case(key, "", fragment, "any other value is refused, naming the key", null);
    }

    /** A finished run: its output folder and console. */
    record Run(Path out, String console, Map<String, String> places) {
        Path path(String placeholder) {
            return Path.of(places.get(placeholder));
        }

        List<JsonNode> metrics() throws Exception {
            List<JsonNode> out = new ArrayList<>();
            for (String line : Files.readAllLines(out().resolve("metrics.jsonl"))) out.add(JSON.readTree(line));
            return out;
        }

        List<Long> evalSteps() throws Exception {
            return metrics().stream().filter(n -> n.has("eval_loss")).map(n -> n.get("step").asLong()).toList();
        }

        List<Long> lossSteps() throws Exception {
            return metrics().stream().filter(n -> n.has("loss")).map(n -> n.get("step").asLong()).toList();
        }

        List<String> checkpoints() throws Exception {
            try (Stream<Path> files = Files.list(out)) {
                return files.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("checkpoint-")).sorted()
                        .toList();
            }
        }

        /** The exact-match answers printed after training. */
        List<String> answers() {
            return console.lines().filter(l -> l.contains("-> expected"))
                    .map(l -> l.substring(l.indexOf("answered \"") + 10, l.length() - 1)).toList();
        }

        /** Every tensor of the adapter (or of the full model), as bytes. */
        Path weightsFile() {
            return Files.isRegularFile(out.resolve("adapter_model.safetensors"))
                    ? out.resolve("adapter_model.safetensors") : out.resolve("model.safetensors");
        }

        Map<String, byte[]> weights() {
            Map<String, byte[]> all = new TreeMap<>();
            try (SafetensorsFile f = SafetensorsFile.open(weightsFile())) {
                for (String name : f.names()) all.put(name, f.bytes(name));
            }
            return all;
        }
    }

    private static final Map<String, String> PLACES = new HashMap<>();
    private static final Map<String, Run> REFERENCES = new HashMap<>();
    private static int runs;

    @BeforeAll
    static void fixtures() throws Exception {
        var quiet = new PrintStream(new ByteArrayOutputStream());
        // The tiny preset made smaller still (2 layers, width 64): ninety runs stay short.
        InitModelCommand.initModel(dir.resolve("preset"), "tiny", null, 3, true, quiet);
        var micro = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(dir.resolve("preset/config.json").toFile());
        micro.put("num_hidden_layers", 2).put("hidden_size", 64).put("intermediate_size", 128)
                .put("num_attention_heads", 4).put("num_key_value_heads", 2).put("head_dim", 16);
        JSON.writeValue(dir.resolve("micro.json").toFile(), micro);
        InitModelCommand.initModel(dir.resolve("tiny"), null, dir.resolve("micro.json"), 3, true, quiet);
        InitModelCommand.initModel(dir.resolve("tiny2"), null, dir.resolve("micro.json"), 4, true, quiet);
        // tok2: the tiny model's tokenizer whose eos_token is <pad>: the rows end in another token.
        Files.createDirectories(dir.resolve("tok2"));
        Files.copy(dir.resolve("tiny/tokenizer.json"), dir.resolve("tok2/tokenizer.json"));
        for (String f : List.of("tokenizer_config.json", "special_tokens_map.json")) {
            var json = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(dir.resolve("tiny").resolve(f).toFile());
            json.put("eos_token", "<pad>");
            JSON.writeValue(dir.resolve("tok2").resolve(f).toFile(), json);
        }
        Files.createDirectories(dir.resolve("data/subset"));
        Files.writeString(dir.resolve("data/rows.jsonl"), rows(11, 24));
        Files.writeString(dir.resolve("data/rows2.jsonl"), rows(12, 24));
        Files.writeString(dir.resolve("data/subset/rows.jsonl"), rows(13, 24));
        Files.writeString(dir.resolve("rows.dat"), rows(11, 24));
        Files.writeString(dir.resolve("few.jsonl"), rows(15, 4));
        Files.writeString(dir.resolve("chat.jsonl"), chats(14, 16));
        PLACES.put("{tiny}", dir.resolve("tiny").toString());
        PLACES.put("{tiny2}", dir.resolve("tiny2").toString());
        PLACES.put("{sparse}", Path.of("src/test/resources/fixtures/tiny-sparse-llama").toAbsolutePath().toString());
        PLACES.put("{tok2}", dir.resolve("tok2").toString());
        PLACES.put("{rows}", dir.resolve("data/rows.jsonl").toString());
        PLACES.put("{rows2}", dir.resolve("data/rows2.jsonl").toString());
        PLACES.put("{rowsdat}", dir.resolve("rows.dat").toString());
        PLACES.put("{few}", dir.resolve("few.jsonl").toString());
        PLACES.put("{data}", dir.resolve("data").toString());
        PLACES.put("{chat}", dir.resolve("chat.jsonl").toString());
        // mtiny: the micro model with the 2500 rows of data's small tekken.json, which replaces its tokenizer files
        micro.put("vocab_size", 2500).put("bos_token_id", 1).put("eos_token_id", 2).put("pad_token_id", 11);
        JSON.writeValue(dir.resolve("micro-tekken.json").toFile(), micro);
        InitModelCommand.initModel(dir.resolve("mtiny"), null, dir.resolve("micro-tekken.json"), 3, true, quiet);
        for (String f : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")) {
            Files.deleteIfExists(dir.resolve("mtiny").resolve(f));
        }
        Files.copy(Path.of("../data/src/test/resources/mistral-common/v7/tekken.json"), dir.resolve("mtiny/tekken.json"));
        StringBuilder mchat = new StringBuilder();
        Random r = new Random(16);
        for (int i = 0; i < 16; i++) {
            List<Map<String, String>> messages = List.of(Map.of("role", "user", "content", words(r, 4)),
                    Map.of("role", "assistant", "content", words(r, 6)), Map.of("role", "user", "content", words(r, 3)),
                    Map.of("role", "assistant", "content", words(r, 5)));
            mchat.append(JSON.writeValueAsString(Map.of("messages", messages))).append('\n');
        }
        Files.writeString(dir.resolve("mchat.jsonl"), mchat.toString());
        PLACES.put("{mtiny}", dir.resolve("mtiny").toString());
        PLACES.put("{mchat}", dir.resolve("mchat.jsonl").toString());
    }

    private static final List<String> WORDS = List.of("red", "blue", "green", "gold", "cat", "dog", "fox", "owl",
            "sun", "moon", "tree", "rock");

    private static String words(Random r, int n) {
        return Stream.generate(() -> WORDS.get(r.nextInt(WORDS.size()))).limit(n).collect(Collectors.joining(" "));
    }

    /** Alpaca rows (with a completion field too); every fifth is longer than the reference's sequence_len. */
    private static String rows(long seed, int n) throws Exception {
        Random r = new Random(seed);
        var sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("instruction", "Repeat the last word: " + words(r, 3 + r.nextInt(4)) + " <|zz|>");
            row.put("input", i % 3 == 0 ? words(r, 2) : "");
            row.put("output", (i % 5 == 0 ? words(r, 80) + " " : "") + words(r, 1) + " <|end|>");
            row.put("text", words(r, 8));
            sb.append(JSON.writeValueAsString(row)).append('\n');
        }
        return sb.toString();
    }

    /** Chat rows with every field the chat keys name: alternative fields, tools, thinking, training marks. */
    private static String chats(long seed, int n) throws Exception {
        Random r = new Random(seed);
        var sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            List<Map<String, Object>> messages = new ArrayList<>();
            messages.add(message("system", "Be brief. " + words(r, 2), r));
            messages.add(message("user", "Say " + words(r, 3), r));
            Map<String, Object> answer = message("assistant", "<think>" + words(r, 3) + "</think>" + words(r, 2), r);
            answer.put("detail", List.of(Map.of("begin_offset", 0, "end_offset", 5, "train", false)));
            messages.add(answer);
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("messages", messages);
            row.put("other", List.of(message("user", "Other " + words(r, 2), r), message("assistant", words(r, 2), r)));
            row.put("tools", List.of(Map.of("name", "lookup")));
            row.put("other_tools", List.of(Map.of("name", "search", "about", words(r, 2))));
            sb.append(JSON.writeValueAsString(row)).append('\n');
        }
        return sb.toString();
    }

    /** A message with role/content, and speaker/text giving another role and content; users' turns marked to train. */
    private static Map<String, Object> message(String role, String content, Random r) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        m.put("speaker", role.equals("user") ? "assistant" : role.equals("assistant") ? "user" : role);
        m.put("text", words(r, 3));
        m.put("train", role.equals("user"));
        return m;
    }

    /** The reference merged over {@link #BASE}, then the fragment over that; placeholders filled. */
    @SuppressWarnings("unchecked")
    private static String yaml(String reference, String fragment, Map<String, String> places) {
        Yaml yaml = new Yaml();
        Map<String, Object> config = new LinkedHashMap<>((Map<String, Object>) yaml.load(fill(BASE, places)));
        for (String part : List.of(reference, fragment)) {
            if (part.isBlank()) continue;
            Map<String, Object> over = yaml.load(fill(part, places));
            over.forEach((k, v) -> {
                if (v == null) config.remove(k);
                else config.put(k, v);
            });
        }
        var options = new DumperOptions();
        options.setDefaultFlowStyle(DumperOptions.FlowStyle.BLOCK);
        options.setWidth(10_000);
        return new Yaml(options).dump(config);
    }

    private static String fill(String text, Map<String, String> places) {
        for (var e : places.entrySet()) text = text.replace(e.getKey(), e.getValue());
        return text;
    }

    private static Run train(String reference, String fragment, Map<String, String> extra) throws Exception {
        Path run = dir.resolve("run-" + runs++);
        Files.createDirectories(run);
        Map<String, String> places = new HashMap<>(PLACES);
        places.putAll(extra);
        places.put("{out}", run.resolve("out").toString());
        places.put("{absent}", run.resolve("absent").toString());
        places.put("{prepared}", run.resolve("prepared").toString());
        places.put("{elsewhere}", run.resolve("elsewhere").toString());
        Path cfg = run.resolve("cfg.yml");
        Files.writeString(cfg, yaml(reference, fragment, places));
        var console = new ByteArrayOutputStream();
        int code = TrainCommand.train(cfg, new PrintStream(console, true, StandardCharsets.UTF_8));
        String text = console.toString(StandardCharsets.UTF_8);
        assertEquals(0, code, text);
        return new Run(run.resolve("out"), text, places);
    }

    private static Run reference(String reference) throws Exception {
        Run ref = REFERENCES.get(reference);
        if (ref == null) {
            ref = train(reference, "", Map.of());
            REFERENCES.put(reference, ref);
        }
        return ref;
    }

    static void assertWeightsDiffer(Run run, Run reference) {
        Map<String, byte[]> a = run.weights();
        Map<String, byte[]> b = reference.weights();
        boolean same = a.keySet().equals(b.keySet()) && a.keySet().stream().allMatch(k -> Arrays.equals(a.get(k), b.get(k)));
        assertFalse(same, "the key left the trained tensors byte-identical to the reference's\n--- run:\n"
                + run.console() + "\n--- reference:\n" + reference.console());
    }

    static void assertWeightsClose(Run run, Run reference, double tolerance) throws Exception {
        try (SafetensorsFile a = SafetensorsFile.open(run.weightsFile());
                SafetensorsFile b = SafetensorsFile.open(reference.weightsFile())) {
            assertEquals(b.names(), a.names());
            for (String name : a.names()) {
                float[] x = a.floats(name);
                float[] y = b.floats(name);
                for (int i = 0; i < x.length; i++) {
                    assertTrue(Math.abs(x[i] - y[i]) <= tolerance * Math.max(1, Math.abs(y[i])),
                            name + "[" + i + "]: " + x[i] + " vs " + y[i]);
                }
            }
        }
    }

    static void assertSameWeights(Run run, Run reference) {
        Map<String, byte[]> a = run.weights();
        Map<String, byte[]> b = reference.weights();
        assertEquals(b.keySet(), a.keySet());
        for (String k : a.keySet()) assertTrue(Arrays.equals(a.get(k), b.get(k)), k + " differs");
    }

    /**
     * The DiffusionPlugin without a usable mask_token_id (an added token's id, as Llama 3's 128002 in Axolotl's
     * examples): the run's tokenizer gains {@code <|diffusion_mask|>}, the embedding and head grow by that one row,
     * and the objective masks with its id, as Axolotl's resolve_mask_token_id does.
     */
    @Test
    void diffusionAddsItsMaskTokenWhereAxolotlDoes() throws Exception {
        Run run = train(FULL, "plugins: [axolotl.integrations.diffusion.DiffusionPlugin]\n"
                + "diffusion: {mask_token_id: 100000}", Map.of());
        JsonNode tiny = JSON.readTree(run.path("{tiny}").resolve("config.json").toFile());
        JsonNode trained = JSON.readTree(run.out().resolve("config.json").toFile());
        int rows = tiny.get("vocab_size").asInt();
        assertEquals(rows + 1, trained.get("vocab_size").asInt(), "one row for the mask token");
        JsonNode added = JSON.readTree(run.out().resolve("tokenizer.json").toFile()).get("added_tokens");
        boolean found = false;
        for (JsonNode t : added) {
            if (t.get("content").asText().equals("<|diffusion_mask|>")) {
                assertEquals(rows, t.get("id").asInt(), "the next id");
                found = true;
            }
        }
        assertTrue(found, "the output tokenizer holds <|diffusion_mask|>");
        assertTrue(run.console().contains("diffusion: mask token id " + rows + " (<|diffusion_mask|>)"), run.console());
        assertTrue(run.console().contains("diffusion objective (mask token " + rows), run.console());
    }

    @TestFactory
    Stream<DynamicTest> eachImplementedKeyShowsItsEffect() {
        // -Djtune.keys=lora_r,seed runs those cases only (while working on them).
        Set<String> only = Set.of(System.getProperty("jtune.keys", "").split(","));
        return CASES.stream().filter(c -> only.equals(Set.of("")) || only.contains(c.key()))
                .map(c -> DynamicTest.dynamicTest(c.key() + ": " + c.expected(), () -> {
            if (c.check() == null) {
                Path cfg = dir.resolve("refused-" + c.key() + ".yml");
                Files.writeString(cfg, yaml(c.reference(), c.fragment(), withOut(cfg)));
                var e = assertThrows(RuntimeException.class, () -> TrainCommand.train(cfg,
                        new PrintStream(new ByteArrayOutputStream())));
                assertTrue(e.getMessage().contains(c.key()), e.getMessage());
                return;
            }
            Run ref = reference(c.reference());
            Run run = train(c.reference(), c.fragment(), Map.of("{reference}", ref.out().toString()));
            c.check().verify(run, ref);
        }));
    }

    private static Map<String, String> withOut(Path cfg) {
        Map<String, String> places = new HashMap<>(PLACES);
        places.put("{out}", cfg.resolveSibling(cfg.getFileName() + ".out").toString());
        return places;
    }

    /** The table covers exactly the implemented keys: a key added to the policy table needs its line here. */
    @Test
    void everyImplementedKeyHasACase() {
        Set<String> implemented = new TreeSet<>();
        AxolotlKeys.top().values().stream().filter(r -> r.policy() == AxolotlKeys.Policy.IMPLEMENTED)
                .forEach(r -> implemented.add(r.key()));
        AxolotlKeys.dataset().values().stream().filter(r -> r.policy() == AxolotlKeys.Policy.IMPLEMENTED)
                .forEach(r -> implemented.add(DS + r.key()));
        Set<String> covered = CASES.stream().map(Case::key).collect(Collectors.toCollection(TreeSet::new));
        assertEquals(CASES.size(), covered.size(), "one case per key");
        Set<String> missing = new TreeSet<>(implemented);
        missing.removeAll(covered);
        Set<String> stale = new TreeSet<>(covered);
        stale.removeAll(implemented);
        if (!missing.isEmpty() || !stale.isEmpty()) {
            fail("implemented keys without a case (add a line to CASES): " + missing
                    + "; cases for keys not implemented: " + stale);
        }
    }
}
