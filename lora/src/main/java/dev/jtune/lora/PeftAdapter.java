package dev.jtune.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsException;
import dev.jtune.model.safetensors.SafetensorsFile;
import dev.jtune.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * A LoRA adapter in PEFT's directory format: {@code adapter_config.json} plus {@code adapter_model.safetensors},
 * as {@code PeftModel.save_pretrained} of PEFT 0.21 writes them and {@code PeftModel.from_pretrained} reads them.
 *
 * <p>Tensor names are PEFT's state-dict names without the adapter name: {@code base_model.model.} + module +
 * {@code .lora_A.weight} / {@code .lora_B.weight}, and {@code base_model.model.} + module + {@code .weight} for
 * modules_to_save (PEFT 0.21, {@code utils/save_and_load.py}, {@code get_peft_model_state_dict}; checked against
 * a save by PEFT 0.21.0, see {@code tools/interop/peft_check.py}).
 *
 * @param settings r, alpha, dropout, targets, rsLoRA and modules_to_save from the config
 * @param baseModelNameOrPath {@code base_model_name_or_path}, or null
 * @param tensors every tensor of the weights file by name, as fp32 values
 */
public record PeftAdapter(LoraSettings settings, String baseModelNameOrPath, Map<String, Tensor> tensors) {

    /** The config file's name. */
    public static final String CONFIG_FILE = "adapter_config.json";

    /** The weights file's name. */
    public static final String WEIGHTS_FILE = "adapter_model.safetensors";

    /** Prefix of every key: PeftModel's {@code base_model} (a LoraModel) wrapping {@code model}. */
    public static final String PREFIX = "base_model.model.";

    /** The PEFT version whose format this writes. */
    public static final String PEFT_VERSION = "0.21.0";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** A tensor's shape and row-major fp32 values. */
    public record Tensor(long[] shape, float[] values) {
        public Tensor {
            shape = shape.clone();
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            if (n != values.length) {
                throw new IllegalArgumentException(values.length + " values for shape " + Arrays.toString(shape));
            }
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }
    }

    public PeftAdapter {
        Objects.requireNonNull(settings, "settings");
        tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
    }

    /** {@code base_model.model.<module>.lora_A.weight}. */
    public static String loraAKey(String module) {
        return PREFIX + module + ".lora_A.weight";
    }

    /** {@code base_model.model.<module>.lora_B.weight}. */
    public static String loraBKey(String module) {
        return PREFIX + module + ".lora_B.weight";
    }

    /** A modules_to_save weight: {@code base_model.model.<module>.weight}. */
    public static String savedKey(String module) {
        return PREFIX + module + ".weight";
    }

    /** The module names that have LoRA A and B here, in key order. */
    public List<String> adaptedModules() {
        List<String> modules = new ArrayList<>();
        for (String key : new TreeMap<>(tensors).keySet()) {
            if (key.endsWith(".lora_A.weight")) {
                modules.add(key.substring(PREFIX.length(), key.length() - ".lora_A.weight".length()));
            }
        }
        return modules;
    }

    // ---- writing ----

    /**
     * Writes {@code dir}/adapter_config.json and {@code dir}/adapter_model.safetensors, each atomically (the
     * weights first, so a config always describes complete weights). Tensors are written as F32.
     *
     * @param params PEFT-named tensors, e.g. {@link LoraModel#trainableParameters()}; fp32
     */
    public static void save(Path dir, LoraSettings settings, String baseModelNameOrPath, Map<String, NDArray> params) {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        params.forEach((name, array) -> {
            if (array.getDataType() != DataType.FLOAT32) {
                throw new IllegalArgumentException("adapter tensor " + name + " is " + array.getDataType()
                        + ", expected fp32");
            }
            tensors.put(name, new Tensor(array.getShape().getShape(), array.toFloatArray()));
        });
        new PeftAdapter(settings, baseModelNameOrPath, tensors).save(dir);
    }

    /** Writes this adapter into {@code dir} (created if needed); see {@link #save(Path, LoraSettings, String, Map)}. */
    public void save(Path dir) {
        try {
            Files.createDirectories(dir);
            List<SafetensorsWriter.Entry> entries = new ArrayList<>();
            tensors.forEach((name, t) -> entries.add(
                    SafetensorsWriter.Entry.ofFloats(name, t.shape(), t.values(), SafetensorsDtype.F32)));
            SafetensorsWriter.write(dir.resolve(WEIGHTS_FILE), entries, Map.of());
            writeAtomically(dir.resolve(CONFIG_FILE), configJson(settings, baseModelNameOrPath));
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot write adapter: " + e.getMessage(), e);
        }
    }

    /**
     * The text of adapter_config.json as PEFT 0.21's {@code PeftConfigMixin.save_pretrained} writes it:
     * {@code json.dumps(LoraConfig.to_dict(), indent=2, sort_keys=True)}, no final newline, with
     * {@code inference_mode: true} (set by {@code PeftModel.save_pretrained}) and every field of
     * {@code LoraConfig} at its default unless Axolotl sets it. PEFT writes target_modules in Python set order,
     * which varies between runs; this writes them sorted.
     */
    public static String configJson(LoraSettings s, String baseModelNameOrPath) {
        Map<String, Object> c = new TreeMap<>();
        c.put("alora_invocation_tokens", null);
        c.put("alpha_pattern", Map.of());
        c.put("arrow_config", null);
        c.put("auto_mapping", null);
        c.put("base_model_name_or_path", baseModelNameOrPath);
        c.put("bias", "none");
        c.put("corda_config", null);
        c.put("ensure_weight_tying", false);
        c.put("eva_config", null);
        c.put("exclude_modules", null);
        c.put("fan_in_fan_out", false);
        c.put("inference_mode", true);
        c.put("init_lora_weights", true);
        c.put("kasa_config", null);
        c.put("layer_replication", null);
        c.put("layers_pattern", null);
        c.put("layers_to_transform", null);
        c.put("loftq_config", Map.of());
        c.put("lora_alpha", s.alpha());
        c.put("lora_bias", false);
        c.put("lora_dropout", s.dropout());
        c.put("lora_ga_config", null);
        c.put("megatron_config", null);
        c.put("megatron_core", "megatron.core");
        c.put("modules_to_save", s.modulesToSave().isEmpty() ? null : s.modulesToSave());
        c.put("monteclora_config", null);
        c.put("peft_type", "LORA");
        c.put("peft_version", PEFT_VERSION);
        c.put("qalora_group_size", 16);
        c.put("r", s.r());
        c.put("rank_pattern", Map.of());
        c.put("revision", null);
        c.put("target_modules", s.peftTargetModules());
        c.put("target_parameters", null);
        c.put("task_type", "CAUSAL_LM");
        c.put("trainable_token_indices", null);
        c.put("use_bdlora", null);
        c.put("use_dora", false);
        c.put("use_qalora", false);
        c.put("use_rslora", s.useRslora());
        c.put("velora_config", null);
        return PythonJson.dumps(c);
    }

    private static void writeAtomically(Path file, String text) throws IOException {
        Path tmp = Files.createTempFile(file.toAbsolutePath().getParent(), "." + file.getFileName(), ".tmp");
        try {
            Files.writeString(tmp, text, StandardCharsets.UTF_8);
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    // ---- reading ----

    /**
     * Reads an adapter directory written by PEFT or by {@link #save}.
     *
     * @throws AdapterException naming the file and the field or tensor at fault: a missing file, a LoRA
     *     variant jtune does not implement (DoRA, rank/alpha patterns, biases, fan_in_fan_out, ...), a tensor
     *     whose shape disagrees with {@code r}, a lora_A without its lora_B, or an unexpected tensor
     */
    public static PeftAdapter load(Path dir) {
        Path configFile = dir.resolve(CONFIG_FILE);
        Path weightsFile = dir.resolve(WEIGHTS_FILE);
        if (!Files.isRegularFile(configFile)) {
            throw new AdapterException(dir + ": no " + CONFIG_FILE + " (expected a PEFT adapter directory)");
        }
        if (!Files.isRegularFile(weightsFile)) {
            String hint = Files.isRegularFile(dir.resolve("adapter_model.bin"))
                    ? " (adapter_model.bin is a pickle; re-save it with safe_serialization=True)" : "";
            throw new AdapterException(dir + ": no " + WEIGHTS_FILE + hint);
        }
        ConfigReader c = new ConfigReader(configFile);
        LoraSettings settings = c.settings();
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(weightsFile)) {
            for (String name : f.names()) {
                tensors.put(name, new Tensor(f.info(name).shape(), f.floats(name)));
            }
        } catch (SafetensorsException e) {
            throw new AdapterException(weightsFile + ": " + e.getMessage(), e);
        }
        checkTensors(weightsFile, settings, tensors);
        return new PeftAdapter(settings, c.optionalString("base_model_name_or_path"), tensors);
    }

    private static void checkTensors(Path file, LoraSettings s, Map<String, Tensor> tensors) {
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            String key = e.getKey();
            long[] shape = e.getValue().shape();
            if (!key.startsWith(PREFIX)) {
                throw new AdapterException(file + ": tensor " + key + " does not start with " + PREFIX);
            }
            if (key.endsWith(".lora_A.weight") || key.endsWith(".lora_B.weight")) {
                boolean isA = key.endsWith(".lora_A.weight");
                String module = key.substring(PREFIX.length(), key.length() - ".lora_A.weight".length());
                String partner = isA ? loraBKey(module) : loraAKey(module);
                if (!tensors.containsKey(partner)) {
                    throw new AdapterException(file + ": tensor " + key + " has no partner " + partner);
                }
                long rank = shape.length == 2 ? (isA ? shape[0] : shape[1]) : -1;
                if (rank != s.r()) {
                    throw new AdapterException(file + ": tensor " + key + " has shape " + Arrays.toString(shape)
                            + ", but adapter_config.json has r = " + s.r() + " (expected "
                            + (isA ? "[r, in]" : "[out, r]") + ")");
                }
                if (!s.targets(module)) {
                    throw new AdapterException(file + ": tensor " + key + " is for module " + module
                            + ", which target_modules " + s.peftTargetModules() + " does not name");
                }
            } else if (key.endsWith(".weight")) {
                String module = key.substring(PREFIX.length(), key.length() - ".weight".length());
                if (!s.saves(module)) {
                    throw new AdapterException(file + ": tensor " + key + " is neither a LoRA weight nor one of"
                            + " modules_to_save " + s.modulesToSave());
                }
            } else {
                throw new AdapterException(file + ": unexpected tensor " + key + " (expected *.lora_A.weight,"
                        + " *.lora_B.weight or modules_to_save weights; LoRA biases are not supported)");
            }
        }
    }

    /** Reads adapter_config.json's fields, refusing what jtune cannot reproduce. */
    private static final class ConfigReader {
        private final Path file;
        private final JsonNode root;

        ConfigReader(Path file) {
            this.file = file;
            try {
                root = JSON.readTree(Files.readString(file));
            } catch (JacksonException e) {
                throw new AdapterException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
            } catch (IOException e) {
                throw new AdapterException(file + ": cannot read: " + e.getMessage(), e);
            }
            if (root == null || !root.isObject()) {
                throw new AdapterException(file + ": expected a JSON object");
            }
        }

        LoraSettings settings() {
            String type = optionalString("peft_type");
            if (!"LORA".equals(type)) {
                throw new AdapterException(file + ": peft_type is " + type + "; only LORA adapters are supported");
            }
            String task = optionalString("task_type");
            if (task != null && !task.equals("CAUSAL_LM")) {
                throw new AdapterException(file + ": task_type is " + task + "; expected CAUSAL_LM");
            }
            requireAbsentOr("use_dora", false, "DoRA");
            requireAbsentOr("fan_in_fan_out", false, "fan_in_fan_out (Conv1D weights)");
            requireAbsentOr("lora_bias", false, "LoRA biases");
            requireAbsentOr("use_qalora", false, "QALoRA");
            if (root.hasNonNull("bias") && !root.get("bias").asText().equals("none")) {
                throw unsupported("bias", "trained biases");
            }
            for (String key : List.of("rank_pattern", "alpha_pattern")) {
                if (root.hasNonNull(key) && !root.get(key).isEmpty()) {
                    throw unsupported(key, "per-module ranks and alphas");
                }
            }
            for (String key : List.of("layers_to_transform", "layer_replication", "trainable_token_indices",
                    "target_parameters", "exclude_modules")) {
                JsonNode v = root.get(key);
                if (v != null && !v.isNull() && !(v.isArray() && v.isEmpty())) {
                    throw unsupported(key, key);
                }
            }
            int r = (int) integral("r");
            int alpha = (int) integral("lora_alpha");
            double dropout = root.hasNonNull("lora_dropout") ? number("lora_dropout") : 0.0;
            JsonNode targets = root.get("target_modules");
            boolean rslora = root.hasNonNull("use_rslora") && root.get("use_rslora").asBoolean();
            if (targets != null && targets.isTextual()) {
                try {
                    return new LoraSettings(LoraSettings.Adapter.LORA, r, alpha, dropout, List.of(), rslora,
                            strings(root.get("modules_to_save"), "modules_to_save"), false,
                            java.util.Optional.of(targets.asText()));
                } catch (IllegalArgumentException e) {
                    throw new AdapterException(file + ": target_modules: " + e.getMessage(), e);
                }
            }
            if (targets == null || !targets.isArray() || targets.isEmpty()) {
                throw new AdapterException(file + ": target_modules must be a regular expression or a non-empty list"
                        + " of module names");
            }
            try {
                return new LoraSettings(LoraSettings.Adapter.LORA, r, alpha, dropout, strings(targets, "target_modules"),
                        rslora, strings(root.get("modules_to_save"), "modules_to_save"));
            } catch (IllegalArgumentException e) {
                throw new AdapterException(file + ": " + e.getMessage(), e);
            }
        }

        private List<String> strings(JsonNode node, String key) {
            List<String> out = new ArrayList<>();
            if (node == null || node.isNull()) {
                return out;
            }
            if (!node.isArray()) {
                throw new AdapterException(file + ": " + key + " must be a list of strings");
            }
            for (JsonNode n : node) {
                if (!n.isTextual()) {
                    throw new AdapterException(file + ": " + key + " must be a list of strings, has " + n);
                }
                out.add(n.asText());
            }
            return out;
        }

        String optionalString(String key) {
            JsonNode v = root.get(key);
            if (v == null || v.isNull()) {
                return null;
            }
            if (!v.isTextual()) {
                throw new AdapterException(file + ": " + key + " must be a string, got " + v);
            }
            return v.asText();
        }

        private double number(String key) {
            JsonNode v = root.get(key);
            if (v == null || !v.isNumber()) {
                throw new AdapterException(file + ": " + key + " must be a number, got " + v);
            }
            return v.asDouble();
        }

        private long integral(String key) {
            if (!root.has(key)) {
                throw new AdapterException(file + ": missing " + key);
            }
            double d = number(key);
            if (d != Math.rint(d) || d <= 0 || d > Integer.MAX_VALUE) {
                throw new AdapterException(file + ": " + key + " must be a positive whole number, got "
                        + root.get(key));
            }
            return (long) d;
        }

        private void requireAbsentOr(String key, boolean expected, String what) {
            JsonNode v = root.get(key);
            if (v != null && !v.isNull() && v.asBoolean() != expected) {
                throw unsupported(key, what);
            }
        }

        private AdapterException unsupported(String key, String what) {
            return new AdapterException(file + ": " + key + " = " + root.get(key) + ": " + what
                    + " is not supported by jtune");
        }
    }
}
