package dev.jtune.trainer.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsFile;
import dev.jtune.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import dev.jtune.trainer.dist.ProcessGroup;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Predicate;

/**
 * {@code torch.optim.AdamW} with its defaults (not fused, not foreach, amsgrad=False, maximize=False):
 * per-parameter step counters and fp32 moments {@code exp_avg}, {@code exp_avg_sq}, bias corrections, weight
 * decay decoupled from the gradient ({@code p *= 1 - lr*wd} before the update) and {@code eps} added after
 * {@code sqrt(v)/sqrt(bias_correction2)}. The arithmetic is transcribed from torch/optim/adam.py
 * {@code _single_tensor_adam} (which adamw.py uses with {@code decoupled_weight_decay=True}) and runs as the
 * same aten ops in one TorchScript call per parameter.
 *
 * <p>Weight-decay groups: parameters for which {@code decays} is false get weight decay 0 (transformers'
 * {@code get_decay_parameter_names} exempts biases and norm weights; for LoRA every adapter matrix decays).
 */
public final class AdamW implements Optimizer {
    /** The optimizer's hyperparameters, torch's names; defaults {@link #DEFAULTS}. */
    public record Hyper(double beta1, double beta2, double eps, double weightDecay) {
        public Hyper {
            if (!(beta1 >= 0 && beta1 < 1)) throw new IllegalArgumentException("adam_beta1 must be in [0, 1), got " + beta1);
            if (!(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("adam_beta2 must be in [0, 1), got " + beta2);
            if (!(eps >= 0)) throw new IllegalArgumentException("adam_epsilon must be >= 0, got " + eps);
            if (!(weightDecay >= 0)) throw new IllegalArgumentException("weight_decay must be >= 0, got " + weightDecay);
        }
    }

    /** transformers' TrainingArguments defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0. */
    public static final Hyper DEFAULTS = new Hyper(0.9, 0.999, 1e-8, 0.0);

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Map<String, NDArray> params;
    private final Map<String, Boolean> decays;
    private final Hyper hyper;
    private final NDManager manager;
    private final ProcessGroup group;
    private final Map<String, NDArray> expAvg = new LinkedHashMap<>();
    private final Map<String, NDArray> expAvgSq = new LinkedHashMap<>();
    private final Map<String, Long> steps = new LinkedHashMap<>();

    /**
     * @param params trainable fp32 tensors by name, in a stable order
     * @param decays which parameters get weight decay
     * @param parent the moments live in a sub-manager of this, freed by {@link #close()}
     */
    public AdamW(Map<String, NDArray> params, Hyper hyper, Predicate<String> decays, NDManager parent) {
        this(params, hyper, decays, ProcessGroup.single(), parent);
    }

    /**
     * An AdamW whose every rank of {@code group} holds the whole tensors and state (data parallel): gradients are
     * summed by an all-reduce, and every rank makes the same update.
     */
    public AdamW(Map<String, NDArray> params, Hyper hyper, Predicate<String> decays, ProcessGroup group,
            NDManager parent) {
        this.group = Objects.requireNonNull(group, "group");
        this.params = new LinkedHashMap<>(params);
        this.hyper = Objects.requireNonNull(hyper, "hyper");
        this.decays = new LinkedHashMap<>();
        this.manager = parent.newSubManager();
        for (var e : this.params.entrySet()) {
            this.decays.put(e.getKey(), decays.test(e.getKey()));
            // zeros_like(param): a bf16 parameter (bf16 full fine-tuning) has bf16 moments, as in torch.optim.
            expAvg.put(e.getKey(), Tensors.zerosLike(e.getValue(), manager));
            expAvgSq.put(e.getKey(), Tensors.zerosLike(e.getValue(), manager));
            steps.put(e.getKey(), 0L);
        }
    }

    public Hyper hyper() {
        return hyper;
    }

    /** Whether {@code name} gets weight decay. */
    public boolean decays(String name) {
        return decays.get(name);
    }

    @Override
    public void reduceGradients() {
        if (group.worldSize() > 1) {
            Replicas.allReduceGradients(group, params.values(), manager);
        }
    }

    @Override
    public void scaleGradients(double factor) {
        Gradients.scale(params.values(), factor);
    }

    @Override
    public boolean gradientsFinite() {
        return Gradients.allFinite(params.values());
    }

    @Override
    public double clipGradients(double maxNorm) {
        return GradClipping.clip(params.values(), maxNorm, manager);
    }

    @Override
    public void zeroGradients() {
        Gradients.zero(params.values());
    }

    @Override
    public void checkReplicas(long step) {
        Replicas.checkIdentical(group, params.values(), step, manager);
    }

    @Override
    public StateWriter gatherState() {
        return this::save;
    }

    /** One update with learning rate {@code lr}, from the gradients now in the parameters; those without one are skipped. */
    @Override
    public void step(double lr) {
        List<String> names = new ArrayList<>(params.keySet());
        List<NDArray> grads = Gradients.open(params.values());
        try {
            Map<String, NDArray> byName = new LinkedHashMap<>();
            for (int i = 0; i < names.size(); i++) {
                byName.put(names.get(i), grads.get(i));
            }
            step(lr, byName);
        } finally {
            Gradients.close(grads);
        }
    }

    /**
     * One update with learning rate {@code lr} from the given gradients by parameter name (same shapes as the
     * parameters; absent or null: that parameter is skipped) — for gradients that are not the parameters' own
     * {@code .grad}, such as a sharded optimizer's reduce-scattered chunk.
     */
    public void step(double lr, Map<String, NDArray> grads) {
        OptimKernels k = OptimKernels.get();
        for (var e : params.entrySet()) {
            String name = e.getKey();
            NDArray param = e.getValue();
            NDArray g = grads.get(name);
            if (g == null) {
                continue;
            }
            long step = steps.get(name) + 1;
            steps.put(name, step);
            double wd = decays.get(name) ? hyper.weightDecay() : 0.0;
            // Python float arithmetic, as in _single_tensor_adam.
            double biasCorrection1 = 1 - Math.pow(hyper.beta1(), step);
            double biasCorrection2 = 1 - Math.pow(hyper.beta2(), step);
            double stepSize = lr / biasCorrection1;
            double biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
            k.adamw(param, g, expAvg.get(name), expAvgSq.get(name), 1 - lr * wd, wd != 0,
                    1 - hyper.beta1(), hyper.beta2(), 1 - hyper.beta2(), stepSize, biasCorrection2Sqrt,
                    hyper.eps());
        }
    }

    /** Sets the state of {@code name} (values row-major, as {@link #save} writes them). */
    public void restore(String name, float[] expAvgValues, float[] expAvgSqValues, long step) {
        if (!params.containsKey(name)) {
            throw new IllegalArgumentException("no parameter " + name);
        }
        Tensors.overwrite(expAvg.get(name), expAvgValues, name + ".exp_avg");
        Tensors.overwrite(expAvgSq.get(name), expAvgSqValues, name + ".exp_avg_sq");
        steps.put(name, step);
    }

    /** The step count of {@code name} (torch's {@code state[p]["step"]}). */
    public long step(String name) {
        return steps.get(name);
    }

    /** First moments by parameter name (live tensors; do not close). */
    public Map<String, NDArray> expAvg() {
        return java.util.Collections.unmodifiableMap(expAvg);
    }

    /** Second moments by parameter name (live tensors; do not close). */
    public Map<String, NDArray> expAvgSq() {
        return java.util.Collections.unmodifiableMap(expAvgSq);
    }

    /**
     * Writes the state as safetensors: {@code <name>.exp_avg}, {@code <name>.exp_avg_sq} (F32) and, in the
     * metadata, {@code steps} (JSON name → step) and the hyperparameters. Atomic (temp file + rename).
     */
    public void save(Path file) {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        Map<String, float[]> m = new LinkedHashMap<>();
        Map<String, float[]> v = new LinkedHashMap<>();
        for (String name : params.keySet()) {
            shapes.put(name, params.get(name).getShape().getShape());
            m.put(name, Tensors.floats(expAvg.get(name)));
            v.put(name, Tensors.floats(expAvgSq.get(name)));
        }
        write(file, hyper, shapes, m, v, steps);
    }

    /** Writes a state in {@link #save}'s format from plain arrays (e.g. gathered from the shards of ranks). */
    public static void write(Path file, Hyper hyper, Map<String, long[]> shapes, Map<String, float[]> expAvg,
            Map<String, float[]> expAvgSq, Map<String, Long> steps) {
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        ObjectNode stepJson = JSON.createObjectNode();
        for (String name : shapes.keySet()) {
            long[] shape = shapes.get(name);
            entries.add(SafetensorsWriter.Entry.ofFloats(name + ".exp_avg", shape, expAvg.get(name), SafetensorsDtype.F32));
            entries.add(SafetensorsWriter.Entry.ofFloats(name + ".exp_avg_sq", shape, expAvgSq.get(name),
                    SafetensorsDtype.F32));
            stepJson.put(name, steps.get(name));
        }
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("optimizer", "adamw_torch");
        meta.put("steps", stepJson.toString());
        meta.put("betas", "[" + hyper.beta1() + ", " + hyper.beta2() + "]");
        meta.put("eps", Double.toString(hyper.eps()));
        meta.put("weight_decay", Double.toString(hyper.weightDecay()));
        SafetensorsWriter.write(file, entries, meta);
    }

    /**
     * Restores the state written by {@link #save}.
     *
     * @throws IllegalArgumentException naming the file and the tensor that is missing or of the wrong size
     */
    @Override
    public void load(Path file) {
        try (SafetensorsFile in = SafetensorsFile.open(file)) {
            String stepText = in.metadata().get("steps");
            if (stepText == null) {
                throw new IllegalArgumentException(file + ": no 'steps' in the metadata; not a jtune optimizer state");
            }
            JsonNode stepJson = JSON.readTree(stepText);
            for (String name : params.keySet()) {
                for (String suffix : List.of(".exp_avg", ".exp_avg_sq")) {
                    if (!in.contains(name + suffix)) {
                        throw new IllegalArgumentException(file + ": missing tensor " + name + suffix
                                + " (was the checkpoint made with other trainable parameters?)");
                    }
                }
                Tensors.overwrite(expAvg.get(name), in.floats(name + ".exp_avg"), file + ": " + name + ".exp_avg");
                Tensors.overwrite(expAvgSq.get(name), in.floats(name + ".exp_avg_sq"),
                        file + ": " + name + ".exp_avg_sq");
                JsonNode s = stepJson.get(name);
                if (s == null || !s.canConvertToLong()) {
                    throw new IllegalArgumentException(file + ": metadata 'steps' lacks " + name);
                }
                steps.put(name, s.asLong());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        manager.close();
    }
}
