package dev.jtune.trainer.train;

import dev.jtune.data.config.Suggest;
import dev.jtune.data.config.TrainerSettings;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Reads Axolotl's FSDP keys: {@code fsdp: [full_shard, auto_wrap]} (transformers' option list) and/or
 * {@code fsdp_config:} (keys with or without the {@code fsdp_} prefix, FSDP1 and FSDP2 spellings).
 *
 * <p>jtune implements one strategy, {@code FULL_SHARD} with {@code reshard_after_forward: true}, wrapped per
 * decoder layer: accepted are {@code sharding_strategy: FULL_SHARD}, {@code reshard_after_forward: true},
 * {@code offload_params} (true is an equivalent: where the shards live, not their values), {@code auto_wrap_policy: TRANSFORMER_BASED_WRAP},
 * {@code transformer_layer_cls_to_wrap: *DecoderLayer}, {@code state_dict_type: FULL_STATE_DICT |
 * SHARDED_STATE_DICT} (checkpoints always hold the full state), {@code version: 1 | 2},
 * {@code activation_checkpointing} (FSDP always recomputes layers); {@code sync_module_states},
 * {@code use_orig_params}, {@code cpu_ram_efficient_loading}, {@code limit_all_gathers},
 * {@code backward_prefetch}, {@code forward_prefetch} are accepted and have no effect. Anything else is an
 * error naming the key and what is supported.
 */
final class Fsdp {
    private static final Set<String> IGNORED = Set.of("sync_module_states", "use_orig_params",
            "cpu_ram_efficient_loading", "limit_all_gathers", "backward_prefetch", "forward_prefetch");
    private static final List<String> KNOWN = List.of("sharding_strategy", "reshard_after_forward", "offload_params",
            "cpu_offload", "auto_wrap_policy", "transformer_layer_cls_to_wrap", "state_dict_type", "version",
            "activation_checkpointing", "sync_module_states", "use_orig_params", "cpu_ram_efficient_loading",
            "limit_all_gathers", "backward_prefetch", "forward_prefetch");

    private Fsdp() {}

    /**
     * Whether the settings ask for FSDP.
     *
     * @throws IllegalArgumentException naming the key for an option jtune does not implement
     */
    static boolean enabled(TrainerSettings s) {
        return scan(s, problem -> {
            throw problem;
        });
    }

    /** Reports every FSDP option jtune does not implement, each at its key ({@code fsdp}, {@code fsdp_config.KEY}). */
    static void check(TrainerSettings s, dev.jtune.data.config.ConfigProblems problems) {
        scan(s, problem -> problems.add("fsdp", problem.getMessage()));
    }

    /** Whether the settings ask for FSDP; each unsupported option goes to {@code problem}. */
    private static boolean scan(TrainerSettings s, java.util.function.Consumer<IllegalArgumentException> problem) {
        boolean on = false;
        for (String opt : s.strings("fsdp")) {
            for (String o : opt.strip().split("\\s+")) {
                switch (o.toLowerCase(Locale.ROOT)) {
                    case "full_shard" -> on = true;
                    case "auto_wrap", "" -> {}
                    default -> problem.accept(new IllegalArgumentException("fsdp: '" + o + "' is not supported;"
                            + " jtune implements full_shard (with auto_wrap per decoder layer)"));
                }
            }
        }
        if (!s.has("fsdp_config")) {
            return on;
        }
        Map<String, Object> config = s.mapping("fsdp_config");
        for (var e : config.entrySet()) {
            String key = e.getKey().startsWith("fsdp_") ? e.getKey().substring(5) : e.getKey();
            Object v = e.getValue();
            String text = v == null ? "" : v.toString().strip();
            switch (key) {
                case "sharding_strategy" -> {
                    if (!text.equalsIgnoreCase("FULL_SHARD") && !text.equals("1")) {
                        problem.accept(unsupported(e.getKey(), text, "FULL_SHARD"));
                    }
                }
                case "reshard_after_forward" -> {
                    if (!(v instanceof Boolean b && b)) problem.accept(unsupported(e.getKey(), text, "true"));
                }
                case "offload_params", "cpu_offload" -> {
                    // true is an equivalent (config load prints the info line): offloading moves, not changes.
                    if (!(v instanceof Boolean)) problem.accept(unsupported(e.getKey(), text, "true or false"));
                }
                case "auto_wrap_policy" -> {
                    if (!text.equalsIgnoreCase("TRANSFORMER_BASED_WRAP")) {
                        problem.accept(unsupported(e.getKey(), text, "TRANSFORMER_BASED_WRAP"));
                    }
                }
                case "transformer_layer_cls_to_wrap" -> {
                    List<?> names = v instanceof List<?> l ? l : List.of(text);
                    for (Object n : names) {
                        if (!String.valueOf(n).strip().endsWith("DecoderLayer")) {
                            problem.accept(unsupported(e.getKey(), String.valueOf(n), "the decoder layer (LlamaDecoderLayer)"));
                        }
                    }
                }
                case "state_dict_type" -> {
                    if (!text.equalsIgnoreCase("FULL_STATE_DICT") && !text.equalsIgnoreCase("SHARDED_STATE_DICT")) {
                        problem.accept(unsupported(e.getKey(), text, "FULL_STATE_DICT or SHARDED_STATE_DICT"));
                    }
                }
                case "version" -> {
                    if (!text.equals("1") && !text.equals("2")) problem.accept(unsupported(e.getKey(), text, "1 or 2"));
                }
                case "activation_checkpointing" -> {
                    if (!(v instanceof Boolean)) problem.accept(unsupported(e.getKey(), text, "true or false"));
                }
                default -> {
                    if (!IGNORED.contains(key)) {
                        problem.accept(new IllegalArgumentException("fsdp_config." + e.getKey() + ": unknown key"
                                + Suggest.didYouMean(key, KNOWN) + "; supported: " + KNOWN));
                    }
                }
            }
        }
        return true;
    }

    private static IllegalArgumentException unsupported(String key, String value, String expected) {
        return new IllegalArgumentException("fsdp_config." + key + ": '" + value + "' is not supported; jtune "
                + "implements " + expected);
    }
}
