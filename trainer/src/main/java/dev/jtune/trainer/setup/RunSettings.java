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
 *     on CPU too), {@code fp16: true} → fp16, else fp32
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
                : s.bool("fp16").orElse(false) ? Dtype.FP16 : Dtype.FP32;
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
        refuse(config, fullFineTuning && s.bool("fp16").orElse(false) && !bf16(s), "fp16: true without an adapter",
                FP16_FULL_FINE_TUNING);
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
        // The DeepSpeed JSON is read and checked here, so that preprocess stops on it too (the world size is the
        // launcher's; a fixed train_batch_size is checked against it again when train starts).
        DeepSpeed.from(config, options, !fullFineTuning, worldSize());
        // bitsandbytes keeps fp32 (or 8-bit) state for bf16 weights and torchao its own; those updates of bf16 weights
        // are not ported, only torch's AdamW over bf16 weights is.
        refuse(config, fullFineTuning && options.precision() == Dtype.BF16
                        && options.adam().variant() != dev.jtune.trainer.optim.AdamW.Variant.TORCH,
                "bf16: true without an adapter and optimizer: " + s.string("optimizer").orElse(""),
                "bf16 full fine-tuning runs with optimizer: adamw_torch (torch's AdamW over bf16 weights); the 8-bit"
                        + " and bitsandbytes optimizers train adapters and fp32 full fine-tuning");
        refuse(config, fullFineTuning && options.fsdp() && options.precision() == Dtype.BF16,
                "bf16: true with fsdp and without an adapter", "under FSDP, accelerate upcasts a bf16-loaded model to"
                        + " fp32 master weights (FSDP mixed precision), a recipe jtune does not run; without fsdp,"
                        + " ./launch.sh --nproc-per-node N trains bf16 full fine-tuning data parallel (the same numbers"
                        + " as one process), or use an adapter");
    }

    /**
     * Why fp16 full fine-tuning is refused: Axolotl loads the model in fp16 ({@code torch_dtype=float16}) and
     * transformers' Trainer then stops in its GradScaler; jtune does not invent another recipe for it.
     */
    public static final String FP16_FULL_FINE_TUNING = "fp16 full fine-tuning (no adapter) is not supported: Axolotl "
            + "loads the model in fp16 and transformers' Trainer stops with 'Attempting to unscale FP16 gradients'; use "
            + "bf16: true (bf16 weights, gradients and AdamW state), fp32, or an adapter over an fp16 base";

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
        if (adapter || precision != Dtype.BF16 || !upcasts) {
            return Optional.empty();
        }
        return Optional.of("note: bf16 full fine-tuning trains every weight in bf16, as Axolotl does with flash"
                + " attention or FSDP; with " + (attention.isEmpty() ? "no attn_implementation" : "attn_implementation: "
                + attention) + " Axolotl would keep embed_tokens, lm_head and the norms in fp32");
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
