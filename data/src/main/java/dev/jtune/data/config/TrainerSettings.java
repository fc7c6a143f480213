package dev.jtune.data.config;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalLong;

/**
 * The config's model, adapter and trainer keys ({@code lora_r}, {@code learning_rate}, {@code bf16}, ...),
 * type-checked on load but kept as a map until the trainer reads them into its own records. Only keys
 * present in the file are in {@link #values()}; keys left empty in the YAML count as absent.
 *
 * <p>The typed accessors take the YAML key name and refuse names that are not in {@link #KEYS} or that
 * have another kind, so a misspelt key in Java code fails at once rather than reading as "not set".
 */
public record TrainerSettings(Map<String, Object> values) {

    /** What a key's value must be. */
    public enum Kind {
        /** A string; Java type {@link String}. */
        STRING,
        /** A whole number; Java type {@link Long}. */
        INTEGER,
        /** A number (an integer is taken too); Java type {@link Double}. */
        NUMBER,
        /** A boolean; Java type {@link Boolean}. */
        BOOLEAN,
        /** A boolean or the string {@code auto}; Java type {@link Boolean} or {@link String}. */
        BOOLEAN_OR_AUTO,
        /** A boolean or a string, e.g. {@code gradient_checkpointing: offload}. */
        STRING_OR_BOOLEAN,
        /** A list of strings (a single string is a list of one); Java type {@code List<String>}. */
        STRING_LIST,
        /** A string or a list of strings, kept apart (PEFT's target_modules); {@link String} or {@code List<String>}. */
        STRING_OR_LIST,
        /** A free-form mapping; Java type {@code Map<String, Object>} of plain Java values. */
        MAPPING
    }

    /** How one key is checked: its kind and, for closed sets of strings, the values allowed. */
    public record Spec(Kind kind, List<String> allowed) {
        public Spec {
            allowed = List.copyOf(allowed);
        }

        static Spec of(Kind kind) {
            return new Spec(kind, List.of());
        }
    }

    /** Every trainer-side key accepted, in Axolotl's spelling, with how it is checked. */
    public static final Map<String, Spec> KEYS = keys();

    private static Map<String, Spec> keys() {
        Map<String, Spec> keys = new LinkedHashMap<>();
        keys.put("adapter", new Spec(Kind.STRING, List.of("lora", "qlora")));
        // jtune's own: create base_model with this init-model preset when the folder does not exist yet.
        keys.put("base_model_init", new Spec(Kind.STRING, List.of("tiny")));
        for (String key : List.of("load_in_4bit", "load_in_8bit", "lora_target_linear", "peft_use_rslora",
                "lora_fan_in_fan_out", "fp16", "bfloat16", "float16", "tf32", "flash_attention", "sdp_attention", "xformers_attention",
                "strict", "eval_sample_packing", "group_by_length", "is_llama_derived_model",
                "do_causal_lm_eval", "merge_lora_on_finish", "resize_token_embeddings_to_32x",
                "mean_resizing_embeddings", "use_tensorboard", "load_best_model_at_end", "curriculum_sampling",
                "tokenizer_use_mistral_common", "reinit_weights")) {
            keys.put(key, Spec.of(Kind.BOOLEAN));
        }
        // Accepted with a line: jtune runs its own implementation of each family, never code from the model folder.
        keys.put("trust_remote_code", Spec.of(Kind.BOOLEAN));
        // fp8 training (trainer's Fp8Settings, quant.Fp8); the all-gather flag is read to name it in the log.
        keys.put("fp8", Spec.of(Kind.BOOLEAN));
        keys.put("fp8_enable_fsdp_float8_all_gather", Spec.of(Kind.BOOLEAN));
        keys.put("bf16", Spec.of(Kind.BOOLEAN_OR_AUTO));
        for (String key : List.of("gradient_checkpointing", "wandb_log_model", "wandb_watch")) {
            keys.put(key, Spec.of(Kind.STRING_OR_BOOLEAN));
        }
        for (String key : List.of("lora_r", "lora_alpha", "micro_batch_size", "gradient_accumulation_steps",
                "max_steps", "warmup_steps", "evals_per_epoch", "logging_steps", "saves_per_epoch",
                "save_total_limit", "dataloader_num_workers", "early_stopping_patience", "local_rank",
                "loss_watchdog_patience",
                "eval_table_size", "eval_max_new_tokens")) {
            keys.put(key, Spec.of(Kind.INTEGER));
        }
        // Axolotl's parallelism degrees: they fix the data-parallel layout the launched processes must have.
        for (String key : List.of("tensor_parallel_size", "context_parallel_size", "sequence_parallel_degree",
                "dp_shard_size", "dp_replicate_size")) {
            keys.put(key, Spec.of(Kind.INTEGER));
        }
        // eval_steps and save_steps may be a fraction of an epoch's steps, as in transformers.
        for (String key : List.of("lora_dropout", "num_epochs", "learning_rate", "warmup_ratio", "weight_decay",
                "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm", "eval_steps", "save_steps",
                "cosine_min_lr_ratio", "cosine_constant_lr_ratio", "loss_watchdog_threshold")) {
            keys.put(key, Spec.of(Kind.NUMBER));
        }
        for (String key : List.of("lora_model_dir", "optimizer", "lr_scheduler", "resume_from_checkpoint",
                "wandb_project", "wandb_entity", "wandb_name", "deepspeed")) {
            keys.put(key, Spec.of(Kind.STRING));
        }
        // tokens: new (non-special) tokens added to the tokenizer, as Axolotl's cfg.tokens.
        for (String key : List.of("lora_modules_to_save", "fsdp", "eval_causal_lm_metrics", "tokens",
                "unfrozen_parameters")) {
            keys.put(key, Spec.of(Kind.STRING_LIST));
        }
        // A string is a regular expression PEFT fully matches against module names; a list, names matched as suffixes.
        keys.put("lora_target_modules", Spec.of(Kind.STRING_OR_LIST));
        keys.put("fsdp_config", Spec.of(Kind.MAPPING));
        // lr_scheduler_kwargs: what transformers' get_scheduler passes to the schedule (num_cycles, min_lr, min_lr_rate).
        keys.put("lr_scheduler_kwargs", Spec.of(Kind.MAPPING));
        // added_tokens_overrides: {token id: new content} for tokens of tokenizer.json's added_tokens.
        keys.put("added_tokens_overrides", Spec.of(Kind.MAPPING));
        // qat: Axolotl's QATConfig (activation_dtype, weight_dtype, group_size, ...), read by trainer's QatSettings.
        keys.put("qat", Spec.of(Kind.MAPPING));
        // llmcompressor: Axolotl's LLMCompressorPlugin block (recipe, save_compressed), read by trainer's SparseFinetuning.
        keys.put("llmcompressor", Spec.of(Kind.MAPPING));
        // plugins: judged by AxolotlKeys; read by SparseFinetuning for the LLMCompressorPlugin entry.
        keys.put("plugins", Spec.of(Kind.STRING_OR_LIST));
        // LISA (trainer's Lisa): layers trainable at a time, steps between draws, the layers' attribute path.
        keys.put("lisa_n_layers", Spec.of(Kind.INTEGER));
        keys.put("lisa_step_interval", Spec.of(Kind.INTEGER));
        keys.put("lisa_layers_attribute", Spec.of(Kind.STRING));
        // peft: {loftq_config: {loftq_bits: 4}} (lora's Loftq).
        keys.put("peft", Spec.of(Kind.MAPPING));
        // ReLoRA and its jagged schedule (trainer's ReLora, optim's JaggedRestarts).
        keys.put("relora", Spec.of(Kind.BOOLEAN));
        keys.put("relora_cpu_offload", Spec.of(Kind.BOOLEAN));
        keys.put("relora_prune_ratio", Spec.of(Kind.NUMBER));
        keys.put("relora_prune_method", new Spec(Kind.STRING, List.of("magnitude", "random", "reset")));
        for (String key : List.of("jagged_restart_steps", "jagged_restart_warmup_steps", "jagged_restart_anneal_steps")) {
            keys.put(key, Spec.of(Kind.INTEGER));
        }
        // EAFT's entropy-weighted loss (trainer's Eaft); cls_model_config, compared with config.json's model_type.
        keys.put("use_eaft", Spec.of(Kind.BOOLEAN));
        keys.put("eaft_alpha", Spec.of(Kind.NUMBER));
        keys.put("eaft_k", Spec.of(Kind.INTEGER));
        keys.put("cls_model_config", Spec.of(Kind.STRING));
        // Axolotl's DiffusionPlugin (in plugins) and its diffusion: block, read by trainer's DiffusionSettings.
        keys.put("plugins", Spec.of(Kind.STRING_OR_LIST));
        keys.put("diffusion", Spec.of(Kind.MAPPING));
        return Collections.unmodifiableMap(keys);
    }

    /** No trainer keys set. */
    public static final TrainerSettings EMPTY = new TrainerSettings(Map.of());

    public TrainerSettings {
        for (String key : values.keySet()) spec(key);
        values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
    }

    private static Spec spec(String key) {
        Spec spec = KEYS.get(key);
        if (spec == null) {
            throw new IllegalArgumentException("not a trainer key: '" + key + "'" + Suggest.didYouMean(key, KEYS.keySet()));
        }
        return spec;
    }

    private Optional<Object> typed(String key, Kind... kinds) {
        Kind kind = spec(key).kind();
        if (!List.of(kinds).contains(kind)) {
            throw new IllegalArgumentException("'" + key + "' is a " + kind + " key, not " + List.of(kinds));
        }
        return Optional.ofNullable(values.get(key));
    }

    /** Whether the file gave the key a value. */
    public boolean has(String key) {
        spec(key);
        return values.containsKey(key);
    }

    /** The value of any key, as its {@link Kind} documents. */
    public Optional<Object> value(String key) {
        spec(key);
        return Optional.ofNullable(values.get(key));
    }

    public Optional<String> string(String key) {
        return typed(key, Kind.STRING).map(String.class::cast);
    }

    public OptionalLong integer(String key) {
        return typed(key, Kind.INTEGER).map(v -> OptionalLong.of((Long) v)).orElse(OptionalLong.empty());
    }

    public OptionalDouble number(String key) {
        return typed(key, Kind.NUMBER).map(v -> OptionalDouble.of((Double) v)).orElse(OptionalDouble.empty());
    }

    public Optional<Boolean> bool(String key) {
        return typed(key, Kind.BOOLEAN).map(Boolean.class::cast);
    }

    /** A list key's strings; for a {@link Kind#STRING_OR_LIST} key, a string given alone is a list of one. */
    @SuppressWarnings("unchecked")
    public List<String> strings(String key) {
        return typed(key, Kind.STRING_LIST, Kind.STRING_OR_LIST)
                .map(v -> v instanceof String str ? List.of(str) : (List<String>) v).orElse(List.of());
    }

    @SuppressWarnings("unchecked")
    public Map<String, Object> mapping(String key) {
        return typed(key, Kind.MAPPING).map(v -> (Map<String, Object>) v).orElse(Map.of());
    }

    /** Reads and checks one key's YAML value against its spec. */
    static Object read(String key, YamlValue value) {
        Spec spec = KEYS.get(key);
        return switch (spec.kind()) {
            case STRING -> spec.allowed().isEmpty() ? value.asString() : value.asOneOf(spec.allowed());
            case INTEGER -> readInteger(key, value);
            case NUMBER -> value.asDouble();
            case BOOLEAN -> value.asBoolean();
            case BOOLEAN_OR_AUTO -> readBooleanOrAuto(value);
            case STRING_OR_BOOLEAN -> readStringOrBoolean(value);
            case STRING_LIST -> {
                if (key.equals("tokens") && value.describe().equals("a mapping")) {
                    // Older Axolotl examples (archived/jeopardy-bot) wrote special tokens here; the schema at
                    // AxolotlKeys.COMMIT types tokens as list[str] and rejects a mapping too.
                    throw value.error("expected a list of new tokens (Axolotl's schema: list[str]), got a mapping;"
                            + " bos_token, eos_token, pad_token and unk_token go under special_tokens:");
                }
                yield value.asStringList();
            }
            case STRING_OR_LIST -> value.isString() ? value.asString() : value.asStringList();
            case MAPPING -> {
                value.asOpenMapping(); // for the type and duplicate checks, with positions
                yield value.toJava();
            }
        };
    }

    /**
     * An integer key as Axolotl's pydantic schema ({@code int}) reads it: an integer, or a number without a
     * fraction ({@code 10.0}); {@code warmup_steps: 0.1} is refused there too ("got a number with a fractional
     * part"), the share of steps being {@code warmup_ratio}.
     */
    private static long readInteger(String key, YamlValue value) {
        if (value.isInteger()) return value.asLong();
        if (key.startsWith("jagged_restart_") && value.isBoolean()) {
            return value.asBoolean() ? 1 : 0; // pydantic's int accepts a bool (relora.yml: anneal_steps: false)
        }
        double d;
        try {
            d = value.asDouble();
        } catch (ConfigException e) {
            throw value.error("expected an integer, got " + value.describe());
        }
        if (d == Math.rint(d) && Math.abs(d) < 1e15) return (long) d;
        throw value.error("expected an integer, got " + value.describe() + (key.equals("warmup_steps")
                ? " (Axolotl's schema refuses a fraction too); a share of the training steps is warmup_ratio: " + d
                : ""));
    }

    private static Object readBooleanOrAuto(YamlValue value) {
        if (value.isBoolean()) return value.asBoolean();
        if (value.isString() && value.asString().equals("auto")) return "auto";
        throw value.error("expected true, false or 'auto', got " + value.describe());
    }

    private static Object readStringOrBoolean(YamlValue value) {
        if (value.isBoolean()) return value.asBoolean();
        if (value.isString()) return value.asString();
        throw value.error("expected a string or true/false, got " + value.describe());
    }
}
