package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.data.config.TrainerSettings;
import dev.jtune.lora.LoraLinear;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.hf.ModelLocator;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.safetensors.HalfFloats;
import dev.jtune.model.safetensors.SafetensorsCheckpoint;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsWriter;
import dev.jtune.quant.Nf4Linear;
import dev.jtune.quant.Nf4Quantizer;
import dev.jtune.trainer.optim.AdamW;
import dev.jtune.trainer.optim.JaggedRestarts;
import dev.jtune.trainer.optim.Tensors;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;

/**
 * Axolotl's ReLoRA ({@code relora: true}; monkeypatch/relora.py {@code ReLoRACallback} at the pinned commit): at the
 * beginning of every step whose {@code global_step} is a positive multiple of {@code jagged_restart_steps}, each LoRA
 * module's update {@code (B·A)·scaling} is merged into its base weight, A and B are initialised afresh (A
 * Kaiming-uniform, B zero: PEFT's {@code reset_lora_parameters}), and the LoRA tensors' optimizer state is pruned
 * ({@link AdamW#pruneForReLora}); the learning rate follows {@link JaggedRestarts}.
 *
 * <p>The merge, as Axolotl's {@code merge_and_save}:
 * <ul>
 *   <li>a 16/32-bit base ({@code adapter: lora}): {@code W += delta} in place, in W's dtype (computed in fp32, rounded
 *       once);
 *   <li>an NF4 base ({@code adapter: qlora}): {@code W' = W_last + delta} in fp32, where {@code W_last} is the weight
 *       in the last full save (the base checkpoint's own values at the first restart, then the fp16 copy Axolotl writes
 *       at each restart: {@code new_weight.half()}), re-quantized to NF4 from the fp32 values as bitsandbytes does when
 *       {@code Params4bit.data} is replaced (blocksize 64, double quantization; the layer then dequantizes to fp32).
 * </ul>
 * At the end Axolotl's run leaves a full model, not an adapter: with an NF4 base {@code on_train_end} merges once more
 * and writes every tensor of the last full save in fp16; with a 16/32-bit base {@code merge_and_unload()} and the
 * model's dtype. {@link #writeMerged} writes that (model.safetensors and config.json).
 *
 * <p>Differences, stated: A's new values come from jtune's initialiser seeded by {@code (seed, restart number, module)},
 * not torch's global generator; random pruning ({@code relora_prune_method: random, reset}) draws from a generator
 * seeded likewise; Axolotl's intermediate {@code checkpoint-N/relora} and {@code checkpoint-N/adapter} folders are
 * not written (the fp16 copies are kept in memory), so resuming a ReLoRA run is refused.
 */
public final class ReLora {
    /**
     * The restart settings.
     *
     * @param schedule {@code jagged_restart_steps} and its warmup/anneal (the learning rate; set without {@code relora}
     *     too, as Axolotl wraps the schedule whenever {@code jagged_restart_steps} is set)
     * @param relora {@code relora: true}: merge and re-initialise at each restart
     * @param magnitude {@code relora_prune_method: magnitude} (the default); false: random ({@code random}, {@code reset})
     * @param pruneRatio {@code relora_prune_ratio}; default 0.9, or 0.999 for {@code reset}
     */
    public record Settings(JaggedRestarts schedule, boolean relora, boolean magnitude, double pruneRatio) {
        /** What the keys ask for, or empty without {@code jagged_restart_steps}. */
        public static Optional<Settings> from(TrainerSettings s) {
            long steps = s.integer("jagged_restart_steps").orElse(0);
            if (steps == 0) {
                return Optional.empty();
            }
            long warmup = s.integer("jagged_restart_warmup_steps").orElse(0);
            long anneal = s.integer("jagged_restart_anneal_steps").orElse(0);
            double minScale = s.number("cosine_min_lr_ratio").orElse(0.0);
            JaggedRestarts schedule = new JaggedRestarts(steps, warmup == 0 ? 10 : warmup, anneal == 0 ? 1 : anneal,
                    minScale == 0 ? 0.001 : minScale);
            String method = s.string("relora_prune_method").orElse("magnitude");
            double ratio = s.number("relora_prune_ratio").orElse(method.equals("reset") ? 0.999 : 0.9);
            if (!(ratio >= 0 && ratio <= 1)) {
                throw new IllegalArgumentException("relora_prune_ratio must be in [0, 1], got " + ratio);
            }
            return Optional.of(new Settings(schedule, s.bool("relora").orElse(false), method.equals("magnitude"),
                    ratio));
        }
    }

    /** A refused combination: the key to point at and the message. */
    public record Refusal(String key, String message) {}

    /**
     * What jtune refuses of the ReLoRA keys (Axolotl's own check_relora first), or empty.
     */
    public static Optional<Refusal> refusals(TrainerSettings s) {
        if (!s.bool("relora").orElse(false)) {
            return Optional.empty();
        }
        String adapter = s.string("adapter").orElse("");
        if (s.integer("jagged_restart_steps").orElse(0) == 0) {
            return Optional.of(new Refusal("relora", "relora: true without jagged_restart_steps is not supported:"
                    + " Axolotl requires it (jagged_restart_steps must be set to use ReLoRA)"));
        }
        if (!adapter.equals("lora") && !adapter.equals("qlora")) {
            return Optional.of(new Refusal("relora", "relora: true without adapter: lora or qlora is not supported:"
                    + " ReLoRA merges LoRA adapters (Axolotl: cfg.adapter must support ReLoRA)"));
        }
        if (s.has("fsdp") || s.has("fsdp_config") || s.has("deepspeed")) {
            return Optional.of(new Refusal("relora", "relora: true with " + (s.has("deepspeed") ? "deepspeed" : "fsdp")
                    + " is not supported (Axolotl refuses it too)"));
        }
        if (s.bool("load_in_8bit").orElse(false)) {
            return Optional.of(new Refusal("relora", "relora: true with load_in_8bit: true is not supported: the"
                    + " re-quantization of an LLM.int8 base at each restart is not ported; use adapter: qlora or lora"));
        }
        String optimizer = s.string("optimizer").orElse("adamw_torch");
        if (optimizer.startsWith("adamw_torch_") && optimizer.endsWith("bit")) {
            return Optional.of(new Refusal("optimizer", "optimizer: " + optimizer + " with relora is not supported:"
                    + " Axolotl's optimizer pruning cannot run on torchao's quantized state tensors"));
        }
        if (s.has("lora_modules_to_save")) {
            return Optional.of(new Refusal("relora", "relora: true with lora_modules_to_save is not supported: the"
                    + " merged full model of a ReLoRA run is written without the saved modules' copies"));
        }
        if (s.string("resume_from_checkpoint").isPresent()) {
            return Optional.of(new Refusal("resume_from_checkpoint", "resume_from_checkpoint with relora is not"
                    + " supported: jtune keeps the merged base of a ReLoRA run in memory, not in its checkpoints"));
        }
        return Optional.empty();
    }

    private final Settings settings;
    private final LoraTrainable trainable;
    private final AdamW optimizer;
    private final long seed;
    private final Path baseDir;
    /** Each NF4 module's weight in the last full save (exactly fp16 after the first restart). */
    private final Map<String, float[]> lastFull = new LinkedHashMap<>();
    private int restarts;

    ReLora(Settings settings, LoraTrainable trainable, AdamW optimizer, long seed) {
        this.settings = settings;
        this.trainable = trainable;
        this.optimizer = optimizer;
        this.seed = seed;
        this.baseDir = ModelLocator.resolve(trainable.baseModelName());
    }

    /** The number of restarts so far (Axolotl logs it as {@code num_lora_restarts}). */
    public int restarts() {
        return restarts;
    }

    /** Whether the callback restarts at the beginning of the step after {@code globalStep} steps. */
    boolean restartsAt(long globalStep) {
        return globalStep > 0 && globalStep % settings.schedule().restartSteps() == 0;
    }

    /** One restart: merge, re-initialise, prune; returns the line to log. */
    String restart(long globalStep) {
        restarts++;
        int merged = 0;
        for (var e : trainable.lora().adapters().entrySet()) {
            merge(e.getKey(), e.getValue());
            LoraLinear l = e.getValue();
            long restartSeed = seed * 31 + restarts;
            Tensors.overwrite(l.loraA(), LoraLinear.initialA(restartSeed, e.getKey(), l.rank(), l.inFeatures()),
                    e.getKey() + ".lora_A");
            Tensors.overwrite(l.loraB(), new float[Math.toIntExact(l.loraB().size())], e.getKey() + ".lora_B");
            merged++;
        }
        SplittableRandom random = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + restarts);
        long zeros = 0;
        long total = 0;
        for (String name : trainable.parameters().keySet()) {
            if (name.contains("lora_")) {
                long[] zt = optimizer.pruneForReLora(name, settings.magnitude(), settings.pruneRatio(), random);
                zeros += zt[0];
                total += zt[1];
            }
        }
        return String.format(java.util.Locale.ROOT, "ReLoRA restart %d before step %d: %d LoRA modules merged into the"
                + " base and re-initialised; optimizer state zeroed: %.2f%% of %d values (%s, ratio %s)", restarts,
                globalStep + 1, merged, 100.0 * zeros / (1e-7 + total), total,
                settings.magnitude() ? "magnitude" : "random", settings.pruneRatio());
    }

    /** {@code (B·A)·scaling} as fp32 values [out, in], row-major (PEFT's get_delta_weight). */
    private static float[] delta(LoraLinear l) {
        try (NDManager scratch = l.loraA().getManager().newSubManager()) {
            NDArray product = l.loraB().matMul(l.loraA());
            product.attach(scratch);
            // A libtorch-made scalar, not DJL's mul(Number) (DjlScalarOpsTest); the product is freed with scratch.
            NDArray d = product.mul(scratch.full(new ai.djl.ndarray.types.Shape(), (float) l.scaling()));
            d.attach(scratch);
            return d.toFloatArray();
        }
    }

    private void merge(String module, LoraLinear l) {
        Linear base = l.base();
        float[] delta = delta(l);
        if (base instanceof DenseLinear dense) {
            NDArray w = dense.weight();
            float[] values = Tensors.floats(w);
            for (int i = 0; i < values.length; i++) values[i] += delta[i];
            Tensors.overwrite(w, values, module + ".weight"); // copy_ rounds once to W's dtype
        } else if (base instanceof Nf4Linear nf4) {
            float[] last = lastFull.computeIfAbsent(module, this::checkpointWeight);
            float[] next = new float[last.length];
            for (int i = 0; i < next.length; i++) next[i] = last[i] + delta[i];
            nf4.requantize(Nf4Quantizer.quantize(next, new long[] {l.outFeatures(), l.inFeatures()}, Dtype.FP32));
            for (int i = 0; i < next.length; i++) {
                next[i] = HalfFloats.float16ToFloat(HalfFloats.floatToFloat16(next[i])); // saved .half()
            }
            lastFull.put(module, next);
        } else {
            throw new UnsupportedOperationException("relora: the base of " + module + " is a "
                    + base.getClass().getSimpleName() + "; ReLoRA merges into dense or NF4 bases");
        }
    }

    /** The base checkpoint's own values of {@code module}'s weight (Axolotl reads base_model's files). */
    private float[] checkpointWeight(String module) {
        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(baseDir)) {
            String name = module + ".weight";
            SafetensorsDtype dtype = c.info(name).dtype();
            if (dtype != SafetensorsDtype.F32 && dtype != SafetensorsDtype.F16 && dtype != SafetensorsDtype.BF16) {
                throw new IllegalArgumentException("relora: " + baseDir + " stores " + name + " as " + dtype
                        + "; ReLoRA merges into the base's 16/32-bit weights (a pre-quantized checkpoint has none)");
            }
            return c.floats(name);
        }
    }

    /**
     * Writes the merged full model into {@code dir} (model.safetensors, config.json): every tensor of the base
     * checkpoint, the LoRA modules with the last update merged. NF4 base: all in fp16, from the last full save, as
     * Axolotl's {@code on_train_end}; 16/32-bit base: the merged weights in their dtype, the others as stored.
     */
    void writeMerged(Path dir) {
        Map<String, LoraLinear> modules = trainable.lora().adapters();
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(baseDir)) {
            for (String name : c.names()) {
                String module = name.endsWith(".weight") ? name.substring(0, name.length() - ".weight".length()) : null;
                LoraLinear l = module == null ? null : modules.get(module);
                long[] shape = c.info(name).shape();
                if (l == null) {
                    boolean quantized = l == null && modules.values().stream().anyMatch(m -> m.base() instanceof Nf4Linear);
                    entries.add(quantized ? SafetensorsWriter.Entry.ofFloats(name, shape, c.floats(name),
                            SafetensorsDtype.F16) : SafetensorsWriter.Entry.ofFloats(name, shape, c.floats(name),
                            c.info(name).dtype()));
                    continue;
                }
                float[] delta = delta(l);
                if (l.base() instanceof Nf4Linear) {
                    float[] last = lastFull.computeIfAbsent(module, this::checkpointWeight);
                    float[] out = new float[last.length];
                    for (int i = 0; i < out.length; i++) out[i] = last[i] + delta[i];
                    entries.add(SafetensorsWriter.Entry.ofFloats(name, shape, out, SafetensorsDtype.F16));
                } else {
                    NDArray w = ((DenseLinear) l.base()).weight();
                    float[] out = Tensors.floats(w);
                    for (int i = 0; i < out.length; i++) out[i] += delta[i];
                    Dtype dtype = Kernels.get().dtypeOf(w);
                    entries.add(SafetensorsWriter.Entry.ofFloats(name, shape, out, dtype == Dtype.BF16
                            ? SafetensorsDtype.BF16 : dtype == Dtype.FP16 ? SafetensorsDtype.F16 : SafetensorsDtype.F32));
                }
            }
        }
        try {
            Files.createDirectories(dir);
            SafetensorsWriter.write(dir.resolve(SafetensorsCheckpoint.SINGLE_FILE), entries,
                    Map.of(SafetensorsWriter.FORMAT_KEY, SafetensorsWriter.FORMAT_PT));
            Files.copy(baseDir.resolve("config.json"), dir.resolve("config.json"), StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": " + e.getMessage(), e);
        }
    }
}
