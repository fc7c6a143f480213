package dev.jtune.trainer.setup;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.model.engine.Dtype;
import dev.jtune.trainer.train.TrainerOptions;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;

/**
 * Axolotl's {@code deepspeed: FILE.json}, mapped onto what jtune runs. ZeRO stages only decide where optimizer
 * state, gradients and parameters live (partitioned over the ranks, or offloaded to CPU): the update is the same as
 * plain data parallel. So stages 0-2 run as jtune's data parallel and stage 3 as FSDP {@code full_shard} (per
 * decoder layer), over {@code ./launch.sh --nproc-per-node N}; offloading is a memory placement jtune does not do.
 *
 * <p>What in the JSON would change the result is checked as transformers' DeepSpeed integration does
 * ({@code HfTrainerDeepSpeedConfig.trainer_config_process}): {@code "auto"} takes the config's value, a fixed value
 * must equal it ({@code gradient_clipping} = {@code max_grad_norm}, batch sizes, {@code optimizer.params} = the
 * AdamW hyperparameters, {@code bf16.enabled} / {@code fp16.enabled} = the config's precision), else transformers
 * stops and so does jtune. Refused: fp16 (DeepSpeed's own loss scaler: initial 2^{@code initial_scale_power},
 * window, hysteresis — not torch's GradScaler that jtune implements), a {@code scheduler}
 * block (it replaces Axolotl's {@code lr_scheduler}), an optimizer other than Adam(W), quantized communication, and
 * any key jtune does not know. bf16 without an adapter trains with fp32 master weights and AdamW state, as
 * DeepSpeed's bf16 does ({@code RunSettings.fp32MasterWeights}).
 *
 * <p>The file is looked up relative to the config file's folder, then the working directory. Axolotl's shipped
 * files ({@code deepspeed_configs/zero1.json} ... {@code zero3_bf16_cpuoffload_all.json}, copied from Axolotl at
 * {@code AxolotlKeys.COMMIT}) are recognised by name when absent, since configs are copied without that folder.
 *
 * @param value the config's value, as written
 * @param source where the JSON came from: a file, or "Axolotl's shipped NAME"
 * @param stage the ZeRO stage, 0-3
 * @param offload what the JSON offloads to CPU ("optimizer state", "parameters"), empty when nothing
 */
public record DeepSpeed(String value, String source, int stage, List<String> offload) {
    /** Axolotl's {@code deepspeed_configs/} at its pinned commit (copies in this package's resources). */
    public static final List<String> SHIPPED = List.of("zero1.json", "zero1_torch_compile.json", "zero2.json",
            "zero2_torch_compile.json", "zero3.json", "zero3_bf16.json", "zero3_bf16_cpuoffload_all.json",
            "zero3_bf16_cpuoffload_params.json");

    private static final ObjectMapper JSON = new ObjectMapper();

    // DeepSpeed keys that only decide speed, memory placement or logging.
    private static final Set<String> QUIET_TOP = Set.of("wall_clock_breakdown", "steps_per_print",
            "zero_allow_untested_optimizer", "zero_force_ds_cpu_optimizer", "flops_profiler", "comms_logger",
            "tensorboard", "wandb", "csv_monitor", "memory_breakdown", "dump_state", "activation_checkpointing",
            "checkpoint", "aio", "compile", "sparse_gradients", "zero_optimization", "bf16", "bfloat16", "fp16",
            "gradient_clipping", "gradient_accumulation_steps", "train_batch_size", "train_micro_batch_size_per_gpu",
            "optimizer", "prescale_gradients", "gradient_predivide_factor", "communication_data_type", "data_types");
    private static final Set<String> QUIET_ZERO = Set.of("stage", "overlap_comm", "contiguous_gradients",
            "sub_group_size", "reduce_bucket_size", "reduce_scatter", "allgather_partitions", "allgather_bucket_size",
            "stage3_prefetch_bucket_size", "stage3_param_persistence_threshold", "stage3_max_live_parameters",
            "stage3_max_reuse_distance", "max_live_parameters", "max_reuse_distance",
            "stage3_gather_16bit_weights_on_model_save", "gather_16bit_weights_on_model_save", "round_robin_gradients",
            "memory_efficient_linear", "elastic_checkpoint", "load_from_fp32_weights", "ignore_unused_parameters",
            "offload_optimizer", "offload_param", "cpu_offload", "cpu_offload_params", "cpu_offload_use_pin_memory",
            "prefetch_bucket_size", "param_persistence_threshold", "model_persistence_threshold",
            "use_multi_rank_bucket_allreduce", "zero_hpz_partition_size", "mics_shard_size", "zero_quantized_weights",
            "zero_quantized_nontrainable_weights", "zero_quantized_gradients", "log_trace_cache_warnings",
            "use_all_reduce_for_fetch_params", "leaf_module");

    /**
     * The config's DeepSpeed setting, checked; empty when {@code deepspeed} is not set.
     *
     * @param adapter whether the config trains an adapter (LoRA/QLoRA) rather than every weight
     * @param worldSize the ranks this run has ({@code train_batch_size} = micro × accumulation × world size)
     * @throws IllegalArgumentException naming the config, the DeepSpeed file and the key, for a missing file, bad
     *     JSON or a setting jtune does not run
     */
    public static Optional<DeepSpeed> from(TrainConfig config, TrainerOptions options, boolean adapter, int worldSize) {
        Optional<String> set = config.trainer().string("deepspeed").map(String::strip).filter(v -> !v.isEmpty());
        if (set.isEmpty()) {
            return Optional.empty();
        }
        String value = set.get();
        String where = config.source() + ": deepspeed: " + value;
        if (options.fsdp()) {
            throw new IllegalArgumentException(where + ": deepspeed and fsdp cannot be used together (as in Axolotl);"
                    + " keep one");
        }
        Path configDir = Optional.ofNullable(config.source().toAbsolutePath().getParent()).orElse(Path.of(""));
        List<Path> candidates = List.of(configDir.resolve(value), Path.of("").toAbsolutePath().resolve(value));
        JsonNode root;
        String source;
        Optional<Path> file = candidates.stream().filter(Files::isRegularFile).findFirst();
        if (file.isPresent()) {
            source = file.get().toString();
            try {
                root = JSON.readTree(file.get().toFile());
            } catch (JsonProcessingException e) {
                throw new IllegalArgumentException(where + ": " + source + " is not valid JSON: "
                        + e.getOriginalMessage() + " (line " + e.getLocation().getLineNr() + ", column "
                        + e.getLocation().getColumnNr() + ")");
            } catch (IOException e) {
                throw new UncheckedIOException(where + ": cannot read " + source, e);
            }
        } else {
            String name = Path.of(value).getFileName().toString();
            if (!SHIPPED.contains(name)) {
                throw new IllegalArgumentException(where + ": file not found (looked in " + candidates.get(0)
                        + " and " + candidates.get(1) + "); Axolotl's shipped configs are recognised by name without"
                        + " the file: " + String.join(", ", SHIPPED));
            }
            source = "Axolotl's shipped deepspeed_configs/" + name;
            try (InputStream in = DeepSpeed.class.getResourceAsStream("deepspeed_configs/" + name)) {
                root = JSON.readTree(in);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException(where + ": " + source + " must hold a JSON object");
        }
        return Optional.of(check(root, where + " (" + source + ")", value, source, options, adapter, worldSize));
    }

    private static DeepSpeed check(JsonNode root, String where, String value, String source, TrainerOptions o,
            boolean adapter, int worldSize) {
        for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!QUIET_TOP.contains(key)) {
                throw refuse(where, key, root.get(key), "jtune does not know what this DeepSpeed setting does;"
                        + " remove it");
            }
        }
        JsonNode zero = root.path("zero_optimization");
        int stage = zero.path("stage").asInt(0);
        if (zero.has("stage") && (!zero.get("stage").canConvertToInt() || stage < 0 || stage > 3)) {
            throw refuse(where, "zero_optimization.stage", zero.get("stage"), "expected 0, 1, 2 or 3");
        }
        for (Iterator<String> it = zero.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!QUIET_ZERO.contains(key)) {
                throw refuse(where, "zero_optimization." + key, zero.get(key), "jtune does not know what this ZeRO"
                        + " setting does; remove it");
            }
        }
        for (String quantized : List.of("zero_quantized_weights", "zero_quantized_nontrainable_weights",
                "zero_quantized_gradients")) {
            if (zero.path(quantized).asBoolean(false)) {
                throw refuse(where, "zero_optimization." + quantized, zero.get(quantized), "quantized communication"
                        + " (ZeRO++) changes the numbers; jtune communicates exact values");
            }
        }
        if (zero.path("zero_hpz_partition_size").asInt(1) > 1) {
            throw refuse(where, "zero_optimization.zero_hpz_partition_size", zero.get("zero_hpz_partition_size"),
                    "hierarchical partitioning (ZeRO++) is not implemented; use 1");
        }
        List<String> offload = new ArrayList<>();
        if (offloaded(zero.path("offload_optimizer")) || zero.path("cpu_offload").asBoolean(false)) {
            offload.add("optimizer state");
        }
        if (offloaded(zero.path("offload_param")) || zero.path("cpu_offload_params").asBoolean(false)) {
            offload.add("parameters");
        }

        // Precision: "auto" is the config's own; a fixed value must agree (transformers stops on a mismatch).
        boolean bf16 = o.precision() == Dtype.BF16;
        boolean fp16 = o.precision() == Dtype.FP16;
        JsonNode bf16Node = root.has("bf16") ? root.get("bf16") : root.path("bfloat16");
        boolean dsBf16 = enabled(bf16Node, bf16, where, root.has("bf16") ? "bf16" : "bfloat16", "bf16");
        boolean dsFp16 = enabled(root.path("fp16"), fp16, where, "fp16", "fp16");
        if (dsFp16) {
            throw refuse(where, "fp16.enabled", root.path("fp16").path("enabled"), "DeepSpeed's fp16 runs its own"
                    + " loss scaler (initial scale 2^initial_scale_power, loss_scale_window, hysteresis), which skips"
                    + " other steps than torch's GradScaler that jtune implements; remove deepspeed: to train fp16"
                    + " as transformers' Trainer does without it, or use bf16");
        }
        // bf16 without an adapter: DeepSpeed keeps fp32 master weights and AdamW state, and so does jtune then
        // (RunSettings.fp32MasterWeights).
        if (!root.has("gradient_clipping") && o.maxGradNorm() > 0) {
            throw refuse(where, "gradient_clipping", null, "absent, DeepSpeed does not clip (transformers leaves"
                    + " clipping to it), while max_grad_norm = " + trim(o.maxGradNorm()) + "; set \"auto\"");
        }
        matches(root, "gradient_clipping", o.maxGradNorm(), "max_grad_norm", where);
        matches(root, "gradient_accumulation_steps", o.gradientAccumulationSteps(), "gradient_accumulation_steps",
                where);
        matches(root, "train_micro_batch_size_per_gpu", o.microBatchSize(), "micro_batch_size", where);
        matches(root, "train_batch_size", (double) o.microBatchSize() * o.gradientAccumulationSteps() * worldSize,
                "micro_batch_size × gradient_accumulation_steps × world size", where);
        if (root.has("optimizer")) {
            JsonNode opt = root.get("optimizer");
            String type = opt.path("type").asText("");
            boolean adamW = type.equalsIgnoreCase("AdamW")
                    || type.equalsIgnoreCase("Adam") && opt.path("params").path("adam_w_mode").asBoolean(true);
            if (!adamW) {
                throw refuse(where, "optimizer.type", opt.path("type"), "jtune implements AdamW (decoupled weight"
                        + " decay): type AdamW, or Adam with adam_w_mode true");
            }
            JsonNode p = opt.path("params");
            matches(p, "optimizer.params.", "lr", o.learningRate(), "learning_rate", where);
            matches(p, "optimizer.params.", "eps", o.adam().eps(), "adam_epsilon", where);
            matches(p, "optimizer.params.", "weight_decay", o.adam().weightDecay(), "weight_decay", where);
            JsonNode betas = p.path("betas");
            if (!betas.isMissingNode() && !"auto".equals(betas.asText(null))
                    && !(betas.isArray() && betas.size() == 2 && betas.get(0).asDouble() == o.adam().beta1()
                            && betas.get(1).asDouble() == o.adam().beta2())) {
                throw refuse(where, "optimizer.params.betas", betas, "must be \"auto\" or [adam_beta1, adam_beta2] = ["
                        + o.adam().beta1() + ", " + o.adam().beta2() + "] (transformers stops on a mismatch)");
            }
        }
        if (root.path("prescale_gradients").asBoolean(false)) {
            throw refuse(where, "prescale_gradients", root.get("prescale_gradients"), "it divides gradients before"
                    + " summing them, another rounding than jtune's; use false");
        }
        if (root.has("gradient_predivide_factor") && root.get("gradient_predivide_factor").asDouble() != 1.0) {
            throw refuse(where, "gradient_predivide_factor", root.get("gradient_predivide_factor"), "use 1.0");
        }
        String comm = root.path("communication_data_type").asText("fp32").toLowerCase(Locale.ROOT);
        if (!List.of("fp32", "float32", "auto", "null").contains(comm)) {
            throw refuse(where, "communication_data_type", root.get("communication_data_type"), "jtune sums"
                    + " gradients in fp32; use fp32");
        }
        String accum = root.path("data_types").path("grad_accum_dtype").asText("fp32").toLowerCase(Locale.ROOT);
        if (!List.of("fp32", "float32", "null").contains(accum)) {
            throw refuse(where, "data_types.grad_accum_dtype", root.path("data_types").get("grad_accum_dtype"),
                    "jtune accumulates gradients in the trainable tensors' dtype; use fp32");
        }
        return new DeepSpeed(value, source, stage, List.copyOf(offload));
    }

    private static boolean offloaded(JsonNode n) {
        String device = n.path("device").asText("none").toLowerCase(Locale.ROOT);
        return !n.isMissingNode() && !device.equals("none");
    }

    /** {@code block.enabled}: "auto" is {@code ours}; true/false must equal it. Absent: disabled. */
    private static boolean enabled(JsonNode block, boolean ours, String where, String dsName, String ourKey) {
        JsonNode e = block.path("enabled");
        if (block.isMissingNode() || e.isMissingNode()) {
            return false;
        }
        if ("auto".equals(e.asText())) {
            return ours;
        }
        if (!e.isBoolean()) {
            throw refuse(where, dsName + ".enabled", e, "expected true, false or \"auto\"");
        }
        if (e.asBoolean() != ours) {
            throw refuse(where, dsName + ".enabled", e, "the config says " + ourKey + ": " + ours + " (transformers"
                    + " stops on this mismatch); use \"auto\" or " + ours);
        }
        return ours;
    }

    private static void matches(JsonNode node, String key, double ours, String ourKey, String where) {
        matches(node, "", key, ours, ourKey, where);
    }

    private static void matches(JsonNode node, String prefix, String key, double ours, String ourKey, String where) {
        JsonNode v = node.path(key);
        if (v.isMissingNode() || v.isNull() || "auto".equals(v.asText())) {
            return;
        }
        if (!v.isNumber() || v.asDouble() != ours) {
            throw refuse(where, prefix + key, v, "must be \"auto\" or equal " + ourKey + " = " + trim(ours)
                    + " (transformers stops on a mismatch)");
        }
    }

    private static String trim(double d) {
        return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) : Double.toString(d);
    }

    private static IllegalArgumentException refuse(String where, String key, JsonNode value, String why) {
        return new IllegalArgumentException(where + ": " + key + (value == null ? "" : " = " + value)
                + " is not supported: " + why);
    }

    /** The one info line: what jtune runs for this DeepSpeed setting. */
    public String note() {
        String runs = stage == 3
                ? "FSDP full_shard per decoder layer (parameters, gradients and AdamW state sharded over the ranks)"
                : "data parallel (every rank holds the whole model and AdamW state)";
        return "deepspeed: " + value + " (ZeRO-" + stage + ", " + source + ") — equivalent here: jtune runs " + runs
                + " over ./launch.sh --nproc-per-node N, the same numbers as ZeRO-" + stage
                + (offload.isEmpty() ? "" : "; offloading " + String.join(" and ", offload) + " to CPU is a memory"
                        + " placement jtune does not do (they stay where the model computes)");
    }

    /** {@code options} as this run needs them: ZeRO-3 shards like FSDP. */
    public TrainerOptions apply(TrainerOptions options) {
        return stage == 3 ? options.toBuilder().fsdp(true).build() : options;
    }
}
