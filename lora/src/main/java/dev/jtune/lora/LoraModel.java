package dev.jtune.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.llama.LlamaModel.LinearFactory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Applies LoRA to a Llama model as it loads, as PEFT's {@code get_peft_model} / {@code PeftModel.from_pretrained}
 * would: a {@link LinearFactory} that wraps every target projection in a {@link LoraLinear} over whatever the
 * base factory builds (dense, or NF4 for QLoRA), and turns modules_to_save into trainable fp32 copies.
 *
 * <pre>{@code
 * LoraModel lora = LoraModel.fresh(settings, seed, baseFactory);    // or fromAdapter(PeftAdapter.load(dir), ...)
 * LlamaModel model = LlamaModel.load(config, source, dtype, manager, lora);
 * lora.attach(model);                                                // checks targets, embed_tokens copy
 * Map<String, NDArray> params = lora.trainableParameters();         // PEFT names, fp32
 * }</pre>
 *
 * <p>Adapter tensors live in the model's memory and are freed with it.
 */
public final class LoraModel implements LinearFactory {
    private static final String EMBED = "model.embed_tokens";
    private static final String HEAD = "lm_head";

    private final LoraSettings settings;
    private final LinearFactory base;
    private final long seed;
    private final PeftAdapter loaded; // null for a fresh adapter
    private final Map<String, LoraLinear> adapters = new LinkedHashMap<>();
    private final Map<String, NDArray> saved = new LinkedHashMap<>(); // module name -> trainable weight
    private boolean attached;

    private LoraModel(LoraSettings settings, LinearFactory base, long seed, PeftAdapter loaded) {
        this.settings = settings;
        this.base = base;
        this.seed = seed;
        this.loaded = loaded;
    }

    /** A new adapter: A Kaiming-uniform from {@code seed} (see {@link LoraLinear#initialise}), B zero. */
    public static LoraModel fresh(LoraSettings settings, long seed, LinearFactory base) {
        return new LoraModel(settings, base, seed, null);
    }

    /** An adapter with the weights of {@code adapter} (to resume, evaluate or keep training). */
    public static LoraModel fromAdapter(PeftAdapter adapter, LinearFactory base) {
        return new LoraModel(adapter.settings(), base, 0, adapter);
    }

    /** Base factory building dense projections. */
    public static LinearFactory dense() {
        return (name, weight) -> new dev.jtune.model.llama.DenseLinear(weight);
    }

    /** Modules without an adapter or saved copy keep the base factory's stored form (e.g. a checkpoint's NF4). */
    @Override
    public Linear createStored(String name, long out, long in, NDManager manager) {
        if (attached || settings.saves(name) || settings.targets(name)) {
            return null;
        }
        return base.createStored(name, out, in, manager);
    }

    @Override
    public Linear create(String name, NDArray weight) {
        if (attached) {
            throw new IllegalStateException("this LoraModel is already attached to a model");
        }
        NDManager manager = weight.getManager();
        if (settings.saves(name)) {
            NDArray copy = loaded != null ? tensor(PeftAdapter.savedKey(name), weight.getShape().getShape(), manager)
                    : fp32Copy(weight);
            weight.close();
            saved.put(name, copy);
            return new SavedModuleLinear(copy);
        }
        if (!settings.targets(name)) {
            return base.create(name, weight);
        }
        return wrap(name, base.create(name, weight), manager);
    }

    /**
     * The base factory's direct form (NF4 quantized from the checkpoint's values), wrapped in an adapter for targets;
     * null for modules_to_save (a trainable copy needs the dense weight) or when the base has no direct form.
     */
    @Override
    public Linear createFromValues(String name, long out, long in, java.util.function.Supplier<float[]> values,
            Dtype dtype, NDManager manager) {
        if (attached) {
            throw new IllegalStateException("this LoraModel is already attached to a model");
        }
        if (settings.saves(name)) {
            return null;
        }
        Linear built = base.createFromValues(name, out, in, values, dtype, manager);
        if (built == null || !settings.targets(name)) {
            return built;
        }
        return wrap(name, built, manager);
    }

    /** {@code baseLinear} with this adapter's LoRA pair for module {@code name}, fresh or loaded. */
    private Linear wrap(String name, Linear baseLinear, NDManager manager) {
        LoraLinear lora;
        try {
            if (loaded == null) {
                lora = LoraLinear.initialise(baseLinear, name, settings.r(), settings.scaling(), settings.dropout(),
                        seed, manager);
            } else {
                long in = baseLinear.inFeatures();
                long out = baseLinear.outFeatures();
                NDArray a = tensor(PeftAdapter.loraAKey(name), new long[] {settings.r(), in}, manager);
                NDArray b = tensor(PeftAdapter.loraBKey(name), new long[] {out, settings.r()}, manager);
                lora = new LoraLinear(baseLinear, a, b, settings.scaling(), settings.dropout());
            }
        } catch (RuntimeException e) {
            baseLinear.close();
            throw e;
        }
        adapters.put(name, lora);
        return lora;
    }

    private NDArray tensor(String key, long[] expected, NDManager manager) {
        PeftAdapter.Tensor t = loaded.tensors().get(key);
        if (t == null) {
            throw new AdapterException("adapter has no tensor " + key + " (" + PeftAdapter.WEIGHTS_FILE + ")");
        }
        if (!Arrays.equals(t.shape(), expected)) {
            throw new AdapterException("adapter tensor " + key + " has shape " + Arrays.toString(t.shape())
                    + ", the model needs " + Arrays.toString(expected));
        }
        return manager.create(t.values(), new Shape(expected));
    }

    private static NDArray fp32Copy(NDArray weight) {
        Kernels k = Kernels.get();
        // torch.to returns its input unchanged when the dtype already matches: copy explicitly then.
        return k.dtypeOf(weight) == Dtype.FP32 ? weight.duplicate() : k.cast(weight, Dtype.FP32);
    }

    /**
     * Finishes the set-up once {@code model} is loaded through this factory: replaces the embedding when
     * modules_to_save names embed_tokens, and checks, as PEFT does, that every target module matched.
     *
     * @throws AdapterException if a target or saved module matches nothing in the model, or a loaded adapter has
     *     tensors for modules the model lacks
     */
    public void attach(LlamaModel model) {
        if (attached) {
            throw new IllegalStateException("already attached");
        }
        boolean tied = model.config().tieWordEmbeddings();
        for (String m : settings.modulesToSave()) {
            if (tied) {
                throw new AdapterException("modules_to_save " + m + " is not supported for a model with"
                        + " tie_word_embeddings (the head shares the embedding matrix)");
            }
        }
        if (settings.saves(EMBED)) {
            NDArray copy = loaded != null
                    ? tensor(PeftAdapter.savedKey(EMBED), model.embedTokens().getShape().getShape(),
                            model.embedTokens().getManager())
                    : fp32Copy(model.embedTokens());
            copy.setRequiresGradient(true);
            model.replaceEmbedTokens(copy);
            saved.put(EMBED, copy);
        }
        if (settings.targetRegex().isPresent() && adapters.isEmpty()) {
            throw new AdapterException("target_modules '" + settings.targetRegex().get() + "' matches no linear layer"
                    + " of the model (PEFT fully matches it against names such as model.layers.0.self_attn.q_proj)");
        }
        for (String t : settings.targetModules()) {
            if (!settings.optionalTarget(t)
                    && adapters.keySet().stream().noneMatch(n -> LoraSettings.matchesAny(n, List.of(t)))) {
                throw new AdapterException("target module " + t + " matches no linear layer of the model"
                        + (tied && t.equals(HEAD) ? " (lm_head is the tied embedding here)" : ""));
            }
        }
        for (String m : settings.modulesToSave()) {
            if (saved.keySet().stream().noneMatch(n -> LoraSettings.matchesAny(n, List.of(m)))) {
                throw new AdapterException("modules_to_save " + m + " matches no module of the model");
            }
        }
        if (loaded != null) {
            Set<String> used = new HashSet<>(trainableParameters().keySet());
            List<String> unused = new ArrayList<>();
            for (String key : loaded.tensors().keySet()) {
                if (!used.contains(key)) {
                    unused.add(key);
                }
            }
            if (!unused.isEmpty()) {
                throw new AdapterException("adapter tensors for modules the model does not have: " + unused);
            }
        }
        attached = true;
    }

    /**
     * Every trainable tensor by its PEFT state-dict name, fp32, with gradients enabled: the embedding copy (if
     * saved), then lora_A and lora_B of each wrapped module in model order, then the head copy (if saved) — the
     * order of PEFT's {@code named_parameters}. These are the live arrays: an optimizer updates them in place.
     */
    public Map<String, NDArray> trainableParameters() {
        Map<String, NDArray> params = new LinkedHashMap<>();
        if (saved.containsKey(EMBED)) {
            params.put(PeftAdapter.savedKey(EMBED), saved.get(EMBED));
        }
        adapters.forEach((name, l) -> {
            params.put(PeftAdapter.loraAKey(name), l.loraA());
            params.put(PeftAdapter.loraBKey(name), l.loraB());
        });
        saved.forEach((name, w) -> {
            if (!name.equals(EMBED)) {
                params.put(PeftAdapter.savedKey(name), w);
            }
        });
        return params;
    }

    /** Switches dropout on (training) or off (evaluation, the default) in every wrapped module. */
    public void setTraining(boolean training) {
        adapters.values().forEach(l -> l.setTraining(training));
    }

    /** The wrapped modules by name, in model order. */
    public Map<String, LoraLinear> adapters() {
        return java.util.Collections.unmodifiableMap(adapters);
    }

    /** The settings as the adapter records them: target_modules the names this model has (see forModules). */
    public LoraSettings settings() {
        return attached ? settings.forModules(adapters.keySet()) : settings;
    }

    /** Writes the current weights as a PEFT adapter directory; see {@link PeftAdapter#save}. */
    public void save(java.nio.file.Path dir, String baseModelNameOrPath) {
        PeftAdapter.save(dir, settings(), baseModelNameOrPath, trainableParameters());
    }
}
