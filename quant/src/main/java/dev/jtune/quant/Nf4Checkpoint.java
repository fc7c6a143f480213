package dev.jtune.quant;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.hf.HfCheckpoint;
import dev.jtune.model.llama.ConfigException;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel.LinearFactory;
import dev.jtune.model.llama.WeightSource;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.Set;
import java.util.TreeSet;

/**
 * A Hugging Face directory saved by transformers with bitsandbytes 4-bit quantization ({@code config.json}'s
 * {@code quantization_config} with {@code load_in_4bit}, NF4, double quantization; each quantized linear's weight in
 * {@link Bnb4bitLayout}), opened for {@code LlamaModel.load}.
 *
 * <p>As a {@link WeightSource} it shows every quantized {@code X.weight} with its dense shape and dequantized values
 * (bitsandbytes' dequantization, in the stored dtype), so any factory can load it. {@link #linearFactory()} instead
 * hands each quantized linear its stored {@link Nf4Tensor} directly ({@link LinearFactory#createStored}): nothing is
 * dequantized or quantized again, and the model computes exactly as one quantized by jtune from the same weights.
 */
public final class Nf4Checkpoint implements WeightSource, AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HfCheckpoint checkpoint;
    private final Set<String> quantized; // module names, e.g. model.layers.0.mlp.up_proj

    private Nf4Checkpoint(HfCheckpoint checkpoint, Set<String> quantized) {
        this.checkpoint = checkpoint;
        this.quantized = Collections.unmodifiableSet(quantized);
    }

    /**
     * Opens {@code dir}.
     *
     * @throws ConfigException if config.json has no {@code quantization_config}, or it is not bitsandbytes 4-bit NF4
     *     with double quantization (naming the key), or no tensor is stored in that layout
     */
    public static Nf4Checkpoint open(Path dir) {
        checkQuantizationConfig(dir.resolve("config.json"));
        HfCheckpoint hf = HfCheckpoint.open(dir);
        try {
            Set<String> modules = new TreeSet<>();
            String suffix = ".weight." + Bnb4bitLayout.QUANT_STATE;
            for (String name : hf.weights().names()) {
                if (name.endsWith(suffix)) {
                    modules.add(name.substring(0, name.length() - suffix.length()));
                }
            }
            if (modules.isEmpty()) {
                throw new ConfigException(dir + ": config.json declares bitsandbytes 4-bit quantization but no tensor"
                        + " ends in '" + suffix + "'");
            }
            return new Nf4Checkpoint(hf, modules);
        } catch (RuntimeException e) {
            hf.close();
            throw e;
        }
    }

    /** transformers' {@code BitsAndBytesConfig.to_dict()} as config.json stores it. */
    static void checkQuantizationConfig(Path configJson) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(configJson));
        } catch (JacksonException e) {
            throw new ConfigException(configJson + ": not JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new UncheckedIOException(configJson + ": cannot read: " + e.getMessage(), e);
        }
        JsonNode q = root == null ? null : root.get("quantization_config");
        if (q == null || !q.isObject()) {
            throw new ConfigException(configJson + ": no quantization_config object; not a bitsandbytes 4-bit"
                    + " checkpoint (load it with HfCheckpoint)");
        }
        expect(configJson, q, "quant_method", "bitsandbytes", false);
        expect(configJson, q, "load_in_4bit", true, true);
        expect(configJson, q, "bnb_4bit_quant_type", "nf4", true);
        expect(configJson, q, "bnb_4bit_use_double_quant", true, true);
    }

    private static void expect(Path file, JsonNode q, String key, Object wanted, boolean required) {
        JsonNode v = q.get(key);
        if (v == null || v.isNull()) {
            if (required) {
                throw new ConfigException(file + ": quantization_config." + key + " is missing; expected " + show(wanted));
            }
            return;
        }
        boolean ok = wanted instanceof Boolean b ? v.isBoolean() && v.booleanValue() == b
                : v.isTextual() && v.textValue().equals(wanted);
        if (!ok) {
            throw new ConfigException(file + ": quantization_config." + key + " is " + v + "; jtune loads "
                    + show(wanted) + " (bitsandbytes 4-bit NF4 with double quantization) only");
        }
    }

    private static String show(Object v) {
        return v instanceof String s ? "\"" + s + "\"" : String.valueOf(v);
    }

    public LlamaConfig config() {
        return checkpoint.config();
    }

    public Path directory() {
        return checkpoint.directory();
    }

    /** The modules stored in NF4 (names without {@code .weight}), sorted. */
    public Set<String> quantizedModules() {
        return quantized;
    }

    /** {@code module}'s stored NF4 weight. */
    public Nf4Tensor nf4(String module) {
        if (!quantized.contains(module)) {
            throw new IllegalArgumentException(describe() + ": " + module + " is not stored in NF4");
        }
        return Bnb4bitLayout.read(checkpoint.weights().file(module + ".weight." + Bnb4bitLayout.QUANT_STATE), module);
    }

    /**
     * A factory for {@code LlamaModel.load(config, this, dtype, manager, factory)}: NF4-stored linears become
     * {@link Nf4Linear}s over the stored tensors (never dequantized at load), the others {@link DenseLinear}s.
     * Through {@link LinearFactory#create} (a wrapping factory, e.g. LoRA) a quantized module's dense weight is
     * closed and the stored tensor used all the same.
     */
    public LinearFactory linearFactory() {
        return StoredLinears.factory(quantized, this::stored);
    }

    private Linear stored(String name, long out, long in, NDManager manager, Nf4Linear.SharedBuffers shared) {
        Nf4Tensor t = nf4(name);
        if (!Arrays.equals(t.shape(), new long[] {out, in})) {
            throw new ConfigException(describe() + ": " + name + ".weight is stored as NF4 of shape "
                    + Arrays.toString(t.shape()) + ", config.json implies " + Arrays.toString(new long[] {out, in}));
        }
        return new Nf4Linear(t, manager, shared, name);
    }

    private static String module(String tensorName) {
        return tensorName.endsWith(".weight") ? tensorName.substring(0, tensorName.length() - ".weight".length()) : null;
    }

    @Override
    public boolean contains(String name) {
        return checkpoint.contains(name);
    }

    @Override
    public long[] shape(String name) {
        String m = module(name);
        return m != null && quantized.contains(m) ? nf4(m).shape() : checkpoint.shape(name);
    }

    @Override
    public float[] floats(String name) {
        String m = module(name);
        return m != null && quantized.contains(m) ? Nf4Quantizer.dequantize(nf4(m)) : checkpoint.floats(name);
    }

    @Override
    public String describe() {
        return checkpoint.describe();
    }

    @Override
    public void close() {
        checkpoint.close();
    }
}
