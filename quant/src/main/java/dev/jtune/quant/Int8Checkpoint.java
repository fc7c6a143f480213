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
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsFile;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.Set;
import java.util.TreeSet;

/**
 * A Hugging Face directory saved by transformers from a {@code load_in_8bit} model ({@code config.json}'s
 * {@code quantization_config} with {@code load_in_8bit: true}; bitsandbytes' {@code Linear8bitLt._save_to_state_dict}
 * stores each quantized linear as {@code X.weight} int8 [out, in] ({@code CB}), {@code X.SCB} fp32 [out] and
 * {@code X.weight_format} (0, row-major)), opened for {@code LlamaModel.load} and for merging.
 *
 * <p>As a {@link WeightSource} it shows every quantized {@code X.weight} dequantized as transformers'
 * {@code dequantize_bnb_weight} does ({@code int8_vectorwise_dequant}: {@code CB · SCB · 7.874015718698502e-3} in
 * fp32); {@link #linearFactory()} hands each quantized linear its stored codes and scales ({@link Int8Linear}),
 * nothing quantized again.
 */
public final class Int8Checkpoint implements WeightSource, AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** {@code int8_vectorwise_dequant}'s factor, as the fp32 scalar torch multiplies by. */
    static final float DEQUANT = (float) 7.874015718698502e-3;

    private final HfCheckpoint checkpoint;
    private final Set<String> quantized; // module names, e.g. model.layers.0.mlp.up_proj
    private final double threshold;

    private Int8Checkpoint(HfCheckpoint checkpoint, Set<String> quantized, double threshold) {
        this.checkpoint = checkpoint;
        this.quantized = Collections.unmodifiableSet(quantized);
        this.threshold = threshold;
    }

    /** Whether {@code dir}'s config.json declares a bitsandbytes 8-bit checkpoint. */
    public static boolean declares(Path dir) {
        JsonNode q = quantizationConfig(dir.resolve("config.json"));
        return q != null && q.path("load_in_8bit").asBoolean(false);
    }

    /**
     * Opens {@code dir}.
     *
     * @throws ConfigException if config.json's quantization_config is not bitsandbytes 8-bit without fp16 weights
     *     (naming the key), or no tensor is stored in that layout
     */
    public static Int8Checkpoint open(Path dir) {
        Path configJson = dir.resolve("config.json");
        JsonNode q = quantizationConfig(configJson);
        if (q == null) {
            throw new ConfigException(configJson + ": no quantization_config object; not a bitsandbytes 8-bit"
                    + " checkpoint (load it with HfCheckpoint)");
        }
        if (!"bitsandbytes".equals(q.path("quant_method").asText("bitsandbytes"))) {
            throw new ConfigException(configJson + ": quantization_config.quant_method is " + q.get("quant_method")
                    + "; jtune loads \"bitsandbytes\" 8-bit checkpoints");
        }
        if (!q.path("load_in_8bit").asBoolean(false)) {
            throw new ConfigException(configJson + ": quantization_config.load_in_8bit is not true");
        }
        if (q.path("llm_int8_has_fp16_weight").asBoolean(false)) {
            throw new ConfigException(configJson + ": quantization_config.llm_int8_has_fp16_weight is true; jtune"
                    + " loads 8-bit checkpoints with int8 weights (false, transformers' default)");
        }
        double threshold = q.path("llm_int8_threshold").asDouble(Int8Linear.DEFAULT_THRESHOLD);
        HfCheckpoint hf = HfCheckpoint.open(dir);
        try {
            Set<String> modules = new TreeSet<>();
            for (String name : hf.weights().names()) {
                if (name.endsWith(".SCB")) {
                    String module = name.substring(0, name.length() - ".SCB".length());
                    var info = hf.weights().info(module + ".weight");
                    if (info.dtype() != SafetensorsDtype.I8 || info.shape().length != 2) {
                        throw new ConfigException(dir + ": " + module + ".weight is " + info.dtype() + " "
                                + Arrays.toString(info.shape()) + "; beside " + name + " bitsandbytes stores int8"
                                + " [out, in]");
                    }
                    modules.add(module);
                }
            }
            if (modules.isEmpty()) {
                throw new ConfigException(dir + ": config.json declares bitsandbytes 8-bit quantization but no tensor"
                        + " ends in '.SCB'");
            }
            return new Int8Checkpoint(hf, modules, threshold);
        } catch (RuntimeException e) {
            hf.close();
            throw e;
        }
    }

    private static JsonNode quantizationConfig(Path configJson) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(configJson));
        } catch (JacksonException e) {
            throw new ConfigException(configJson + ": not JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new UncheckedIOException(configJson + ": cannot read: " + e.getMessage(), e);
        }
        JsonNode q = root == null ? null : root.get("quantization_config");
        return q != null && q.isObject() ? q : null;
    }

    public LlamaConfig config() {
        return checkpoint.config();
    }

    /** The modules stored in 8-bit (names without {@code .weight}), sorted. */
    public Set<String> quantizedModules() {
        return quantized;
    }

    /** The outlier threshold the checkpoint records ({@code llm_int8_threshold}). */
    public double threshold() {
        return threshold;
    }

    /** {@code module}'s stored codes and row scales. */
    public Int8Tensor int8(String module) {
        if (!quantized.contains(module)) {
            throw new IllegalArgumentException(describe() + ": " + module + " is not stored in 8-bit");
        }
        SafetensorsFile f = checkpoint.weights().file(module + ".weight");
        long[] shape = f.info(module + ".weight").shape();
        byte[] codes = f.bytes(module + ".weight");
        float[] scb = checkpoint.weights().floats(module + ".SCB");
        if (scb.length != shape[0]) {
            throw new ConfigException(describe() + ": " + module + ".SCB has " + scb.length + " values for "
                    + shape[0] + " rows");
        }
        return new Int8Tensor(shape, codes, scb);
    }

    /** transformers' dequantization of a stored weight: {@code CB · SCB · 7.874015718698502e-3}, fp32, row-major. */
    public static float[] dequantize(Int8Tensor q) {
        int cols = q.columns();
        float[] out = new float[q.codes().length];
        for (int r = 0; r < q.rows(); r++) {
            for (int c = 0; c < cols; c++) {
                out[r * cols + c] = q.codes()[r * cols + c] * q.rowAbsmax()[r] * DEQUANT;
            }
        }
        return out;
    }

    /**
     * A factory for {@code LlamaModel.load(config, this, dtype, manager, factory)}: 8-bit-stored linears become
     * {@link Int8Linear}s over the stored codes, the others {@link DenseLinear}s.
     */
    public LinearFactory linearFactory() {
        return StoredLinears.factory(quantized, this::stored);
    }

    private Linear stored(String name, long out, long in, NDManager manager, Nf4Linear.SharedBuffers shared) {
        Int8Tensor t = int8(name);
        if (!Arrays.equals(t.shape(), new long[] {out, in})) {
            throw new ConfigException(describe() + ": " + name + ".weight is stored as int8 of shape "
                    + Arrays.toString(t.shape()) + ", config.json implies " + Arrays.toString(new long[] {out, in}));
        }
        return new Int8Linear(t, manager, shared, name, threshold);
    }

    private String module(String tensorName) {
        String m = tensorName.endsWith(".weight") ? tensorName.substring(0, tensorName.length() - ".weight".length())
                : null;
        return m != null && quantized.contains(m) ? m : null;
    }

    @Override
    public boolean contains(String name) {
        return checkpoint.contains(name);
    }

    @Override
    public long[] shape(String name) {
        return checkpoint.weights().info(name).shape();
    }

    @Override
    public float[] floats(String name) {
        String m = module(name);
        return m != null ? dequantize(int8(m)) : checkpoint.floats(name);
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
