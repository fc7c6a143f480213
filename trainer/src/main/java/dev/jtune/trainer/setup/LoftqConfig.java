package dev.jtune.trainer.setup;

import dev.jtune.data.config.TrainerSettings;
import java.util.Map;
import java.util.Optional;

/**
 * Axolotl's {@code peft: {loftq_config: {loftq_bits: N}}} (utils/schemas/peft.py; loaders/adapter.py passes
 * {@code LoftQConfig(loftq_bits=N)} and {@code init_lora_weights="loftq"} to PEFT, whose {@code loftq_iter} stays 1):
 * lora's {@link dev.jtune.lora.Loftq} on a fresh adapter.
 *
 * @param bits {@code loftq_bits} (4: the only one ported)
 */
public record LoftqConfig(int bits) {
    /** PEFT's {@code loftq_iter}: Axolotl does not expose it (its schema line is commented out). */
    public static final int ITERATIONS = 1;

    /** The LoftQ asked for, or empty (no {@code peft}, or {@code loftq_bits} unset or 0: Axolotl's falsy test). */
    public static Optional<LoftqConfig> from(TrainerSettings s) {
        Map<String, Object> peft = s.mapping("peft");
        if (!(peft.get("loftq_config") instanceof Map<?, ?> loftq) || !(loftq.get("loftq_bits") instanceof Number n)
                || n.intValue() == 0) {
            return Optional.empty();
        }
        return Optional.of(new LoftqConfig(n.intValue()));
    }

    /** What jtune refuses with LoftQ, as {key, message}, or empty. */
    public static Optional<String[]> refusal(TrainerSettings s) {
        if (from(s).isEmpty()) {
            return Optional.empty();
        }
        String adapter = s.string("adapter").orElse("");
        if (!adapter.equals("lora") || s.bool("load_in_4bit").orElse(false) || s.bool("load_in_8bit").orElse(false)) {
            return Optional.of(new String[] {"peft", "peft.loftq_config needs adapter: lora over a 16/32-bit base:"
                    + " PEFT's LoftQ quantizes the full-precision weight itself (Axolotl's loftq example: adapter: lora,"
                    + " no load_in_4bit/load_in_8bit)"});
        }
        if (s.has("lora_model_dir")) {
            return Optional.of(new String[] {"peft", "peft.loftq_config with lora_model_dir is not supported: a saved"
                    + " adapter is continued as saved, LoftQ initialises new ones"});
        }
        if (s.has("fsdp") || s.has("fsdp_config") || s.has("deepspeed")) {
            return Optional.of(new String[] {"peft", "peft.loftq_config with sharded training (fsdp, deepspeed) is not"
                    + " supported: LoftQ rewrites each whole base weight before training"});
        }
        return Optional.empty();
    }
}
