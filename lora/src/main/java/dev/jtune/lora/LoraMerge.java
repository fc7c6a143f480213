package dev.jtune.lora;

import dev.jtune.model.hf.Directories;
import dev.jtune.quant.Int8Checkpoint;
import dev.jtune.quant.Nf4Checkpoint;
import dev.jtune.model.safetensors.HalfFloats;
import dev.jtune.model.safetensors.SafetensorsCheckpoint;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsWriter;
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
     * A base stored in bitsandbytes 4-bit layout (NF4, double quantization) is dequantized first: the merged
     * model is dense, in the dtype bitsandbytes recorded, without {@code quantization_config}. A base stored in
     * bitsandbytes 8-bit layout ({@code load_in_8bit}) is dequantized as transformers does
     * ({@code CB · SCB / 127}) into the dtype of the checkpoint's embedding.
     *
     * @throws AdapterException if the adapter names modules the base lacks or shapes disagree
     */
    public static Summary merge(Path baseDir, PeftAdapter adapter, Path out) {
        return merge(baseDir, adapter, out, null);
    }

    /**
     * {@link #merge(Path, PeftAdapter, Path)}, with the tokenizer files taken from {@code tokenizerDir} instead of the
     * base when it holds a tokenizer.json (an adapter trained with added tokens carries its grown tokenizer). An
     * adapter whose embed_tokens/lm_head copies have more rows than the base (a grown vocabulary, PEFT's
     * {@code modules_to_save} after {@code resize_token_embeddings}) gives a merged model of that vocabulary size:
     * those copies replace the base's matrices and config.json's {@code vocab_size} is updated.
     *
     * @param tokenizerDir where the tokenizer files come from when it holds a tokenizer.json, or null
     */
    public static Summary merge(Path baseDir, PeftAdapter adapter, Path out, Path tokenizerDir) {
        out = out.toAbsolutePath().normalize();
        Path tokenizer = tokenizerDir != null && Files.isRegularFile(tokenizerDir.resolve("tokenizer.json"))
                ? tokenizerDir : null;
        try (SafetensorsCheckpoint base = SafetensorsCheckpoint.open(baseDir)) {
            if (isBnb8bit(base)) {
                try (Int8Checkpoint int8 = Int8Checkpoint.open(baseDir)) {
                    return merge(baseDir, new Int8Base(base, int8), adapter, out, "quantization_config", tokenizer);
                }
            }
            if (!isBnb4bit(base)) {
                return merge(baseDir, new DenseBase(base), adapter, out, null, tokenizer);
            }
            try (Nf4Checkpoint nf4 = Nf4Checkpoint.open(baseDir)) {
                return merge(baseDir, new Nf4Base(base, nf4), adapter, out, "quantization_config", tokenizer);
            }
        }
    }

    /** The modules whose rows are the vocabulary. */
    private static final Set<String> VOCAB_WEIGHTS = Set.of("model.embed_tokens.weight", "lm_head.weight");

    /** Files of a tokenizer folder, copied over the base's. */
    private static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "chat_template.jinja", "tekken.json");

    /**
     * The base's tensors as the merged model will hold them: a dense checkpoint as stored; an NF4-stored one with
     * each quantized weight dequantized (in the dtype bitsandbytes recorded for it) and its quantization
     * statistics left out.
     */
    private interface BaseTensors {
        List<String> names();

        SafetensorsDtype dtype(String name);

        long[] shape(String name);

        float[] floats(String name);

        /** The stored bytes as they are, for a tensor the merge does not change. */
        SafetensorsWriter.Entry copy(String name);
    }

    private record DenseBase(SafetensorsCheckpoint base) implements BaseTensors {
        @Override
        public List<String> names() {
            return base.names();
        }

        @Override
        public SafetensorsDtype dtype(String name) {
            return base.info(name).dtype();
        }

        @Override
        public long[] shape(String name) {
            return base.info(name).shape();
        }

        @Override
        public float[] floats(String name) {
            return base.floats(name);
        }

        @Override
        public SafetensorsWriter.Entry copy(String name) {
            return SafetensorsWriter.Entry.copyOf(base.file(name), name);
        }
    }

    private record Nf4Base(SafetensorsCheckpoint base, Nf4Checkpoint nf4) implements BaseTensors {
        private String quantizedModule(String name) {
            String module = name.endsWith(".weight") ? name.substring(0, name.length() - ".weight".length()) : null;
            return module != null && nf4.quantizedModules().contains(module) ? module : null;
        }

        @Override
        public List<String> names() {
            // A quantized module's statistics are stored as "<module>.weight.<what>" beside its packed weight.
            return base.names().stream().filter(n -> {
                int at = n.indexOf(".weight.");
                return at < 0 || !nf4.quantizedModules().contains(n.substring(0, at));
            }).toList();
        }

        @Override
        public SafetensorsDtype dtype(String name) {
            String m = quantizedModule(name);
            if (m == null) return base.info(name).dtype();
            return switch (nf4.nf4(m).dtype()) {
                case FP32 -> SafetensorsDtype.F32;
                case FP16 -> SafetensorsDtype.F16;
                case BF16 -> SafetensorsDtype.BF16;
            };
        }

        @Override
        public long[] shape(String name) {
            return nf4.shape(name);
        }

        @Override
        public float[] floats(String name) {
            return nf4.floats(name);
        }

        @Override
        public SafetensorsWriter.Entry copy(String name) {
            if (quantizedModule(name) == null) return SafetensorsWriter.Entry.copyOf(base.file(name), name);
            SafetensorsDtype dtype = dtype(name);
            long[] shape = shape(name);
            return new SafetensorsWriter.Entry(name, dtype, shape, channel ->
                    SafetensorsWriter.Entry.ofFloats(name, shape, floats(name), dtype).source().writeTo(channel));
        }
    }

    /**
     * An 8-bit-stored base: each quantized weight dequantized ({@link Int8Checkpoint#dequantize}) in the dtype of the
     * checkpoint's 16-bit tensors (the embedding's), its {@code SCB} and {@code weight_format} left out.
     */
    private record Int8Base(SafetensorsCheckpoint base, Int8Checkpoint int8) implements BaseTensors {
        private String quantizedModule(String name) {
            String module = name.endsWith(".weight") ? name.substring(0, name.length() - ".weight".length()) : null;
            return module != null && int8.quantizedModules().contains(module) ? module : null;
        }

        @Override
        public List<String> names() {
            return base.names().stream().filter(n -> !(n.endsWith(".SCB") || n.endsWith(".weight_format"))
                    || !int8.quantizedModules().contains(n.substring(0, n.lastIndexOf('.')))).toList();
        }

        @Override
        public SafetensorsDtype dtype(String name) {
            if (quantizedModule(name) == null) return base.info(name).dtype();
            for (String n : base.names()) {
                if (n.endsWith("embed_tokens.weight")) return base.info(n).dtype();
            }
            return SafetensorsDtype.F16; // transformers' default torch_dtype for bitsandbytes
        }

        @Override
        public long[] shape(String name) {
            return base.info(name).shape();
        }

        /** A quantized weight dequantized (fp32) and rounded to its dtype, as transformers' {@code .to(dtype)}. */
        @Override
        public float[] floats(String name) {
            float[] v = int8.floats(name);
            if (quantizedModule(name) != null) {
                SafetensorsDtype dtype = dtype(name);
                for (int i = 0; i < v.length; i++) {
                    v[i] = switch (dtype) {
                        case BF16 -> dev.jtune.model.safetensors.HalfFloats.bfloat16ToFloat(
                                dev.jtune.model.safetensors.HalfFloats.floatToBFloat16(v[i]));
                        case F16 -> Float.float16ToFloat(Float.floatToFloat16(v[i]));
                        default -> v[i];
                    };
                }
            }
            return v;
        }

        @Override
        public SafetensorsWriter.Entry copy(String name) {
            if (quantizedModule(name) == null) return SafetensorsWriter.Entry.copyOf(base.file(name), name);
            SafetensorsDtype dtype = dtype(name);
            long[] shape = shape(name);
            return new SafetensorsWriter.Entry(name, dtype, shape, channel ->
                    SafetensorsWriter.Entry.ofFloats(name, shape, floats(name), dtype).source().writeTo(channel));
        }
    }

    /**
     * The module a base tensor belongs to, by transformers' module name (the adapter's): a multimodal Gemma 3 file
     * written before transformers 5 stores the text model under {@code language_model.model.}, the vision tower under
     * {@code vision_tower.} and the projector under {@code multi_modal_projector.}, which transformers 5 loads as
     * {@code model.language_model.}, {@code model.vision_tower.}, {@code model.multi_modal_projector.} (its "llava"
     * renaming). PEFT wraps the vision tower's q/k/v_proj too when target_modules is a list of names, and saves their
     * A and B; null for a tensor that is not a weight.
     */
    static String moduleOf(String name) {
        if (!name.endsWith(".weight")) {
            return null;
        }
        String module = name.substring(0, name.length() - ".weight".length());
        if (module.startsWith("language_model.model.")) {
            return "model.language_model." + module.substring("language_model.model.".length());
        }
        if (module.startsWith("vision_tower.") || module.startsWith("multi_modal_projector.")) {
            return "model." + module;
        }
        return module.equals("language_model.lm_head") ? "lm_head" : module;
    }

    private static Summary merge(Path baseDir, BaseTensors base, PeftAdapter adapter, Path out, String dropConfigKey,
            Path tokenizerDir) {
        long grownRows = 0;
        for (String name : VOCAB_WEIGHTS) {
            PeftAdapter.Tensor t = adapter.tensors().get(PeftAdapter.savedKey(name.substring(0, name.length() - 7)));
            if (t != null && base.names().contains(name) && t.shape().length == 2
                    && t.shape()[0] > base.shape(name)[0] && t.shape()[1] == base.shape(name)[1]) {
                grownRows = Math.max(grownRows, t.shape()[0]);
            }
        }
        float scaling = (float) adapter.settings().scaling();
        Set<String> consumed = new HashSet<>();
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        int merged = 0;
        int replaced = 0;
        for (String name : base.names()) {
            SafetensorsDtype dtype = base.dtype(name);
            long[] shape = base.shape(name);
            String module = moduleOf(name);
            String aKey = module == null ? null : PeftAdapter.loraAKey(module);
            String savedKey = module == null ? null : PeftAdapter.savedKey(module);
            if (aKey != null && adapter.tensors().containsKey(aKey)) {
                PeftAdapter.Tensor a = adapter.tensors().get(aKey);
                PeftAdapter.Tensor b = adapter.tensors().get(PeftAdapter.loraBKey(module));
                checkFloat(baseDir, name, dtype);
                if (shape.length != 2 || a.shape()[1] != shape[1] || b.shape()[0] != shape[0]) {
                    throw new AdapterException("adapter A " + Arrays.toString(a.shape()) + " and B "
                            + Arrays.toString(b.shape()) + " do not fit " + name + " " + Arrays.toString(shape)
                            + " of " + baseDir);
                }
                consumed.add(aKey);
                consumed.add(PeftAdapter.loraBKey(module));
                entries.add(lazy(name, dtype, shape, () -> mergedWeight(base.floats(name), a, b, scaling)));
                merged++;
            } else if (savedKey != null && adapter.tensors().containsKey(savedKey)) {
                PeftAdapter.Tensor t = adapter.tensors().get(savedKey);
                checkFloat(baseDir, name, dtype);
                boolean grown = grownRows > 0 && VOCAB_WEIGHTS.contains(name) && t.shape().length == 2
                        && t.shape()[0] == grownRows && t.shape()[1] == shape[1];
                if (!Arrays.equals(t.shape(), shape) && !grown) {
                    throw new AdapterException("adapter tensor " + savedKey + " has shape "
                            + Arrays.toString(t.shape()) + " but " + name + " of " + baseDir + " has "
                            + Arrays.toString(shape));
                }
                consumed.add(savedKey);
                entries.add(lazy(name, dtype, t.shape(), t::values));
                replaced++;
            } else {
                if (grownRows > 0 && VOCAB_WEIGHTS.contains(name)) {
                    throw new AdapterException("the adapter grows the vocabulary to " + grownRows + " rows but has no "
                            + name.substring(0, name.length() - 7) + " copy (modules_to_save) of that size: "
                            + name + " of " + baseDir + " has " + Arrays.toString(shape));
                }
                entries.add(base.copy(name));
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
        writeDirectory(baseDir, out, entries, dropConfigKey, grownRows, tokenizerDir);
        return new Summary(out, merged, replaced, entries.size());
    }

    /** Whether the base is stored in bitsandbytes 8-bit layout: an int8 weight with its row scales {@code SCB}. */
    private static boolean isBnb8bit(SafetensorsCheckpoint base) {
        for (String name : base.names()) {
            if (name.endsWith(".SCB")) {
                return true;
            }
        }
        return false;
    }

    /** Whether the base is stored in bitsandbytes 4-bit layout (then its config.json says so too). */
    private static boolean isBnb4bit(SafetensorsCheckpoint base) {
        for (String name : base.names()) {
            if (name.contains(".quant_state.") || name.endsWith(".absmax") || name.endsWith(".quant_map")) {
                return true;
            }
        }
        return false;
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
    private static SafetensorsWriter.Entry lazy(String name, SafetensorsDtype dtype, long[] shape,
            java.util.function.Supplier<float[]> values) {
        return new SafetensorsWriter.Entry(name, dtype, shape, channel ->
                SafetensorsWriter.Entry.ofFloats(name, shape, values.get(), dtype).source().writeTo(channel));
    }

    private static void checkFloat(Path dir, String name, SafetensorsDtype dtype) {
        if (!dtype.isFloatingPoint()) {
            throw new AdapterException(dir + ": " + name + " is " + dtype + "; merging into a base quantized other"
                    + " than bitsandbytes NF4 is not supported (merge into the unquantized base model instead)");
        }
    }

    /**
     * Writes the merged folder: the base's other files copied ({@code dropConfigKey}, if any, removed from
     * config.json: a model dequantized for the merge is no longer quantized), then the weights.
     */
    private static void writeDirectory(Path baseDir, Path out, List<SafetensorsWriter.Entry> entries,
            String dropConfigKey, long vocabSize, Path tokenizerDir) {
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
                if (tokenizerDir != null) {
                    for (String name : TOKENIZER_FILES) {
                        Path f = tokenizerDir.resolve(name);
                        if (Files.isRegularFile(f)) {
                            Files.copy(f, tmp.resolve(name), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                        }
                    }
                }
                Path config = tmp.resolve("config.json");
                if ((dropConfigKey != null || vocabSize > 0) && Files.isRegularFile(config)) {
                    var json = new com.fasterxml.jackson.databind.ObjectMapper();
                    var tree = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(config.toFile());
                    boolean changed = dropConfigKey != null && tree.remove(dropConfigKey) != null;
                    if (vocabSize > 0) {
                        tree.put("vocab_size", vocabSize);
                        changed = true;
                    }
                    if (changed) {
                        Files.writeString(config, json.writerWithDefaultPrettyPrinter().writeValueAsString(tree) + "\n");
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
