package dev.jtune.trainer.setup;

import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.config.TrainerSettings;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Axolotl's {@code fp8: true} (067b021): torchao's Float8Linear on the linears accelerate converts, run by
 * {@link dev.jtune.quant.Fp8}. jtune trains full weights in fp8 (Axolotl's examples do: {@code 3b-fp8-fsdp2.yaml});
 * with an adapter accelerate would convert PEFT's base and LoRA linears alike, which jtune does not do, and qat's
 * fake quantization would compete for the same projections: both refused.
 *
 * @param allGather {@code fp8_enable_fsdp_float8_all_gather}: the same numerics here (see AxolotlKeys)
 */
public record Fp8Settings(boolean allGather) {

    /** The settings, or empty without {@code fp8: true}; throws on the first problems (ConfigChecks lists them). */
    public static Optional<Fp8Settings> from(TrainConfig config) {
        List<KeyProblem> problems = new ArrayList<>();
        return KeyProblem.orThrow(config, problems, read(config, problems));
    }

    /** Every problem of the fp8 keys, for ConfigChecks. */
    public static List<KeyProblem> problems(TrainConfig config) {
        List<KeyProblem> problems = new ArrayList<>();
        read(config, problems);
        return problems;
    }

    private static Optional<Fp8Settings> read(TrainConfig config, List<KeyProblem> problems) {
        TrainerSettings s = config.trainer();
        boolean allGather = s.bool("fp8_enable_fsdp_float8_all_gather").orElse(false);
        if (!s.bool("fp8").orElse(false)) {
            return Optional.empty();
        }
        if (s.has("adapter")) {
            problems.add(new KeyProblem("fp8", "fp8: true with adapter: " + s.string("adapter").orElse("") + " is not"
                    + " implemented: jtune runs torchao's Float8Linear on the dense weights of full fine-tuning"
                    + " (accelerate would convert PEFT's frozen base and its LoRA linears too); remove the adapter"
                    + " or fp8"));
        }
        if (!s.mapping("qat").isEmpty()) {
            problems.add(new KeyProblem("fp8", "fp8: true with qat: both replace the projections' products (torchao's"
                    + " Float8Linear, its FakeQuantizedLinear); jtune runs one of them, remove the other"));
        }
        return Optional.of(new Fp8Settings(allGather));
    }

    /** The log line naming what runs. */
    public String describe(int converted) {
        return "fp8: torchao's Float8Linear (tensorwise e4m3 input and weight, e5m2 output gradient) emulated on the"
                + " CPU (same casts, GEMMs in fp32: no speed gain) on " + converted + " projections; the model's first"
                + " and last linear and any whose sizes 16 does not divide stay as they are, as accelerate converts"
                + (allGather ? "; fp8_enable_fsdp_float8_all_gather: the same numerics (it changes what FSDP2 sends)"
                : "");
    }
}
