package dev.jtune.trainer.setup;

import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.config.TrainerSettings;
import dev.jtune.quant.QatScheme;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * Axolotl's {@code qat:} block (quantization-aware training), read as Axolotl 067b021 reads it
 * ({@code src/axolotl/utils/schemas/quantization.py} {@code QATConfig}: {@code activation_dtype} default none,
 * {@code weight_dtype} default int8, {@code group_size} default 32, {@code quantize_embedding} default false,
 * {@code fake_quant_after_n_steps} default none) and mapped the way {@code utils/quantization.py}
 * {@code get_quantization_config} / {@code _make_qat_config} map it onto torchao's fake quantizers. jtune runs the
 * pairs Axolotl's examples train with: int8 activations with int4 weights, MXFP4 with MXFP4, and NVFP4 with NVFP4 —
 * the last as torchao's own NVFP4 QAT defines it ({@code NVFP4FakeQuantizedLinear}), since Axolotl 067b021's
 * {@code QATConfig(NVFP4WeightOnlyConfig())} is rejected by its torchao; each other value is refused with what Axolotl
 * would do there.
 *
 * @param scheme what each projection fake-quantizes
 * @param afterSteps {@code fake_quant_after_n_steps}: fake quantization off from step 0 and on again from this step
 *     (Axolotl's {@code QATCallback.on_step_begin}); empty: on throughout
 */
public record QatSettings(QatScheme scheme, OptionalLong afterSteps) {
    /** The sub-keys of Axolotl's QATConfig. */
    static final List<String> KEYS = List.of("activation_dtype", "weight_dtype", "quantize_embedding", "group_size",
            "fake_quant_after_n_steps");
    /** The dtype names validate_ao_dtype accepts, and the TorchAOQuantDType each means. */
    private static final Map<String, String> DTYPES = dtypes();

    private static Map<String, String> dtypes() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("int4", "int4");
        m.put("int8", "int8");
        m.put("float8_e4m3fn", "float8_e4m3fn");
        m.put("fp8", "float8_e4m3fn");
        m.put("float8", "float8_e4m3fn");
        m.put("nvfp4", "nvfp4");
        m.put("mxfp4", "mxfp4");
        return m;
    }

    /**
     * The settings, or empty when {@code qat} is absent or empty.
     *
     * @throws IllegalArgumentException listing every problem (ConfigChecks reports them one by one, with positions)
     */
    public static Optional<QatSettings> from(TrainConfig config) {
        List<KeyProblem> problems = new ArrayList<>();
        return KeyProblem.orThrow(config, problems, read(config, problems));
    }

    /** Every problem of the {@code qat} block (and its combination with other keys), for ConfigChecks. */
    public static List<KeyProblem> problems(TrainConfig config) {
        List<KeyProblem> problems = new ArrayList<>();
        read(config, problems);
        return problems;
    }

    private static Optional<QatSettings> read(TrainConfig config, List<KeyProblem> problems) {
        TrainerSettings s = config.trainer();
        Map<String, Object> qat = s.mapping("qat");
        if (qat.isEmpty()) {
            return Optional.empty();
        }
        int before = problems.size();
        for (String key : qat.keySet()) {
            if (!KEYS.contains(key)) {
                problems.add(new KeyProblem("qat." + key, "qat." + key + " is not a key of Axolotl's QATConfig; its keys: "
                        + String.join(", ", KEYS) + dev.jtune.data.config.Suggest.didYouMean(key, KEYS)));
            }
        }
        // Axolotl's check_qat_config (schemas/config.py): these pairs stop there before training (its third, qat with
        // peft:, needs no check here: jtune refuses the peft key itself).
        if (s.bool("load_in_8bit").orElse(false)) {
            problems.add(new KeyProblem("qat", "qat with load_in_8bit: true: Axolotl refuses it (\"QAT and load_in_8bit"
                    + " cannot be used together.\")"));
        }
        if (s.bool("load_in_4bit").orElse(false)) {
            problems.add(new KeyProblem("qat", "qat with load_in_4bit: true: Axolotl refuses it (\"QAT and load_in_4bit"
                    + " cannot be used together.\")"));
        }
        if (s.has("adapter")) {
            problems.add(new KeyProblem("qat", "qat with adapter: " + s.string("adapter").orElse("") + " is not"
                    + " implemented: jtune fake-quantizes the dense weights of full fine-tuning (Axolotl would"
                    + " fake-quantize the frozen base under PEFT's LoRA layers); remove the adapter or qat"));
        }
        String weight = dtype(qat, "weight_dtype", "int8", problems);
        String activation = dtype(qat, "activation_dtype", null, problems);
        Object groupValue = qat.containsKey("group_size") ? qat.get("group_size") : 32L;
        int group = 32;
        if (!(groupValue instanceof Long g) || g <= 0 || g > Integer.MAX_VALUE) {
            problems.add(new KeyProblem("qat.group_size", "qat.group_size must be a positive integer, got " + groupValue
                    + (groupValue == null ? " (an explicit null: Axolotl then takes torchao's own default, 128 for"
                    + " int4; write the number)" : "")));
        } else {
            group = Math.toIntExact(g);
        }
        Object embedding = qat.get("quantize_embedding");
        if (embedding != null && !(embedding instanceof Boolean)) {
            problems.add(new KeyProblem("qat.quantize_embedding", "qat.quantize_embedding must be true or false, got "
                    + embedding));
        } else if (Boolean.TRUE.equals(embedding)) {
            problems.add(new KeyProblem("qat.quantize_embedding", "qat.quantize_embedding: true is not implemented:"
                    + " for int4 weights Axolotl fake-quantizes the embedding with torchao's Int4WeightFakeQuantizeConfig"
                    + " for fp8 activations (rows quantized to float8 e4m3, then int4), which jtune does not run, and"
                    + " for mxfp4 torchao stops (\"Activation fake quantization is not supported for embedding\");"
                    + " leave it false (the default: the embedding lookup stays exact, lm_head is fake-quantized like"
                    + " every linear)"));
        }
        OptionalLong after = OptionalLong.empty();
        Object n = qat.get("fake_quant_after_n_steps");
        if (n != null) {
            if (!(n instanceof Long steps) || steps < 0) {
                problems.add(new KeyProblem("qat.fake_quant_after_n_steps", "qat.fake_quant_after_n_steps must be a"
                        + " step count (a non-negative integer), got " + n));
            } else if (steps == 0) {
                problems.add(new KeyProblem("qat.fake_quant_after_n_steps", "qat.fake_quant_after_n_steps: 0 is refused:"
                        + " Axolotl's QATCallback disables fake quantization at step 0 and re-enables it only at a"
                        + " later step equal to N, so 0 would train without fake quantization at all; leave the key"
                        + " out to fake-quantize from the first step"));
            } else {
                after = OptionalLong.of(steps);
            }
        }
        QatScheme scheme = null;
        if (weight != null && (activation != null || !qat.containsKey("activation_dtype")
                || qat.get("activation_dtype") == null)) {
            scheme = scheme(activation, weight, group, qat.containsKey("group_size"), problems);
        }
        if (scheme != null && (scheme.weight() == QatScheme.Weight.MXFP4 || scheme.weight() == QatScheme.Weight.NVFP4)
                && after.isPresent()) {
            String fmt = scheme.weight() == QatScheme.Weight.MXFP4 ? "mxfp4" : "nvfp4";
            String layer = scheme.weight() == QatScheme.Weight.MXFP4 ? "MXFakeQuantizedLinear" : "NVFP4FakeQuantizedLinear";
            problems.add(new KeyProblem("qat.fake_quant_after_n_steps", "qat.fake_quant_after_n_steps with " + fmt + " is"
                    + " refused: Axolotl's QATCallback toggles torchao's FakeQuantizedLinear and FakeQuantizedEmbedding"
                    + " only, not " + layer + ", so there the key has no effect and " + fmt.toUpperCase(Locale.ROOT)
                    + " fake quantization runs from the first step; leave the key out for that"));
        }
        if (problems.size() > before || scheme == null) {
            return Optional.empty();
        }
        return Optional.of(new QatSettings(scheme, after));
    }

    /** The dtype at {@code key} as validate_ao_dtype reads it, or null (absent, with no default, or a problem). */
    private static String dtype(Map<String, Object> qat, String key, String fallback, List<KeyProblem> problems) {
        Object v = qat.containsKey(key) ? qat.get(key) : fallback;
        if (v == null) {
            return null;
        }
        String mapped = DTYPES.get(String.valueOf(v));
        if (mapped == null) {
            problems.add(new KeyProblem("qat." + key, "qat." + key + ": '" + v + "' is not a dtype Axolotl knows; it"
                    + " accepts " + String.join(", ", DTYPES.keySet())
                    + dev.jtune.data.config.Suggest.didYouMean(String.valueOf(v), List.copyOf(DTYPES.keySet()))));
        }
        return mapped;
    }

    /** get_quantization_config's and _make_qat_config's cases, in their order. */
    private static QatScheme scheme(String activation, String weight, int group, boolean groupGiven,
            List<KeyProblem> problems) {
        String pair = "qat.weight_dtype " + weight + " with qat.activation_dtype "
                + (activation == null ? "unset" : activation);
        String key = "qat.weight_dtype";
        if (activation == null && weight.equals("int8")) {
            problems.add(new KeyProblem(key, "qat.weight_dtype int8 without qat.activation_dtype (Axolotl's default"
                    + " weight_dtype) stops in Axolotl (\"Int8WeightOnlyConfig is not supported by torchao QAT.\");"
                    + " jtune runs activation_dtype: int8 with weight_dtype: int4"));
            return null;
        }
        if ("int8".equals(activation) && weight.equals("int4")) {
            if (group > 0) {
                return new QatScheme(QatScheme.Activation.INT8, QatScheme.Weight.INT4, group);
            }
            return null;
        }
        if (weight.equals("mxfp4") && (activation == null || activation.equals("mxfp4"))) {
            // _make_qat_config: MXFakeQuantizeConfig(float4_e2m1fn_x2, block_size) for activations and weights alike.
            if (group != QatScheme.MX_BLOCK) {
                problems.add(new KeyProblem("qat.group_size", "qat.group_size " + group + " with qat.weight_dtype mxfp4 is"
                        + " refused, as Axolotl refuses it (\"MXFP4 quantization must use a block_size (group_size) of"
                        + " 32\")"));
                return null;
            }
            return new QatScheme(QatScheme.Activation.MXFP4, QatScheme.Weight.MXFP4, group);
        }
        if (weight.equals("nvfp4") && "nvfp4".equals(activation)) {
            // Axolotl 067b021 builds QATConfig(NVFP4WeightOnlyConfig()), which torchao rejects (see below); what torchao's
            // QAT defines for NVFP4 is QATConfig(NVFP4DynamicActivationNVFP4WeightConfig()): NVFP4FakeQuantizedLinear
            // with per-tensor scales, activations and weights. get_quantization_config's group_size check stays.
            if (group != QatScheme.NV_BLOCK) {
                problems.add(new KeyProblem("qat.group_size", "qat.group_size " + group + " with qat.weight_dtype nvfp4 is"
                        + " refused, as Axolotl refuses it (\"NVFP4 quantization must use a group_size of 16\")"
                        + (groupGiven ? "" : "; Axolotl's default group_size is 32, so write"
                        + " group_size: 16")));
                return null;
            }
            return new QatScheme(QatScheme.Activation.NVFP4, QatScheme.Weight.NVFP4, group);
        }
        String why;
        if (weight.equals("mxfp4")) {
            why = "Axolotl builds MXFakeQuantizedLinear for weight_dtype mxfp4, which fake-quantizes the activations to"
                    + " MXFP4 whatever activation_dtype says; write activation_dtype: mxfp4 (or leave it out) for that";
        } else if (weight.equals("nvfp4")) {
            why = "torchao's NVFP4 QAT (NVFP4FakeQuantizedLinear) has no weight-only or mixed form (\"Weight only NVFP4"
                    + " QAT not supported yet\"), and Axolotl 067b021 builds QATConfig(NVFP4WeightOnlyConfig()), which"
                    + " torchao (0.17.0, its pin, and 0.18.0) rejects before training (\"Unexpected base config\");"
                    + " write activation_dtype: nvfp4 with weight_dtype: nvfp4 and group_size: 16 for NVFP4";
        } else if (activation == null && weight.equals("int4")) {
            why = "weight-only int4 is torchao's Int4WeightFakeQuantizeConfig for fp8 activations (each weight row"
                    + " quantized to float8 e4m3 first, then to int4), which jtune does not run";
        } else if ("int4".equals(activation) && weight.equals("int4")) {
            why = "Axolotl stops there (\"Int4DynamicActivationInt4WeightConfig is not supported by torchao QAT.\")";
        } else if ("int8".equals(activation) && weight.equals("int8")) {
            why = "Axolotl stops there (\"Int8DynamicActivationInt8WeightConfig is not supported by torchao QAT.\")";
        } else if (weight.equals("float8_e4m3fn") || "float8_e4m3fn".equals(activation)) {
            why = "torchao's float8 fake quantization (Float8FakeQuantizeConfig) is not implemented in jtune";
        } else {
            why = "Axolotl stops there (\"Invalid activation/weight dtype combination\")";
        }
        problems.add(new KeyProblem(key, pair + " is refused: " + why + ". jtune runs activation_dtype: int8"
                + " with weight_dtype: int4 (any group_size dividing the projections' input features), mxfp4 with mxfp4"
                + " (group_size 32) and nvfp4 with nvfp4 (group_size 16)"));
        return null;
    }

    /**
     * Where {@code group_size} does not divide a projection's input features in this model: torchao's int4 weight
     * quantizer views each weight row as groups ({@code view(out, -1, group_size)}) and fails there.
     */
    public static List<String> groupProblems(QatScheme scheme, dev.jtune.model.llama.LlamaConfig model) {
        java.util.Set<Long> widths = new java.util.TreeSet<>(List.of((long) model.hiddenSize(),
                (long) model.numAttentionHeads() * model.headDim(), (long) model.intermediateSize()));
        List<String> out = new ArrayList<>();
        for (long in : widths) {
            if (in % scheme.groupSize() != 0) {
                out.add("qat.group_size " + scheme.groupSize() + " does not divide " + in + ", the input features of"
                        + " some of base_model's projections (torchao's per-group view fails there); choose a divisor"
                        + " of " + widths);
                break;
            }
        }
        return out;
    }

    /** The line the trainer prints. */
    public String describe() {
        String how = scheme.weight() == QatScheme.Weight.NVFP4
                ? "torchao's NVFP4FakeQuantizedLinear as QATConfig(NVFP4DynamicActivationNVFP4WeightConfig()) prepares"
                + " it, per-tensor scales on; Axolotl 067b021 builds QATConfig(NVFP4WeightOnlyConfig()) instead, which"
                + " its torchao rejects; projection biases get no gradient, as there"
                : "torchao's FakeQuantizedLinear as Axolotl prepares it";
        return String.format(Locale.ROOT, "qat: fake quantization of every linear layer, lm_head included (%s): %s%s;"
                + " the trained weights are saved unquantized (Axolotl's convert step), quantize them with the same"
                + " scheme afterwards", how, scheme,
                afterSteps.isPresent() ? ", off for the first " + afterSteps.getAsLong() + " steps"
                        + " (fake_quant_after_n_steps)" : "");
    }
}
