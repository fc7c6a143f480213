package dev.jtune.data.config;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * Axolotl's whole config schema at one commit ({@link #COMMIT}), each key with exactly one {@link Policy}: what
 * jtune does when a config sets it. This table is the single place that decides; README renders it
 * ({@code AxolotlKeysReadmeTest}) and {@code AxolotlKeysTest} walks the key list extracted from Axolotl's
 * pydantic models ({@code tools/axolotl/schema_keys.py}) so that no key goes without one.
 *
 * <p>A key set to nothing is absent. A key whose policy is not {@link Policy#IMPLEMENTED} and whose value is
 * "off" ({@code false}, an empty list or mapping) is accepted without a word: it asks for nothing jtune lacks.
 * Some keys judge by their value ({@code optimizer}, {@code attn_implementation}, {@code plugins}, ...); their
 * {@link Rule#values()} says how.
 */
public final class AxolotlKeys {
    /** github.com/axolotl-ai-cloud/axolotl, main on 2026-07-24 (#3859): the schema this table covers. */
    public static final String COMMIT = "067b021c8b87a9e5e380b9173c704cf7340e30f5";

    /** What jtune does with a key. */
    public enum Policy {
        /** Read, with Axolotl's meaning. */
        IMPLEMENTED,
        /** A speed, memory or bookkeeping choice whose result jtune's own code already gives: one info line. */
        EQUIVALENT,
        /** An online service or a report jtune does not produce (hub pushes, trackers): one warning line. */
        NOT_OFFLINE,
        /** Would change the result and jtune does not do it: an error naming the key, the value and the way out. */
        REFUSED
    }

    /**
     * What one value of a key comes to.
     *
     * @param policy {@link Policy#IMPLEMENTED} for "accepted, nothing to say"
     * @param note what jtune does instead (equivalent), what is not done (not offline), what to use (refused)
     */
    public record Verdict(Policy policy, String note) {
        static final Verdict QUIET = new Verdict(Policy.IMPLEMENTED, "");
    }

    /**
     * One key's policy.
     *
     * @param key as a user writes it
     * @param policy the policy for a value that is set (not off)
     * @param note see {@link Verdict#note()}
     * @param values when the value decides: how, in words, for README
     * @param judge the rule itself, when the value decides
     */
    public record Rule(String key, Policy policy, String note, Optional<String> values,
            Optional<Function<Object, Verdict>> judge) {

        /** The verdict on a value (plain Java: Boolean, Long, Double, String, List, Map). */
        public Verdict judge(Object value) {
            if (judge.isPresent()) return judge.get().apply(value);
            if (policy == Policy.IMPLEMENTED || isOff(value)) return Verdict.QUIET;
            return new Verdict(policy, note);
        }
    }

    /** Keys jtune reads that Axolotl's schema does not have (jtune's own). */
    public static final List<String> JTUNE_ONLY = List.of("base_model_init", "merge_lora_on_finish");

    /**
     * The vocabulary keys, implemented by the vocabulary work (its own branch): implemented here, read there. Until
     * it lands they are accepted and not yet read, the one exception {@code AxolotlKeysTest} allows.
     */
    public static final List<String> VOCABULARY = List.of("tokens", "added_tokens_overrides",
            "resize_token_embeddings_to_32x", "mean_resizing_embeddings");

    /**
     * Keys that older Axolotl versions had and real configs still carry (the historic QLoRA recipe's {@code debug},
     * the GPTQ settings of Axolotl's archived examples), judged like the rest.
     */
    public static final List<String> LEGACY = List.of("debug", "gptq_groupsize", "gptq_model_v1",
            "gptq_disable_exllama");

    private static final Map<String, Rule> TOP = new LinkedHashMap<>();
    private static final Map<String, Rule> DATASET = new LinkedHashMap<>();

    /** Every top-level key: Axolotl's schema, {@link #JTUNE_ONLY} and {@link #LEGACY}. */
    public static Map<String, Rule> top() {
        return Collections.unmodifiableMap(TOP);
    }

    /**
     * Every key of one {@code datasets:} entry in Axolotl's SFT schema ({@code SFTDataset}), and those only its
     * preference, reward and synthetic entries have (refused: jtune trains SFT).
     */
    public static Map<String, Rule> dataset() {
        return Collections.unmodifiableMap(DATASET);
    }

    static boolean isOff(Object value) {
        return value == null || Boolean.FALSE.equals(value) || value instanceof List<?> l && l.isEmpty()
                || value instanceof Map<?, ?> m && m.isEmpty();
    }

    private static void put(Map<String, Rule> table, Policy policy, String note, String... keys) {
        for (String key : keys) add(table, new Rule(key, policy, note, Optional.empty(), Optional.empty()));
    }

    private static void add(Map<String, Rule> table, Rule rule) {
        if (table.putIfAbsent(rule.key(), rule) != null) {
            throw new IllegalStateException("two policies for '" + rule.key() + "'"); // one key, one policy
        }
    }

    private static void valued(String key, Policy policy, String note, String values, Function<Object, Verdict> judge) {
        add(TOP, new Rule(key, policy, note, Optional.of(values), Optional.of(judge)));
    }

    private static void implemented(String... keys) {
        put(TOP, Policy.IMPLEMENTED, "", keys);
    }

    private static void equivalent(String note, String... keys) {
        put(TOP, Policy.EQUIVALENT, note, keys);
    }

    private static void notOffline(String note, String... keys) {
        put(TOP, Policy.NOT_OFFLINE, note, keys);
    }

    private static void refused(String instead, String... keys) {
        put(TOP, Policy.REFUSED, instead, keys);
    }

    /** The {@code diffusion:} block's line: what it asks for that jtune does not print, or Axolotl does not use. */
    private static Verdict diffusionVerdict(Object v) {
        Map<?, ?> block = v instanceof Map<?, ?> m ? m : Map.of();
        List<String> unused = java.util.stream.Stream.of("noise_schedule", "min_mask_ratio", "max_mask_ratio",
                "num_diffusion_steps").filter(block::containsKey).toList();
        String unusedNote = unused.isEmpty() ? "" : String.join(", ", unused) + " are read by Axolotl's schema but not"
                + " by its DiffusionTrainer (t ~ U[0,1), masking probability (1 - eps) t + eps): no effect here either";
        if (!Boolean.FALSE.equals(block.get("generate_samples"))) {
            return new Verdict(Policy.NOT_OFFLINE, "no reverse-diffusion samples are printed during training"
                    + " (generate_samples is on unless false; generation_* set how Axolotl's callback samples)"
                    + (unusedNote.isEmpty() ? "" : "; " + unusedNote));
        }
        return unusedNote.isEmpty() ? Verdict.QUIET : equivalentVerdict(unusedNote);
    }

    private static Verdict equivalentVerdict(String note) {
        return new Verdict(Policy.EQUIVALENT, note);
    }

    private static Verdict refusedVerdict(String instead) {
        return new Verdict(Policy.REFUSED, instead);
    }

    // What jtune does instead, said once per family of keys.
    private static final String ATTENTION = "jtune computes exact attention with its own kernel (libtorch's"
            + " scaled_dot_product_attention, causal, per packed sample): the same numbers as eager attention";
    private static final String KERNELS = "jtune runs its own fused kernels for these layers; the numbers are"
            + " those of the reference implementation";
    private static final String COMPILE = "jtune does not compile the model; its kernels are already fused";
    private static final String WORKERS = "jtune reads and tokenizes data with its own threads";
    private static final String DISTRIBUTED = "jtune's launcher (./launch.sh --nproc-per-node N) sets up ranks and"
            + " devices itself";
    private static final String SFT_ONLY = "jtune trains causal-LM SFT only (full, LoRA, QLoRA); preference, reward"
            + " and RL training are not implemented";
    private static final String TRACKER = "not sent: jtune works offline; loss, lr and grad norm are in"
            + " output_dir/metrics.jsonl";
    private static final String HUB = "not pushed: jtune works offline; the result stays in output_dir";
    private static final String PEFT = "jtune's adapters are plain LoRA (lora_r, lora_alpha, lora_dropout,"
            + " lora_target_modules/linear, peft_use_rslora, lora_modules_to_save)";
    private static final String OPTIMIZER = "jtune implements AdamW: optimizer adamw_torch (adamw_torch_fused is the"
            + " same update), bitsandbytes' 8-bit AdamW (adamw_bnb_8bit, adamw_8bit, paged_adamw_8bit) and 32-bit AdamW"
            + " (paged_adamw_32bit), torchao's AdamW8bit (adamw_torch_8bit) and AdamW4bit (adamw_torch_4bit), and"
            + " Axolotl's Muon (muon); lr_scheduler cosine, linear, constant,"
            + " constant_with_warmup or cosine_with_min_lr";
    private static final String QUANT = "jtune quantizes the frozen base as bitsandbytes does, with its defaults:"
            + " NF4 (load_in_4bit: true with adapter: qlora) or LLM.int8 (load_in_8bit: true with adapter: lora)";
    private static final String PARALLEL = "jtune shards data-parallel only: fsdp: [full_shard, auto_wrap] over"
            + " ./launch.sh --nproc-per-node N";
    private static final String TP_CP = "the ranks of a tensor/context-parallel group share one micro-batch and"
            + " together compute what one device would; jtune computes a group's share in one process (the same"
            + " numbers up to summation order): start one process per data-parallel rank";
    private static final String DP = "jtune's processes are the data-parallel ranks (dp_replicate_size ×"
            + " dp_shard_size, Axolotl's layout rule, checked at train); dp_shard is jtune's FSDP sharding over them,"
            + " replicas are whole copies: the same update and global batch";
    private static final String MODEL = "jtune builds the architecture that base_model's config.json names, with"
            + " its own implementation, and changes nothing in it";
    private static final String OFFLOAD = "jtune keeps saved activations in memory (gradient_checkpointing: true"
            + " recomputes each decoder layer); offloading copies them to host memory or disk and back unchanged:"
            + " the same gradients";
    private static final String DATA = "jtune reads the datasets: entries as given (local files or a prepared"
            + " Hub snapshot)";

    static {
        // --- implemented: read by ConfigReader, TrainerSettings users (LoraSettings, RunSettings, TrainerOptions, Fsdp)
        implemented("base_model", "tokenizer_config", "output_dir", "load_in_4bit", "adapter", "lora_model_dir",
                "lora_r", "lora_alpha", "lora_fan_in_fan_out", "lora_target_modules", "lora_target_linear",
                "lora_modules_to_save", "lora_dropout", "peft_use_rslora", "gradient_accumulation_steps",
                "micro_batch_size", "train_on_inputs", "learning_rate", "weight_decay", "adam_epsilon", "adam_beta1",
                "adam_beta2", "max_grad_norm", "num_epochs", "datasets", "test_datasets", "shuffle_merged_datasets",
                "dataset_prepared_path", "seed", "do_causal_lm_eval", "eval_causal_lm_metrics", "eval_max_new_tokens",
                "bf16", "fp16", "sequence_len", "excess_length_strategy", "sample_packing", "pad_to_sequence_len",
                "fsdp", "val_set_size", "max_steps", "warmup_steps", "warmup_ratio", "eval_steps",
                "evals_per_epoch", "save_steps", "saves_per_epoch", "save_total_limit", "logging_steps",
                "resume_from_checkpoint", "chat_template", "chat_template_jinja", "chat_template_kwargs",
                "eot_tokens");
        // model_type and trust_remote_code: checked against the checkpoint, with a line once config.json is read
        // (RunSettings.architectureNotes).
        implemented("model_type", "trust_remote_code");
        // TensorBoard event files under output_dir/runs, as HF Trainer's TensorBoardCallback (trainer's TensorBoard).
        implemented("use_tensorboard");
        // Axolotl's freeze_layers_except on named_parameters (the PEFT model's names under an adapter):
        // trainer's UnfrozenParameters.
        implemented("unfrozen_parameters");
        // transformers' EarlyStoppingCallback on eval_loss and load_best_model_at_end as Axolotl passes them
        // (trainer's EarlyStopping; Axolotl's check: save_steps and eval_steps set, the first a multiple of the second).
        implemented("early_stopping_patience", "load_best_model_at_end");
        // Axolotl's LossWatchDogCallback (trainer's LossWatchdog).
        implemented("loss_watchdog_threshold", "loss_watchdog_patience");
        // Axolotl's streamed, packed data path (ConfigReader.readStreaming, data's Preprocessor.streamed): windows
        // with EOS, buffers of rows packed first-fit into micro_batch_size x sequence_len rows, documents kept apart.
        // transformers' _init_weights for a fresh model of the checkpoint's config (model's RandomInit), not its weights.
        implemented("reinit_weights");
        implemented("pretraining_dataset", "pretrain_multipack_attn", "pretrain_multipack_buffer_size", "streaming",
                "streaming_multipack_buffer_size");
        // transformers' LengthGroupedSampler order (trainer's LengthGrouped); no effect with sample_packing, as Axolotl.
        implemented("group_by_length");
        // SequentialSampler instead of shuffling, and a single dataset not shuffled when merged (Axolotl's
        // _get_train_sampler and merge_datasets); with sample_packing refused (RunSettings).
        implemented("curriculum_sampling");
        // Data pipeline (Preprocessor), as Axolotl's utils/data: samples under min_sample_len tokens dropped with the
        // long ones; identical tokenized samples of a split dropped, the first kept (sha256 of the row).
        implemented("min_sample_len", "dataset_exact_deduplication");
        // Axolotl's cosine floor (utils/schedulers.py), with lr_scheduler: cosine; LrSchedule.Extras.
        for (String key : List.of("cosine_min_lr_ratio", "cosine_constant_lr_ratio")) {
            valued(key, Policy.IMPLEMENTED, "", "a ratio in [0, 1]: implemented (with lr_scheduler: cosine, as"
                    + " Axolotl); outside it refused", v -> v instanceof Number n && n.doubleValue() >= 0
                            && n.doubleValue() <= 1 ? Verdict.QUIET
                            : refusedVerdict("give a ratio between 0.0 and 1.0 (of learning_rate; Axolotl asserts"
                                    + " the same)"));
        }
        // The vocabulary keys (tokens, special tokens, embedding resizing) belong to the vocabulary work.
        implemented("special_tokens");
        implemented(VOCABULARY.toArray(String[]::new));
        implemented(JTUNE_ONLY.toArray(String[]::new));
        valued("base_model_config", Policy.REFUSED, "jtune reads config.json from base_model; give the model"
                        + " folder that holds both", "accepted when equal to base_model, else refused",
                v -> refusedVerdict("jtune reads config.json from base_model; give the model folder that holds both"));
        valued("optimizer", Policy.IMPLEMENTED, OPTIMIZER,
                "adamw_torch, adamw_torch_fused, adamw_bnb_8bit, adamw_8bit, adamw_torch_8bit, adamw_torch_4bit, muon:"
                        + " implemented; paged_adamw_8bit,"
                        + " paged_adamw_32bit: equivalent (bitsandbytes' update, not paged); others refused",
                v -> switch (String.valueOf(v)) {
                    case "adamw_torch", "adamw_torch_fused", "adamw_bnb_8bit", "adamw_8bit", "adamw_torch_8bit",
                            "adamw_torch_4bit" -> Verdict.QUIET;
                    // axolotl-contribs-mit's Muon (trainer's Muon): Newton-Schulz on matrices, AdamW on the rest
                    case "muon" -> Verdict.QUIET;
                    case "paged_adamw_8bit" -> equivalentVerdict("jtune runs bitsandbytes' 8-bit AdamW (the update of"
                            + " adamw_bnb_8bit); paging optimizer state to host memory is a GPU memory policy");
                    case "paged_adamw_32bit" -> equivalentVerdict("jtune runs bitsandbytes' 32-bit AdamW (adamw_torch's"
                            + " update with eps scaled by the bias correction and weight decay after the step);"
                            + " paging optimizer state to host memory is a GPU memory policy");
                    default -> refusedVerdict(OPTIMIZER);
                });
        valued("lr_scheduler", Policy.IMPLEMENTED, OPTIMIZER,
                "cosine, linear, constant, constant_with_warmup, cosine_with_min_lr: implemented; others refused",
                v -> List.of("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_min_lr")
                        .contains(String.valueOf(v)) ? Verdict.QUIET : refusedVerdict(OPTIMIZER));
        // transformers' get_scheduler(scheduler_specific_kwargs=...): the kwargs of the cosine schedules.
        valued("lr_scheduler_kwargs", Policy.IMPLEMENTED, OPTIMIZER,
                "num_cycles, min_lr, min_lr_rate (numbers): implemented; other kwargs refused",
                v -> v instanceof Map<?, ?> m && m.entrySet().stream().allMatch(e -> e.getValue() instanceof Number
                        && List.of("num_cycles", "min_lr", "min_lr_rate").contains(String.valueOf(e.getKey())))
                        ? Verdict.QUIET
                        : refusedVerdict("jtune reads lr_scheduler_kwargs num_cycles (cosine schedules) and min_lr or"
                                + " min_lr_rate (lr_scheduler: cosine_with_min_lr), as numbers"));
        // Axolotl's validator rewrites offload / offload_disk to gradient_checkpointing: true with
        // activation_offloading: true / disk (schemas/validation.py, check_gradient_checkpointing_w_offload).
        valued("gradient_checkpointing", Policy.IMPLEMENTED, "",
                "true/false: implemented; offload, offload_disk: checkpointing implemented, the offload equivalent",
                v -> v instanceof Boolean ? Verdict.QUIET
                        : List.of("offload", "offload_disk").contains(String.valueOf(v)) ? equivalentVerdict(OFFLOAD)
                        : refusedVerdict("give true or false (or Axolotl's offload / offload_disk)"));
        valued("activation_offloading", Policy.EQUIVALENT, OFFLOAD,
                "true, legacy, disk, hidden_states: equivalent; anything else refused",
                v -> Boolean.FALSE.equals(v) ? Verdict.QUIET
                        : Boolean.TRUE.equals(v) || List.of("legacy", "disk", "hidden_states").contains(String.valueOf(v))
                        ? equivalentVerdict(OFFLOAD) : refusedVerdict("give true, legacy, disk or hidden_states"));
        valued("fsdp_config", Policy.IMPLEMENTED, "", "implemented (README: FSDP); offload_params: true equivalent",
                v -> v instanceof Map<?, ?> m && m.entrySet().stream().anyMatch(e -> Boolean.TRUE.equals(e.getValue())
                        && List.of("fsdp_offload_params", "offload_params", "fsdp_cpu_offload", "cpu_offload")
                                .contains(String.valueOf(e.getKey())))
                        ? equivalentVerdict("jtune keeps the sharded parameters, gradients and optimizer state where"
                                + " it computes; offloading them to host memory moves them, not their values: the"
                                + " same update")
                        : Verdict.QUIET);

        // --- equivalent: kernels, attention backends, compilation, workers
        equivalent(ATTENTION, "flash_attention", "sdp_attention", "xformers_attention", "flex_attention",
                "eager_attention", "flash_attn_cross_entropy", "flash_attn_fuse_mlp", "flash_attn_rms_norm",
                "flash_optimum", "sdpa_varlen", "large_head_attention", "flash_attn_d512", "fused_attn_kernel",
                "flex_attn_compile_kwargs", "gemma4_hybrid_attn_impl");
        valued("attn_implementation", Policy.EQUIVALENT, ATTENTION,
                "eager, sdpa, flash_attention_2, flash_attention_3, flex_attention, xformers and Hub flash-attention"
                        + " kernels: equivalent; sage, fp8 (approximate attention) and anything else: refused",
                v -> {
                    String s = String.valueOf(v);
                    if (List.of("eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention", "xformers")
                            .contains(s) || s.matches("kernels-community/(vllm-)?flash-attn[0-9]*")) {
                        return equivalentVerdict(ATTENTION);
                    }
                    return refusedVerdict("jtune computes exact attention (eager, sdpa, flash_attention_2,"
                            + " flex_attention are accepted and give its numbers)");
                });
        equivalent(KERNELS, "use_kernels", "lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel",
                "lora_embedding_kernel", "liger_rope", "liger_rms_norm", "liger_rms_norm_gated", "liger_layer_norm",
                "liger_swiglu", "liger_glu_activation", "liger_cross_entropy", "tiled_mlp",
                "tiled_mlp_num_shards", "tiled_mlp_use_original_mlp", "batch_flattening");
        // What these kernels exist for, jtune's training loss always does (trainer's ForwardBackward.headLoss).
        equivalent("jtune always computes the head and the loss in chunks of trained tokens, each chunk's backward"
                        + " at once (about 16M logits alive at a time, 64M when the head's own weight trains: 130 or"
                        + " 523 tokens with Llama 3's vocabulary; the chunk size is set by the vocabulary, not by these"
                        + " keys): the same loss and gradients as the whole logits",
                "liger_fused_linear_cross_entropy", "cut_cross_entropy", "chunked_cross_entropy",
                "chunked_cross_entropy_num_chunks");
        // SwanLab's plugin (integrations/swanlab at COMMIT) only registers its tracker's callbacks: metrics, the
        // config and Lark notifications sent to swanlab.cn, completions of RL runs; nothing that changes training.
        // The DiffusionPlugin (integrations/diffusion at COMMIT) swaps the objective: trainer's Diffusion implements it.
        valued("plugins", Policy.EQUIVALENT, KERNELS,
                "Liger and cut cross-entropy (kernel swaps): equivalent; SwanLab (an online experiment tracker, like"
                        + " wandb): not available offline; the DiffusionPlugin: implemented (see diffusion);"
                        + " LLMCompressor (sparse fine-tuning, its llmcompressor: block): implemented; any other plugin:"
                        + " refused",
                v -> {
                    List<?> names = v instanceof List<?> l ? l : List.of(String.valueOf(v));
                    boolean tracker = false;
                    boolean kernels = false;
                    for (Object name : names) {
                        String s = String.valueOf(name);
                        if (s.equals("axolotl.integrations.diffusion.DiffusionPlugin")) {
                            continue;
                        } else if (s.contains(".swanlab.")) {
                            tracker = true;
                        } else if (s.contains(".llm_compressor.")) {
                            continue; // implemented: its llmcompressor: block (trainer's SparseFinetuning)
                        } else if (!s.contains(".liger.") && !s.contains(".cut_cross_entropy.")) {
                            return refusedVerdict("plugin " + s + " is not available; jtune accepts the Liger and"
                                    + " cut cross-entropy plugins, whose kernels its own already match, the"
                                    + " DiffusionPlugin, LLMCompressor's sparse fine-tuning and SwanLab's tracker"
                                    + " (not sent)");
                        } else {
                            kernels = true;
                        }
                    }
                    if (tracker) return new Verdict(Policy.NOT_OFFLINE, "SwanLab: " + TRACKER);
                    return kernels ? equivalentVerdict(KERNELS) : Verdict.QUIET;
                });
        equivalent("jtune's gradient_checkpointing recomputes whole decoder layers; these options change only how"
                        + " memory is saved, not the result",
                "gradient_checkpointing_kwargs", "selective_checkpointing", "dynamic_checkpoint");
        equivalent(COMPILE, "torch_compile", "torch_compile_backend", "torch_compile_mode", "torch_compile_options",
                "deepcompile");
        equivalent("jtune computes fp32 matrix products in full fp32 (tf32 is an NVIDIA tensor-core shortcut)",
                "tf32");
        equivalent(WORKERS, "dataloader_num_workers", "dataloader_pin_memory", "dataloader_prefetch_factor",
                "dataset_processes", "dataset_num_proc", "dataset_keep_in_memory", "num_dataset_shards_to_save",
                "skip_prepare_dataset", "preprocess_iterable", "remove_unused_columns");
        equivalent("jtune packs with its own sampler (README: sample packing); these tune Axolotl's",
                "sample_packing_group_size", "sample_packing_bin_size", "sample_packing_sequentially",
                "sample_packing_mp_start_method", "sample_packing_eff_est", "total_num_tokens",
                "total_supervised_tokens", "pad_to_multiple_of");
        equivalent("jtune evaluates unpacked rows in batches of micro_batch_size; the held-out loss is the same",
                "eval_sample_packing", "eval_batch_size");
        equivalent(DISTRIBUTED, "ddp", "ddp_timeout", "ddp_bucket_cap_mb", "ddp_broadcast_buffers",
                "ddp_find_unused_parameters", "world_size", "local_rank", "device", "device_map",
                "accelerator_config", "low_cpu_mem_usage", "max_memory", "gpu_memory_limit", "gc_steps",
                "torch_empty_cache_steps", "gc_collect_steps", "experimental_skip_move_to_device",
                "qlora_sharded_model_loading", "lora_on_cpu", "auto_find_batch_size");
        equivalent(MODEL, "is_falcon_derived_model", "is_llama_derived_model", "is_mistral_derived_model",
                "is_qwen_derived_model");
        equivalent("jtune tokenizes as tokenizer.json says, with its own tokenizer", "tokenizer_type",
                "tokenizer_use_fast", "tokenizer_save_jinja_files");
        equivalent("jtune reads the config file as given; there are no command-line overrides or internal keys",
                "strict", "is_preprocess", "axolotl_config_path");
        equivalent("jtune has no debug mode; ./launch.sh preprocess CONFIG --show N prints tokenized rows", "debug");
        equivalent("no effect without gptq: true, which jtune refuses (it quantizes to NF4 only)", "gptq_groupsize",
                "gptq_model_v1", "gptq_disable_exllama");
        equivalent("jtune checkpoints by save_steps/saves_per_epoch and evaluates by eval_steps/evals_per_epoch;"
                        + " checkpoints always hold the optimizer state (resumable)", "save_strategy",
                "eval_strategy", "evaluation_strategy", "save_only_model", "save_first_step");
        // The metric of early_stopping_patience and load_best_model_at_end: jtune's evaluation measures eval_loss only.
        valued("metric_for_best_model", Policy.EQUIVALENT, "", "loss or eval_loss: quiet (what jtune compares); others"
                + " refused", v -> List.of("loss", "eval_loss").contains(String.valueOf(v)) ? Verdict.QUIET
                        : refusedVerdict("jtune's evaluation measures eval_loss only: give metric_for_best_model: loss"));
        valued("greater_is_better", Policy.EQUIVALENT, "", "false: quiet; true refused (the best eval loss is the"
                + " lowest)", v -> Boolean.TRUE.equals(v) ? refusedVerdict("the best eval_loss is the lowest: leave"
                        + " greater_is_better unset or false") : Verdict.QUIET);
        equivalent("jtune writes its FSDP checkpoints as the full state; FSDP1 and FSDP2 compute the same",
                "fsdp_version", "fsdp_final_state_dict_type");
        equivalent("jtune tracks tokens/s always (metrics.jsonl)", "include_tokens_per_second", "include_tkps");
        equivalent("merge with ./launch.sh merge-lora CONFIG (or merge_lora_on_finish: true)", "merge_lora",
                "merge_method");
        valued("save_safetensors", Policy.EQUIVALENT, "jtune writes safetensors only",
                "true: implemented; false: refused (jtune writes safetensors only)",
                v -> Boolean.FALSE.equals(v) ? refusedVerdict("jtune writes safetensors only") : Verdict.QUIET);
        valued("float32", Policy.EQUIVALENT, "", "true or false: quiet (fp32 is jtune's precision unless bf16/fp16)",
                v -> Verdict.QUIET);

        // --- not offline: services and reports
        notOffline(TRACKER, "use_wandb", "wandb_name", "wandb_run_id", "wandb_mode", "wandb_project", "wandb_entity",
                "wandb_watch", "wandb_log_model", "use_mlflow", "mlflow_tracking_uri", "mlflow_experiment_name",
                "mlflow_run_name", "hf_mlflow_log_artifacts", "use_comet", "comet_api_key", "comet_workspace",
                "comet_project_name", "comet_experiment_key", "comet_mode", "comet_online", "comet_experiment_config",
                "use_trackio", "trackio_project_name", "trackio_run_name", "trackio_space_id", "use_otel_metrics",
                "otel_metrics_host", "otel_metrics_port", "use_swanlab", "swanlab_project", "swanlab_experiment_name",
                "swanlab_description", "swanlab_mode", "swanlab_workspace", "swanlab_api_key", "swanlab_log_model",
                "swanlab_web_host", "swanlab_api_host", "swanlab_lark_webhook_url", "swanlab_lark_secret",
                "swanlab_log_completions", "swanlab_completion_log_interval", "swanlab_completion_max_buffer",
                "eval_table_size");
        notOffline(HUB, "hub_model_id", "hub_strategy", "hub_revision", "push_dataset_to_hub");
        notOffline("jtune reads base_model and the datasets from disk, as they are there", "hf_use_auth_token",
                "model_revision");
        notOffline("not run: jtune runs no Ray cluster; use ./launch.sh --nproc-per-node N", "use_ray", "ray_run_name",
                "ray_num_workers", "resources_per_worker");
        notOffline("not run: no benchmark or lm-eval pass after training; use ./launch.sh score or inference",
                "do_bench_eval", "bench_dataset", "bench_split", "lm_eval_tasks", "lm_eval_batch_size",
                "lm_eval_post_train", "lm_eval_model");
        notOffline("no samples are generated during training; use ./launch.sh inference afterwards",
                "generate_samples", "num_generation_samples", "generation_max_new_tokens", "generation_temperature",
                "generation_top_p", "generation_top_k", "generation_prompt_ratio", "generation_do_sample");
        notOffline("no Gradio app: use ./launch.sh inference", "gradio_title", "gradio_share", "gradio_server_name",
                "gradio_server_port", "gradio_max_new_tokens", "gradio_temperature");
        notOffline("no profiler trace is written", "profiler_steps", "profiler_steps_start");

        // --- refused: each would change the result
        refused(SFT_ONLY, "rl", "trl", "vllm", "ebft", "reward_model", "process_reward_model",
                "center_rewards_coefficient", "num_labels", "dpo_use_weighting", "dpo_label_smoothing",
                "precompute_ref_log_probs", "dpo_use_liger_kernel", "dpo_padding_free", "dpo_loss_type",
                "dpo_loss_weights", "dpo_beta", "dpo_use_logits_to_keep", "dpo_generate_during_eval", "dpo_norm_loss",
                "rpo_alpha", "orpo_alpha", "simpo_gamma", "cpo_alpha", "kto_desirable_weight",
                "kto_undesirable_weight", "rl_beta", "max_prompt_len", "trainer_cls", "nemo_gym_enabled",
                "nemo_gym_dir", "nemo_gym_auto_clone", "nemo_gym_config_paths", "nemo_gym_head_port",
                "nemo_gym_server_timeout", "nemo_gym_verify_timeout", "nemo_gym_run_timeout", "nemo_gym_datasets",
                "nemo_gym_auto_start", "nemo_gym_model_name", "nemo_gym_multi_turn", "nemo_gym_max_turns",
                "kd_trainer", "kd_ce_alpha", "kd_alpha", "kd_temperature", "kd_beta", "kd_normalize_topk",
                "kd_online_server_base_url", "kd_online_topk", "kd_online_server", "kd_online_timeout",
                "kd_temperature_min", "hatchery");
        // The DiffusionPlugin's block (integrations/diffusion/args.py): trainer's DiffusionSettings validates every
        // sub-key and refuses the block without the plugin; eps, importance_weighting, mask_token_id/_str train.
        valued("diffusion", Policy.IMPLEMENTED, "", "eps, importance_weighting, mask_token_id, mask_token_str:"
                + " implemented (with plugins: [axolotl.integrations.diffusion.DiffusionPlugin]); noise_schedule,"
                + " min_mask_ratio, max_mask_ratio, num_diffusion_steps: validated, unused by Axolotl's trainer too"
                + " (info line); generate_samples (on by default) and generation_*: no samples are printed (warning)",
                AxolotlKeys::diffusionVerdict);
        refused("jtune trains text-only models; multimodal processors and image inputs are not implemented",
                "processor_type", "processor_kwargs", "image_size", "image_resize_algorithm", "freeze_mm_modules",
                "role_boundaries");
        implemented("load_in_8bit"); // quant.Int8: bitsandbytes' LLM.int8 base (threshold 6.0), adapter: lora
        // quant.Qat: torchao's fake quantization (int8 activations, int4 weights); other values refused by trainer's
        // QatSettings (ConfigChecks), naming them.
        implemented("qat");
        // trainer's SparseFinetuning: the LLMCompressorPlugin's recipe (ConstantPruningModifier keeps a sparse base's
        // zeros through full fine-tuning); other modifiers, adapters and save_compressed's format noted or refused there.
        implemented("llmcompressor");
        refused(QUANT, "gptq", "bnb_config_kwargs", "model_quantization_config",
                "model_quantization_config_kwargs", "use_onebitllms", "quantization", "nonexpert_quantization", "quantize_moe_experts",
                "gemma4_fp8_nonexpert", "gemma4_nf4_nonexpert", "nvfp4_merge_aware", "nvfp4_merge_aware_start_step",
                "dsv4_fp8_nonexpert_mode", "dsv4_fp8_lora_kernel", "dsv4_fp4_grouped_mode");
        // fp8: quant.Fp8, torchao 0.18.0's Float8Linear (tensorwise dynamic scales, e4m3 input and weight, e5m2
        // grad_output) emulated on the CPU, on the linears accelerate 1.15 converts; full fine-tuning (trainer's
        // Fp8Settings refuses the rest in ConfigChecks).
        implemented("fp8");
        // Float8 all-gather only changes what FSDP2 sends: each shard cast to e4m3 with the scale of the whole weight's
        // amax (torchao fsdp_utils fsdp_pre_all_gather, reduce_amax / precompute_float8_dynamic_scale_for_fsdp), the
        // same bits Float8Linear casts from the gathered weight; force_recompute_fp8_weight_in_bwd recasts the same.
        equivalent("jtune casts each converted projection's whole weight to e4m3 with one per-tensor scale, which is"
                + " what the float8 all-gather's shards assemble", "fp8_enable_fsdp_float8_all_gather");
        // bfloat16: the model in bf16 without autocast, which jtune's bf16 compute is (bf16: true, full or adapter).
        implemented("bfloat16");
        // float16: Axolotl's resolve_dtype loads the model in fp16 (torch_dtype float16) and, with fp16: false, the
        // Trainer runs no AMP: fp16 weights, gradients and updates in place, no loss scaling (an adapter: fp32 LoRA
        // over the fp16 base). jtune does the same with torch's, torchao's and bitsandbytes' AdamW (T = half).
        implemented("float16");
        refused("jtune keeps norms and embeddings in the compute dtype (as Axolotl does for adapters, with flash"
                + " attention or with FSDP); fp32 norms (Axolotl: FSDP2 only) and the embeddings' upcast switch are not"
                + " implemented", "fp32_norms", "fp32_norm_classes", "embeddings_skip_upcast");
        refused(PEFT, "lora_target_parameters", "lora_rank_pattern", "lora_alpha_pattern", "peft_layers_to_transform",
                "peft_layers_pattern", "peft_use_dora", "peft_layer_replication", "peft_trainable_token_indices",
                "peft_ensure_weight_tying", "loraplus_lr_ratio", "loraplus_lr_embedding", "mora",
                "spectrum_top_fraction", "spectrum_model_name");
        // Axolotl's ReLoRA callback and jagged schedule (trainer's ReLora, optim's JaggedRestarts); the combinations it
        // does not cover are refused there. relora_cpu_offload only moves where the merge's arithmetic runs.
        implemented("relora", "relora_prune_ratio", "relora_prune_method", "jagged_restart_steps",
                "jagged_restart_warmup_steps", "jagged_restart_anneal_steps");
        equivalent("jtune merges on the CPU that holds the weights: the same numbers", "relora_cpu_offload");
        // Axolotl's LISA callback (utils/callbacks/lisa.py) in full fine-tuning: trainer's Lisa; the combinations it
        // does not cover (an adapter, fsdp, one count without the other, another layers attribute) are refused there.
        implemented("lisa_n_layers", "lisa_step_interval", "lisa_layers_attribute");
        // peft: Axolotl's PeftConfig holds loftq_config only (loftq_bits); PEFT's LoftQ init (lora's Loftq), 4-bit.
        valued("peft", Policy.IMPLEMENTED, "", "{loftq_config: {loftq_bits: 4}}: implemented (PEFT's LoftQ"
                + " initialisation, adapter: lora); other bits refused", v -> v instanceof Map<?, ?> m
                && m.keySet().stream().allMatch("loftq_config"::equals)
                && (m.get("loftq_config") == null || m.get("loftq_config") instanceof Map<?, ?> l
                        && l.keySet().stream().allMatch("loftq_bits"::equals)
                        && (l.get("loftq_bits") == null || Integer.valueOf(4).equals(
                                l.get("loftq_bits") instanceof Number n ? n.intValue() : null)))
                ? Verdict.QUIET
                : refusedVerdict("jtune implements peft: {loftq_config: {loftq_bits: 4}} (PEFT's 4-bit LoftQ"
                        + " initialisation); 8-bit LoftQ is not ported"));
        valued("peft_init_lora_weights", Policy.REFUSED, PEFT, "true: implemented (PEFT's default init); others refused",
                v -> Boolean.TRUE.equals(v) ? Verdict.QUIET : refusedVerdict(PEFT + "; A is Kaiming-uniform, B zero"));
        valued("peft_autocast_adapter_dtype", Policy.REFUSED, PEFT, "true: implemented (adapters in fp32); false refused",
                v -> Boolean.TRUE.equals(v) ? Verdict.QUIET : refusedVerdict("jtune keeps adapter weights in fp32"));
        refused(OPTIMIZER, "embedding_lr", "embedding_lr_scale", "optim_args", "optim_target_modules", "torchdistx_path",
                "lr_quadratic_warmup", "lr_div_factor", "lr_groups", "adam_epsilon2", "adam_beta3", "dion_lr", "dion_momentum",
                "dion_rank_fraction", "dion_rank_multiple_of", "qgalore_rank", "qgalore_update_proj_gap",
                "qgalore_scale", "qgalore_proj_type", "qgalore_proj_quant", "qgalore_proj_bits",
                "qgalore_proj_group_size", "qgalore_cos_threshold", "qgalore_gamma_proj", "qgalore_queue_size",
                "grokfast_alpha",
                "grokfast_lamb", "neftune_noise_alpha", "noisy_embedding_alpha");
        // deepspeed: the JSON is read and checked when the config loads (trainer's DeepSpeed), which prints the one
        // info line naming the stage and what jtune runs; refusals (fp16, schedulers, ...) too. bf16 full fine-tuning
        // under DeepSpeed trains with fp32 master weights, as DeepSpeed's bf16 optimizer does.
        valued("deepspeed", Policy.EQUIVALENT, "ZeRO-1/2 run as jtune's data parallel, ZeRO-3 as FSDP full_shard,"
                        + " over ./launch.sh --nproc-per-node N: the same numbers; CPU offload is not done",
                "a DeepSpeed JSON (Axolotl's shipped deepspeed_configs/*.json are known by name): stages 0-3"
                        + " equivalent (bf16 without an adapter: fp32 master weights, as DeepSpeed's bf16); what would"
                        + " change the result (fp16, a scheduler, other optimizers, mismatched \"auto\" values) refused",
                v -> Verdict.QUIET);
        // Tensor/context parallelism split one micro-batch's work across devices; jtune computes a group's share in
        // one process, its processes being the data-parallel ranks, checked at train against Axolotl's own layout
        // rule (trainer's ParallelLayout, which also refuses what Axolotl's validators refuse).
        for (String key : List.of("tensor_parallel_size", "context_parallel_size", "sequence_parallel_degree")) {
            valued(key, Policy.EQUIVALENT, TP_CP, "1: quiet; more: equivalent (data-parallel ranks checked at train)",
                    v -> v instanceof Long n && n <= 1 ? Verdict.QUIET : equivalentVerdict(TP_CP));
        }
        for (String key : List.of("dp_shard_size", "dp_replicate_size")) {
            valued(key, Policy.EQUIVALENT, DP, "1: quiet; more: equivalent (checked against the processes at train)",
                    v -> v instanceof Long n && n <= 1 ? Verdict.QUIET : equivalentVerdict(DP));
        }
        // Axolotl's RingAttnFunc: how ring attention splits the work between context-parallel ranks, all exact.
        valued("ring_attn_func", Policy.EQUIVALENT, TP_CP, "varlen_llama3, batch_ring, batch_zigzag, batch_stripe:"
                + " equivalent; others refused", v -> List.of("varlen_llama3", "batch_ring", "batch_zigzag",
                        "batch_stripe").contains(String.valueOf(v)) ? equivalentVerdict(TP_CP)
                        : refusedVerdict("give one of varlen_llama3, batch_ring, batch_zigzag, batch_stripe (Axolotl's"
                                + " RingAttnFunc)"));
        equivalent(TP_CP + "; heads_k_stride only sets how many key heads each ring step exchanges", "heads_k_stride");
        valued("expert_parallel_size", Policy.REFUSED, PARALLEL, "1: quiet; more: refused",
                v -> v instanceof Long n && n <= 1 ? Verdict.QUIET : refusedVerdict(PARALLEL));
        refused(PARALLEL, "expert_parallel_backend",
                "expert_parallel_num_nvl_bytes", "expert_parallel_num_rdma_bytes", "expert_parallel_token_capacity",
                "expert_parallel_fallback_on_unsupported");
        equivalent("jtune keeps the frozen base where it computes; streaming it from host memory per layer moves"
                + " the weights, not their values", "layer_offloading");
        // ConfigClasses: the class AutoConfig picks for config.json's model_type is equivalent; ConfigChecks compares
        valued("cls_model_config", Policy.EQUIVALENT, "", "the transformers config class of a family jtune implements"
                + " (" + ConfigClasses.known() + "): equivalent, checked against config.json's model_type at load;"
                + " others refused", v -> ConfigClasses.modelType(String.valueOf(v)).isPresent()
                        ? equivalentVerdict("jtune reads config.json as " + v + " does (the class of model_type '"
                                + ConfigClasses.modelType(String.valueOf(v)).get() + "', checked against base_model)")
                        : refusedVerdict("jtune reads config.json by its own model_type; name the config class of"
                                + " one of the families it implements (" + ConfigClasses.known() + ") or drop the key"));
        refused(MODEL, "model_config", "model_kwargs", "rope_scaling",
                "shrink_embeddings", "s2_attention", "sage_attention", "scaling_softmax", "scaling_softmax_factor",
                "scaling_softmax_bias", "experts_implementation", "llama4_linearized_experts", "dense_mixer",
                "expert_backend", "moe_grouped_backend", "moe_dequant_chunk_size", "moe_bnb_fast", "use_scattermoe",
                "use_sonicmoe", "use_dsv4_kernels", "use_glm_dsa_kernels", "dsv4_shared_mlp_lora_kernel",
                "dsv4_bf16_all", "liger_use_token_scaling");
        // trainer Eaft: Axolotl's entropy-weighted loss (monkeypatch/loss/eaft.py), held-out eval refused with it
        implemented("use_eaft", "eaft_alpha", "eaft_k");
        refused("jtune tokenizes exactly as tokenizer.json says", "tokenizer_legacy", "fix_untrained_tokens");
        // the model folder's tekken.json and mistral-common's instruct encoding (v3/v7/v11/v13) with Axolotl's
        // MistralStrategy labels, for chat_template datasets (dataset.MistralChatSamples)
        implemented("tokenizer_use_mistral_common");
        refused(DATA + "; give sequence_len (with sample_packing: true to pack) and datasets:",
                "pretraining_sample_concatenation", "use_pose", "pose_split_on_token_ids", "pose_max_context_len",
                "pose_num_chunks", "dataset_shard_num", "dataset_shard_idx",
                "shuffle_before_merging_datasets", "multipack_real_batches",
                "eval_sequence_len", "default_system_message");
        // Axolotl's own schema rejects it (schemas/deprecated.py: DeprecationWarning "`max_packed_sequence_len` is no
        // longer supported"); the old packing it named is sample_packing with sequence_len.
        refused("Axolotl no longer supports it either ('`max_packed_sequence_len` is no longer supported'); give"
                + " sequence_len with sample_packing: true", "max_packed_sequence_len");
        refused("jtune batches by micro_batch_size and gradient_accumulation_steps; give those", "batch_size",
                "dataloader_drop_last");
        refused("give resume_from_checkpoint: auto (jtune resumes from output_dir's newest checkpoint)",
                "auto_resume_from_checkpoints");

        // --- one datasets: entry (Axolotl's SFTDataset)
        put(DATASET, Policy.IMPLEMENTED, "", "path", "split", "type", "data_files", "name", "ds_type", "field",
                "field_messages", "field_tools", "message_field_role", "message_field_content",
                "message_property_mappings", "message_field_training", "message_field_training_detail",
                "split_thinking", "roles_to_train", "train_on_eos", "roles", "drop_system_message", "chat_template");
        put(DATASET, Policy.EQUIVALENT, WORKERS, "preprocess_shards");
        put(DATASET, Policy.NOT_OFFLINE, "jtune reads the dataset from disk, as it is there", "trust_remote_code",
                "revision");
        put(DATASET, Policy.REFUSED, "give the top-level chat_template / chat_template_jinja (one template per run)",
                "chat_template_jinja", "conversation");
        put(DATASET, Policy.REFUSED, "give roles: {user: [human], assistant: [gpt]} to map speaker names",
                "field_human", "field_model");
        put(DATASET, Policy.REFUSED, DATA, "input_transform", "shards", "shards_idx", "input_format", "field_thinking",
                "template_thinking_key", "train_on_eot");
        put(DATASET, Policy.REFUSED, SFT_ONLY, "logprobs_field", "temperature");
        // Entries of preference, reward and synthetic data (DPODataset, StepwiseSupervisedDataset, SyntheticDataset).
        put(DATASET, Policy.REFUSED, SFT_ONLY, "field_chosen", "field_rejected", "step_separator",
                "max_completion_length", "train_on_last_step_only");
        put(DATASET, Policy.REFUSED, DATA + "; jtune generates no synthetic data", "length", "sequence_length",
                "min_input_id", "max_input_id", "seed");
    }

    private AxolotlKeys() {}
}
