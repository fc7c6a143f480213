package dev.jtune.trainer.setup;

import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.config.TrainerSettings;
import dev.jtune.model.engine.Dtype;
import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * The config keys the verbs themselves read (the trainer's own are {@code TrainerOptions}, the adapter's
 * {@code LoraSettings}), read once, at the edge, into types.
 *
 * @param baseModelInit {@code base_model_init}: the init-model preset that creates {@code base_model} when absent
 * @param loadIn4bit {@code load_in_4bit}: the frozen base in NF4 (QLoRA)
 * @param loadIn8bit {@code load_in_8bit}: the frozen base in bitsandbytes' LLM.int8() (with {@code adapter: lora})
 * @param loraModelDir {@code lora_model_dir}: a PEFT adapter to apply (inference, merge-lora) or to continue
 *     training (train: its weights and its adapter_config.json replace a fresh adapter, as PEFT's
 *     {@code PeftModel.from_pretrained(..., is_trainable=True)} in Axolotl)
 * @param inferenceDtype the dtype generation computes in: {@code bf16: true | auto} → bf16 (libtorch computes bf16
 *     on CPU too), {@code fp16: true} or {@code float16: true} → fp16, else fp32
 * @param evalMaxNewTokens {@code eval_max_new_tokens}, if set
 * @param exactMatchEval {@code do_causal_lm_eval: true} with {@code eval_causal_lm_metrics: [exact_match]}
 * @param mergeLoraOnFinish {@code merge_lora_on_finish}: also write {@code output_dir/merged}
 */
public record RunSettings(Optional<String> baseModelInit, boolean loadIn4bit, boolean loadIn8bit,
        Optional<Path> loraModelDir,
        Dtype inferenceDtype, OptionalLong evalMaxNewTokens, boolean exactMatchEval, boolean mergeLoraOnFinish) {

    /**
     * Reads the keys of a loaded config.
     *
     * @throws IllegalArgumentException naming the config file for {@code load_in_8bit: true} with
     *     {@code load_in_4bit: true}
     */
    public static RunSettings from(TrainConfig config) {
        TrainerSettings s = config.trainer();
        boolean in4bit = s.bool("load_in_4bit").orElse(false);
        boolean in8bit = s.bool("load_in_8bit").orElse(false);
        refuse(config, in4bit && in8bit, "load_in_8bit: true with load_in_4bit: true",
                "choose one base: load_in_8bit with adapter: lora (LLM.int8), or load_in_4bit with adapter: qlora (NF4)");
        Object bf16 = s.value("bf16").orElse(false);
        Dtype dtype = Boolean.TRUE.equals(bf16) || "auto".equals(bf16) || s.bool("bfloat16").orElse(false) ? Dtype.BF16
                : s.bool("fp16").orElse(false) || s.bool("float16").orElse(false) ? Dtype.FP16 : Dtype.FP32;
        return new RunSettings(s.string("base_model_init"), in4bit, in8bit,
                s.string("lora_model_dir").map(Path::of), dtype,
                s.integer("eval_max_new_tokens"),
                s.bool("do_causal_lm_eval").orElse(false) && s.strings("eval_causal_lm_metrics").contains("exact_match"),
                s.bool("merge_lora_on_finish").orElse(false));
    }

    /** The frozen base these keys ask for. */
    public ModelSpec.Base base() {
        return ModelSpec.Base.of(loadIn4bit, loadIn8bit);
    }

    /**
     * What jtune does with the config's architecture keys for the checkpoint it loaded, one line each: Axolotl's
     * {@code model_type} (a transformers class to load through) and {@code trust_remote_code} are accepted, and jtune
     * builds the architecture config.json names with its own implementation (an architecture it lacks was already
     * refused when config.json was read, with the list of those it has).
     */
    public static java.util.List<String> architectureNotes(TrainConfig config, dev.jtune.model.llama.LlamaConfig model) {
        var notes = new java.util.ArrayList<String>();
        String architecture = model.family().architecture();
        config.modelType().filter(t -> !t.equals("AutoModelForCausalLM") && !t.equals(architecture)).ifPresent(t ->
                notes.add("model_type: " + t + " — jtune builds the checkpoint's own architecture from its config.json ("
                        + architecture + ")"));
        if (config.trainer().bool("trust_remote_code").orElse(false)) {
            notes.add("trust_remote_code: true — jtune runs its own " + architecture
                    + " implementation; no code from the model folder is executed");
        }
        return notes;
    }

    /**
     * Refuses the training keys whose effect jtune does not have and whose absence would change the trained result
     * without a word (DeepSpeed, precisions jtune does not run); {@code train} and {@code preprocess} call it, while inference and
     * merge-lora may read such a config.
     *
     * @throws IllegalArgumentException naming the config file and the key
     */
    public static void refuseUnsupportedTraining(TrainConfig config) {
        TrainerSettings s = config.trainer();
        boolean fullFineTuning = s.string("adapter").isEmpty();
        refuse(config, s.bool("curriculum_sampling").orElse(false) && config.samplePacking(),
                "curriculum_sampling: true with sample_packing: true", "Axolotl then packs the sequential order with its"
                        + " multipack sampler at each epoch, which jtune's packing (at preprocess) does not reproduce;"
                        + " use curriculum_sampling without sample_packing");
        dev.jtune.trainer.train.TrainerOptions options;
        try {
            options = dev.jtune.trainer.train.TrainerOptions.from(config);
        } catch (IllegalArgumentException e) {
            return; // the trainer keys' own problem, which TrainerOptions.check reports (ConfigChecks): not twice
        }
        boolean deepSpeed = s.value("deepspeed").isPresent();
        // float16: true (fp16 weights, no AMP): jtune trains it in one process or data parallel. Under FSDP or
        // DeepSpeed accelerate and DeepSpeed then hold fp16 parameters without mixed precision, which is not ported.
        refuse(config, options.fp16InPlace() && (options.fsdp() || deepSpeed),
                "float16: true with " + (deepSpeed ? "deepspeed" : "fsdp"), "jtune trains float16 (fp16 weights, no"
                        + " AMP, no loss scaling) in one process or data parallel; remove " + (deepSpeed ? "deepspeed"
                        : "fsdp") + ", or use fp16: true (fp32 master weights, GradScaler) or bf16: true");
        refuse(config, fullFineTuning && options.fp16InPlace() && !options.adam().variant().updatesFp16Weights(),
                "float16: true without an adapter and optimizer: " + s.string("optimizer").orElse(""),
                "its update of fp16 weights is not ported; float16 full fine-tuning runs with optimizer: adamw_torch,"
                        + " adamw_torch_8bit, adamw_torch_4bit, adamw_bnb_8bit, adamw_8bit, paged_adamw_8bit or"
                        + " paged_adamw_32bit");
        // The DeepSpeed JSON is read and checked here, so that preprocess stops on it too (the world size is the
        // launcher's; a fixed train_batch_size is checked against it again when train starts).
        DeepSpeed.from(config, options, !fullFineTuning, worldSize());
        // An optimizer whose update of bf16 weights is not ported (every AdamW variant here is: torch's, torchao's
        // AdamW8bit, bitsandbytes' 8-bit and 32-bit) is refused for bf16 full fine-tuning in place. With fp32 master
        // weights (FSDP, DeepSpeed) every optimizer updates fp32 tensors, as it does for fp32 full fine-tuning.
        refuse(config, fullFineTuning && options.precision() == Dtype.BF16
                        && !fp32MasterWeights(false, options.precision(), options.fsdp(), deepSpeed)
                        && !options.adam().variant().updatesBf16Weights(),
                "bf16: true without an adapter and optimizer: " + s.string("optimizer").orElse(""),
                "its update of bf16 weights is not ported; bf16 full fine-tuning runs with optimizer: adamw_torch,"
                        + " adamw_torch_8bit, adamw_bnb_8bit, adamw_8bit, paged_adamw_8bit or paged_adamw_32bit,"
                        + " and any optimizer under fsdp (fp32 master weights)");
    }

    /**
     * Whether full fine-tuning keeps fp32 master weights and AdamW state while computing in bf16/fp16, as accelerate
     * runs it: under FSDP with {@code bf16}/{@code fp16} (accelerate 1.15: {@code Accelerator.prepare_model} for FSDP1
     * and {@code fsdp2_prepare_model} in utils/fsdp_utils.py for FSDP2 upcast every trainable low-precision parameter
     * to fp32, and {@code FullyShardedDataParallelPlugin.set_mixed_precision} in utils/dataclasses.py sets
     * {@code MixedPrecision(param_dtype=dtype, reduce_dtype=dtype, buffer_dtype=dtype)}), under DeepSpeed (its bf16
     * optimizer keeps fp32 master weights), and for {@code fp16: true} without either (torch AMP's recipe: Axolotl
     * itself would load fp16 weights, which transformers' Trainer cannot unscale). Plain {@code bf16: true} without
     * FSDP or DeepSpeed trains bf16 weights in place instead, as transformers does.
     */
    public static boolean fp32MasterWeights(boolean adapter, Dtype precision, boolean fsdp, boolean deepSpeed) {
        return !adapter && (precision == Dtype.FP16 || (precision == Dtype.BF16 && (fsdp || deepSpeed)));
    }

    /** The info line of a run with {@link #fp32MasterWeights}: what jtune computes and where Axolotl differs. */
    public static String masterWeightsNote(Dtype precision, boolean fsdp, boolean deepSpeed) {
        String p = precision.label();
        String recipe = "full fine-tuning in mixed precision: fp32 master weights and AdamW state, " + p
                + " forward and backward (each weight cast to " + p + " where it is used), " + p
                + " gradients reduced and accumulated in fp32, fp32 update"
                + (precision == Dtype.FP16 ? ", dynamic loss scaling (torch's GradScaler: 2^16, x2 every 2000 steps,"
                        + " x0.5 and the step skipped on inf/nan)" : "");
        if (fsdp || deepSpeed) {
            return "info: " + recipe + " — as " + (deepSpeed ? "DeepSpeed's " + p + " optimizer (fp32 master weights)"
                    : "accelerate runs FSDP mixed precision (it upcasts the " + p + "-loaded model to fp32; its"
                    + " reduce_dtype is " + p + " and it accumulates micro-batches unsynced in " + p
                    + ", jtune in fp32)");
        }
        return "info: fp16: true without an adapter: Axolotl loads the model in fp16 and transformers' Trainer stops"
                + " with 'Attempting to unscale FP16 gradients'; jtune runs torch AMP's recipe instead: " + recipe;
    }

    /**
     * A line for bf16 full fine-tuning where Axolotl's numbers differ: with {@code sdpa} or {@code eager} attention
     * (or none named) and no FSDP, Axolotl's model loader keeps {@code embed_tokens}, {@code lm_head} and the norms in
     * fp32 ({@code ModelLoader._configure_embedding_dtypes}); with flash attention, FSDP or an adapter it casts them
     * back to bf16, which is what jtune trains.
     */
    public static Optional<String> precisionNote(TrainConfig config, boolean adapter, Dtype precision) {
        TrainerSettings s = config.trainer();
        // attn_implementation earns an info line (equivalent here), which carries its value.
        String attention = s.bool("flash_attention").orElse(false) ? "flash_attention_2"
                : s.bool("sdp_attention").orElse(false) ? "sdpa"
                : config.notes().stream().filter(n -> n.key().equals("attn_implementation"))
                        .map(dev.jtune.data.config.ConfigNote::value).findFirst().orElse("");
        boolean upcasts = attention.isEmpty() || attention.equals("sdpa") || attention.equals("eager");
        if (adapter || precision == Dtype.FP32 || !upcasts) {
            return Optional.empty();
        }
        String p = precision.label();
        return Optional.of("note: " + p + " full fine-tuning trains every weight in " + p + ", as Axolotl does with"
                + " flash attention or FSDP; with " + (attention.isEmpty() ? "no attn_implementation"
                : "attn_implementation: " + attention) + " Axolotl would keep embed_tokens, lm_head and the norms in fp32");
    }

    /**
     * A line for {@code float16: true} full fine-tuning with torch's AdamW and an {@code adam_epsilon} that fp16 cannot
     * hold (at most 2^-25, half its smallest subnormal: transformers' default 1e-8 is): torch adds eps to the fp16
     * {@code sqrt(v)/bc2}, where it rounds away, so a weight whose second moment is 0 (no gradient, or one whose square
     * underflows fp16) gets 0/0 = nan or m/0 = inf, as it does in torch. jtune computes the same and stops at the next
     * non-finite loss.
     */
    public static Optional<String> fp16EpsNote(dev.jtune.trainer.train.TrainerOptions options, boolean adapter) {
        if (adapter || !options.fp16InPlace() || options.adam().variant() != dev.jtune.trainer.optim.AdamW.Variant.TORCH
                || options.adam().eps() > 0x1p-25) {
            return Optional.empty();
        }
        return Optional.of("note: float16: true with torch's AdamW and adam_epsilon " + options.adam().eps() + ": eps"
                + " rounds to 0 in fp16, so a weight whose second moment is 0 (no gradient, or a square that underflows"
                + " fp16) becomes nan or inf, as in torch; set adam_epsilon to 1e-7 or more, or use adamw_bnb_8bit or"
                + " adamw_torch_8bit (fp32 arithmetic)");
    }

    /** The launcher's world size ({@code WORLD_SIZE}), 1 outside it. */
    static int worldSize() {
        try {
            return Integer.parseInt(System.getenv().getOrDefault("WORLD_SIZE", "1").strip());
        } catch (NumberFormatException e) {
            return 1;
        }
    }

    /** {@code bf16: true} or {@code bfloat16: true} (Axolotl: either loads the model in bf16). */
    static boolean bf16(TrainerSettings s) {
        return Boolean.TRUE.equals(s.value("bf16").orElse(false)) || s.bool("bfloat16").orElse(false);
    }

    private static void refuse(TrainConfig config, boolean set, String what, String instead) {
        if (set) {
            throw new IllegalArgumentException(config.source() + ": " + what + " is not supported: " + instead);
        }
    }
}
