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
        Dtype dtype = Boolean.TRUE.equals(bf16) || "auto".equals(bf16) ? Dtype.BF16
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
     * without a word (DeepSpeed, length grouping); {@code train} and {@code preprocess} call it, while inference and
     * merge-lora may read such a config.
     *
     * @throws IllegalArgumentException naming the config file and the key
     */
    public static void refuseUnsupportedTraining(TrainConfig config) {
        TrainerSettings s = config.trainer();
        refuse(config, s.string("deepspeed").isPresent(), "deepspeed: " + s.string("deepspeed").orElse(""),
                "jtune does not run DeepSpeed; fsdp: [full_shard, auto_wrap] shards parameters, gradients and"
                        + " optimizer state (as ZeRO-3) over ./launch.sh --nproc-per-node N");
        refuse(config, s.bool("group_by_length").orElse(false), "group_by_length: true",
                "jtune does not group samples by length; sample_packing: true packs them into full rows instead");
    }

    private static void refuse(TrainConfig config, boolean set, String what, String instead) {
        if (set) {
            throw new IllegalArgumentException(config.source() + ": " + what + " is not supported: " + instead);
        }
    }
}
