package dev.jtune.model.hf;

import dev.jtune.model.llama.ConfigException;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.WeightSource;
import dev.jtune.model.safetensors.SafetensorsCheckpoint;
import dev.jtune.model.safetensors.TensorInfo;
import java.nio.file.Path;

/**
 * A Hugging Face model directory opened for reading: its config.json and its safetensors weights (one file
 * or an index of shards), memory-mapped.
 */
public final class HfCheckpoint implements WeightSource, AutoCloseable {
    private final Path directory;
    private final LlamaConfig config;
    private final SafetensorsCheckpoint weights;

    private HfCheckpoint(Path directory, LlamaConfig config, SafetensorsCheckpoint weights) {
        this.directory = directory;
        this.config = config;
        this.weights = weights;
    }

    /** Opens {@code dir} (config.json plus model.safetensors or model.safetensors.index.json). */
    public static HfCheckpoint open(Path dir) {
        LlamaConfig config = LlamaConfig.load(dir);
        return new HfCheckpoint(dir, config, SafetensorsCheckpoint.open(dir));
    }

    public Path directory() {
        return directory;
    }

    public LlamaConfig config() {
        return config;
    }

    /** The underlying tensors, for callers that need dtypes or raw bytes. */
    public SafetensorsCheckpoint weights() {
        return weights;
    }

    @Override
    public boolean contains(String name) {
        return weights.contains(name);
    }

    @Override
    public long[] shape(String name) {
        return weights.info(name).shape();
    }

    @Override
    public float[] floats(String name) {
        TensorInfo info = weights.info(name);
        if (!info.dtype().isFloatingPoint()) {
            throw new ConfigException(describe() + ": tensor " + name + " is " + info.dtype()
                    + "; model weights must be F32, F16 or BF16");
        }
        return weights.floats(name);
    }

    @Override
    public String describe() {
        return directory.toString();
    }

    @Override
    public void close() {
        weights.close();
    }
}
