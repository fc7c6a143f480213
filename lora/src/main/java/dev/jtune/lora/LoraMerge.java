package dev.jtune.lora;

import dev.jtune.model.hf.Directories;

import dev.jtune.model.safetensors.HalfFloats;
import dev.jtune.model.safetensors.SafetensorsCheckpoint;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsWriter;
import dev.jtune.model.safetensors.TensorInfo;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Folds a LoRA adapter into its base model, as PEFT's {@code merge_and_unload()}: for every adapted module
 * {@code W' = W + (B·A)·scaling}, and modules_to_save replaced by the adapter's copies. Pure Java, streaming:
 * one tensor in memory at a time.
 *
 * <p>Numerics follow PEFT 0.21 ({@code lora/layer.py}, {@code Linear.merge} and {@code get_delta_weight}): the
 * delta {@code (B @ A) * scaling} is an fp32 tensor (here each dot product is accumulated in double and rounded
 * once to float, then multiplied by the fp32-rounded scaling), added to the weight in fp32, and rounded once to
 * the weight's dtype (bf16 and fp16 round to nearest even, as torch's in-place add does).
 */
public final class LoraMerge {
    /** transformers' default {@code max_shard_size} (5 GB). */
    public static final long MAX_SHARD_BYTES = 5_000_000_000L;

    private static final Set<String> WEIGHT_SUFFIXES =
            Set.of(".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack");

    private LoraMerge() {}

    /** What a merge wrote. */
    public record Summary(Path out, int mergedModules, int replacedModules, int tensors) {}

    /**
     * Writes {@code out}: {@code baseDir}'s weights with {@code adapter} merged, in the base's dtypes, plus every
     * other file of {@code baseDir} (config.json, generation_config.json, tokenizer files) copied. The directory
     * is built next to {@code out} and moved into place, replacing an earlier one.
     *
     * @throws AdapterException if the adapter names modules the base lacks, shapes disagree, or the base stores
     *     its weights in bitsandbytes 4-bit layout (not supported yet)
     */
    public static Summary merge(Path baseDir, PeftAdapter adapter, Path out) {
        out = out.toAbsolutePath().normalize();
        try (SafetensorsCheckpoint base = SafetensorsCheckpoint.open(baseDir)) {
            refuseQuantized(base);
            float scaling = (float) adapter.settings().scaling();
            Set<String> consumed = new HashSet<>();
            List<SafetensorsWriter.Entry> entries = new ArrayList<>();
            int merged = 0;
            int replaced = 0;
            for (String name : base.names()) {
                TensorInfo info = base.info(name);
                String module = name.endsWith(".weight") ? name.substring(0, name.length() - ".weight".length()) : null;
                String aKey = module == null ? null : PeftAdapter.loraAKey(module);
                String savedKey = module == null ? null : PeftAdapter.savedKey(module);
                if (aKey != null && adapter.tensors().containsKey(aKey)) {
                    PeftAdapter.Tensor a = adapter.tensors().get(aKey);
                    PeftAdapter.Tensor b = adapter.tensors().get(PeftAdapter.loraBKey(module));
                    checkFloat(baseDir, name, info);
                    long[] shape = info.shape();
                    if (shape.length != 2 || a.shape()[1] != shape[1] || b.shape()[0] != shape[0]) {
                        throw new AdapterException("adapter A " + Arrays.toString(a.shape()) + " and B "
                                + Arrays.toString(b.shape()) + " do not fit " + name + " " + Arrays.toString(shape)
                                + " of " + baseDir);
                    }
                    consumed.add(aKey);
                    consumed.add(PeftAdapter.loraBKey(module));
                    entries.add(lazy(name, info, () -> mergedWeight(base.floats(name), a, b, scaling)));
                    merged++;
                } else if (savedKey != null && adapter.tensors().containsKey(savedKey)) {
                    PeftAdapter.Tensor t = adapter.tensors().get(savedKey);
                    checkFloat(baseDir, name, info);
                    if (!Arrays.equals(t.shape(), info.shape())) {
                        throw new AdapterException("adapter tensor " + savedKey + " has shape "
                                + Arrays.toString(t.shape()) + " but " + name + " of " + baseDir + " has "
                                + Arrays.toString(info.shape()) + " (resized vocabularies are not supported yet)");
                    }
                    consumed.add(savedKey);
                    entries.add(lazy(name, info, t::values));
                    replaced++;
                } else {
                    entries.add(SafetensorsWriter.Entry.copyOf(base.file(name), name));
                }
            }
            List<String> left = new ArrayList<>();
            for (String key : adapter.tensors().keySet()) {
                if (!consumed.contains(key)) {
                    left.add(key);
                }
            }
            if (!left.isEmpty()) {
                throw new AdapterException("adapter tensors match no weight of " + baseDir + ": " + left);
            }
            writeDirectory(baseDir, out, entries);
            return new Summary(out, merged, replaced, entries.size());
        }
    }

    /** W + (B·A)·scaling for W [out, in], A [r, in], B [out, r]; see the class comment for the rounding. */
    static float[] mergedWeight(float[] w, PeftAdapter.Tensor a, PeftAdapter.Tensor b, float scaling) {
        int r = (int) a.shape()[0];
        int in = (int) a.shape()[1];
        int out = (int) b.shape()[0];
        float[] av = a.values();
        float[] bv = b.values();
        float[] result = new float[w.length];
        double[] row = new double[in];
        for (int i = 0; i < out; i++) {
            Arrays.fill(row, 0);
            for (int k = 0; k < r; k++) {
                double bik = bv[i * r + k];
                int off = k * in;
                for (int j = 0; j < in; j++) {
                    row[j] += bik * av[off + j];
                }
            }
            int base = i * in;
            for (int j = 0; j < in; j++) {
                float delta = (float) row[j] * scaling;
                result[base + j] = w[base + j] + delta;
            }
        }
        return result;
    }

    /** An entry in the base tensor's dtype whose floats are computed only when the writer reaches it. */
    private static SafetensorsWriter.Entry lazy(String name, TensorInfo info, java.util.function.Supplier<float[]> values) {
        SafetensorsDtype dtype = info.dtype();
        long[] shape = info.shape();
        return new SafetensorsWriter.Entry(name, dtype, shape, channel ->
                SafetensorsWriter.Entry.ofFloats(name, shape, values.get(), dtype).source().writeTo(channel));
    }

    private static void checkFloat(Path dir, String name, TensorInfo info) {
        if (!info.dtype().isFloatingPoint()) {
            throw new AdapterException(dir + ": " + name + " is " + info.dtype() + "; merging into a quantized base is"
                    + " not supported yet (merge into the unquantized base model instead)");
        }
    }

    /** A checkpoint saved by bitsandbytes in 4-bit layout carries quant_state tensors next to packed weights. */
    private static void refuseQuantized(SafetensorsCheckpoint base) {
        for (String name : base.names()) {
            if (name.contains(".quant_state.") || name.endsWith(".absmax") || name.endsWith(".quant_map")) {
                throw new AdapterException(base.directory() + ": the base is stored in bitsandbytes 4-bit layout (" + name
                        + "); merging into an NF4-stored base is not supported yet. Merge into the original"
                        + " (unquantized) base model: a qlora adapter merges into its dense weights.");
            }
        }
    }

    private static void writeDirectory(Path baseDir, Path out, List<SafetensorsWriter.Entry> entries) {
        try {
            Files.createDirectories(out.getParent());
            Path tmp = Files.createTempDirectory(out.getParent(), out.getFileName() + ".tmp-");
            try {
                try (var files = Files.list(baseDir)) {
                    for (Path f : files.sorted().toList()) {
                        if (Files.isRegularFile(f) && !isWeightFile(f.getFileName().toString())) {
                            Files.copy(f, tmp.resolve(f.getFileName()));
                        }
                    }
                }
                SafetensorsWriter.writeSharded(tmp, "model", entries, MAX_SHARD_BYTES, Map.of());
                Directories.replace(tmp, out);
            } finally {
                Directories.deleteRecursively(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(out + ": cannot write merged model: " + e.getMessage(), e);
        }
    }

    private static boolean isWeightFile(String name) {
        String lower = name.toLowerCase(Locale.ROOT);
        if (lower.endsWith(".index.json")) {
            return true;
        }
        for (String suffix : WEIGHT_SUFFIXES) {
            if (lower.endsWith(suffix)) {
                return true;
            }
        }
        return false;
    }

}
