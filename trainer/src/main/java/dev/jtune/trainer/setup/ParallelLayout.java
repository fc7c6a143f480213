package dev.jtune.trainer.setup;

import dev.jtune.data.config.ConfigProblems;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.config.TrainerSettings;
import java.util.List;
import java.util.OptionalInt;

/**
 * Axolotl's parallelism degrees ({@code tensor_parallel_size}, {@code context_parallel_size} or its old name
 * {@code sequence_parallel_degree}, {@code dp_shard_size}, {@code dp_replicate_size}) mapped onto jtune's processes.
 *
 * <p>Tensor and context parallelism split one micro-batch's work across devices: the ranks of a TP×CP group share
 * the same rows and together compute what one device would (up to summation order). jtune computes a group's work
 * in one process, so a run of N jtune processes stands for Axolotl's run on N × tp × cp devices: the N processes are
 * its data-parallel ranks (dp_replicate × dp_shard), each takes its own micro-batches, and the global batch is
 * micro_batch_size × gradient_accumulation_steps × N — Axolotl's {@code batch_size × world_size / (cp × tp)}
 * ({@code normalize_config}). dp_shard is jtune's FSDP sharding; replicas hold whole copies. jtune shards over all N
 * ranks (no hybrid sharding): where parameters live, not what the update is.
 *
 * <p>Which process counts a config runs on is Axolotl's own rule ({@link #resolve}): its
 * {@code _get_parallel_config_kwargs} (utils/distributed.py at {@code AxolotlKeys.COMMIT}) over the world N × tp × cp,
 * then accelerate's check that dp_replicate × dp_shard × tp × cp equals the world. That rule also fills an unset
 * dp_shard_size with what is left of the world (or dp_replicate_size, when dp_shard_size is set and the world is
 * larger), and drops a dp_shard_size the world has no room for; jtune does the same, so its global batch is the one
 * Axolotl's run on N × tp × cp devices has. ParallelLayoutTest checks the rule against Axolotl's function itself.
 *
 * @param tensor tensor_parallel_size (1 when unset)
 * @param context context_parallel_size, else sequence_parallel_degree (1 when unset)
 * @param dpShard dp_shard_size as written; unset: derived
 * @param dpReplicate dp_replicate_size as written; unset: derived
 */
public record ParallelLayout(int tensor, int context, OptionalInt dpShard, OptionalInt dpReplicate) {
    /** The keys, in the order a message names them. */
    public static final List<String> KEYS = List.of("dp_shard_size", "dp_replicate_size", "tensor_parallel_size",
            "context_parallel_size", "sequence_parallel_degree");

    /**
     * The data-parallel ranks Axolotl's run builds for a world.
     *
     * @param dpReplicate replicas (whole copies of the model)
     * @param dpShard ranks one copy is sharded over (FSDP)
     */
    public record DataParallel(int dpReplicate, int dpShard) {
        /** The data-parallel ranks: jtune's processes. */
        public int ranks() {
            return dpReplicate * dpShard;
        }
    }

    /** The degrees the config declares. */
    public static ParallelLayout of(TrainerSettings s) {
        int tp = degree(s, "tensor_parallel_size").orElse(1);
        int cp = degree(s, "context_parallel_size").orElse(degree(s, "sequence_parallel_degree").orElse(1));
        return new ParallelLayout(tp, cp, degree(s, "dp_shard_size"), degree(s, "dp_replicate_size"));
    }

    private static OptionalInt degree(TrainerSettings s, String key) {
        var v = s.integer(key);
        if (v.isEmpty()) return OptionalInt.empty();
        if (v.getAsLong() < 1 || v.getAsLong() > 1 << 20) {
            throw new IllegalArgumentException(key + " must be a whole number of at least 1, got " + v.getAsLong());
        }
        return OptionalInt.of((int) v.getAsLong());
    }

    /** Whether the config asks for any parallelism beyond jtune's plain data parallel. */
    public boolean declared() {
        return tensor > 1 || context > 1 || dpShard.isPresent() || dpReplicate.isPresent();
    }

    /** Devices of one tensor/context-parallel group: what one jtune process computes. */
    public int group() {
        return tensor * context;
    }

    /**
     * Axolotl's data-parallel layout for {@code processes} jtune processes (Axolotl's world: processes × tp × cp).
     *
     * @param fsdp whether the config has {@code fsdp}/{@code fsdp_config} (Axolotl's {@code is_fsdp})
     * @throws IllegalArgumentException where Axolotl stops, with its message and the process count that fits
     */
    public DataParallel resolve(int processes, boolean fsdp) {
        int world = Math.multiplyExact(processes, group());
        // Axolotl's _get_parallel_config_kwargs, line by line (0: the key is not in its kwargs).
        int remaining = world;
        int tpSize = 0;
        int cpSize = 0;
        int shard = 0;
        int replicate = 0;
        if (tensor > 1) {
            tpSize = tensor;
            remaining /= tensor;
        }
        if (context > 1) {
            cpSize = context;
            remaining /= context;
        }
        int declaredReplicate = dpReplicate.orElse(0);
        if (dpShard.isEmpty() && declaredReplicate <= 1 && remaining > 1) {
            shard = remaining;
            remaining = 1;
        }
        if (declaredReplicate > 1) {
            replicate = declaredReplicate;
            remaining /= declaredReplicate;
        }
        int declaredShard = dpShard.orElse(0);
        if (remaining > 1 && declaredShard > 1) {
            if (!fsdp) {
                throw stop("dp_shard_size was configured without a corresponding fsdp_config! Please ensure you have"
                        + " configured FSDP using fsdp_config.", processes, "add fsdp_config (jtune shards with FSDP"
                        + " full_shard over the data-parallel ranks) or remove dp_shard_size");
            }
            shard = declaredShard;
            remaining /= declaredShard;
            if (remaining > 1 && replicate == 0) {
                replicate = remaining;
                remaining = 1;
            }
        }
        if (remaining > 1 && shard == 0 && fsdp) {
            shard = remaining;
            remaining = 1;
        }
        if (remaining > 1) {
            throw stop("The configured parallelisms are incompatible with the current world size (" + world + ")!",
                    processes, null);
        }
        boolean any = tpSize + cpSize + shard + replicate > 0;
        int total = Math.max(replicate, 1) * Math.max(shard, 1) * Math.max(tpSize, 1) * Math.max(cpSize, 1);
        if (any && total != world) { // accelerate's ParallelismConfig._validate_accelerator, as Axolotl patches it
            throw stop("ParallelismConfig total_size (" + total + ") does not match num_processes (" + world + ")."
                    + " Please adjust dp_replicate_size/ dp_shard_size/tp_size/cp_size/sp_size/ep_size.", processes,
                    null);
        }
        // Without a ParallelismConfig (nothing set, or a world of one): plain data parallel over every rank.
        return any ? new DataParallel(Math.max(replicate, 1), Math.max(shard, 1)) : new DataParallel(1, processes);
    }

    private IllegalArgumentException stop(String axolotl, int processes, String instead) {
        String fits = instead != null ? instead : "start as many processes as data-parallel ranks"
                + fitting().map(n -> ": ./launch.sh --nproc-per-node " + n).orElse("");
        return new IllegalArgumentException(describe() + ": this run has " + processes + " process"
                + (processes == 1 ? "" : "es") + ", which stands for Axolotl's world of " + processes * group()
                + " device" + (processes * group() == 1 ? "" : "s") + " (" + processes + " × " + groupWords()
                + "), where Axolotl stops: '" + axolotl + "'; " + fits + " (jtune computes each tensor/context-parallel"
                + " group's share in one process)");
    }

    /** The process count the declared data-parallel degrees ask for, when they say it. */
    java.util.Optional<Integer> fitting() {
        if (dpShard.isEmpty() && dpReplicate.isEmpty()) return java.util.Optional.empty();
        return java.util.Optional.of(dpShard.orElse(1) * dpReplicate.orElse(1));
    }

    private String groupWords() {
        return "tensor_parallel_size " + tensor + " × context_parallel_size " + context;
    }

    private String describe() {
        var parts = new java.util.ArrayList<String>();
        dpShard.ifPresent(n -> parts.add("dp_shard_size " + n));
        dpReplicate.ifPresent(n -> parts.add("dp_replicate_size " + n));
        if (tensor > 1) parts.add("tensor_parallel_size " + tensor);
        if (context > 1) parts.add("context_parallel_size " + context);
        return String.join(", ", parts);
    }

    /** The key a problem of the layout is reported at: the first degree the config sets. */
    public static String keyOf(TrainerSettings s) {
        return KEYS.stream().filter(s::has).findFirst().orElse("dp_shard_size");
    }

    /**
     * The info line of a run with declared degrees: Axolotl's world, the data-parallel ranks, the global batch.
     */
    public String note(DataParallel dp, int microBatchSize, int gradientAccumulationSteps) {
        int processes = dp.ranks();
        return "info: parallelism: " + processes + " process" + (processes == 1 ? "" : "es") + " = Axolotl's"
                + " data-parallel ranks (dp_replicate " + dp.dpReplicate() + " × dp_shard " + dp.dpShard() + ") of its"
                + " world of " + processes * group() + " (× tensor_parallel_size " + tensor + " × context_parallel_size "
                + context + ", whose shares of a micro-batch each process computes whole); global batch "
                + microBatchSize + " × " + gradientAccumulationSteps + " × " + processes + " = "
                + (long) microBatchSize * gradientAccumulationSteps * processes + " micro-batch rows per step, as Axolotl's";
    }

    /**
     * What Axolotl's validators refuse whatever the world (schemas/validation.py): context parallelism with packed
     * micro-batches of more than one row or without flash attention, tensor parallelism with bitsandbytes' 8-bit
     * optimizers. Each goes to {@code problems} at its key, in Axolotl's words.
     */
    public static void check(TrainConfig config, ConfigProblems problems) {
        TrainerSettings s = config.trainer();
        ParallelLayout layout;
        try {
            layout = of(s);
        } catch (IllegalArgumentException e) {
            problems.add(keyOf(s), e.getMessage());
            return;
        }
        String cpKey = s.has("context_parallel_size") ? "context_parallel_size" : "sequence_parallel_degree";
        if (layout.context() > 1) {
            if (config.samplePacking() && s.integer("micro_batch_size").orElse(1) > 1) {
                problems.add(cpKey, cpKey + " " + layout.context() + " with sample_packing and micro_batch_size "
                        + s.integer("micro_batch_size").getAsLong() + " is refused, as Axolotl does: 'micro_batch_size"
                        + " must be set to 1 when sample_packing is enabled due to a `ring-flash-attn` requirement'");
            }
            if (!flashAttention(config)) {
                problems.add(cpKey, cpKey + " " + layout.context() + " is refused without flash attention, as Axolotl"
                        + " does: 'context_parallel_size > 1 requires flash attention (attn_implementation:"
                        + " flash_attention_2 or flash_attention_3)' (jtune's attention gives the same numbers"
                        + " either way; set attn_implementation: flash_attention_2)");
            }
        }
        String optimizer = s.string("optimizer").orElse("");
        if (layout.tensor() > 1 && List.of("paged_adamw_8bit", "adamw_8bit", "adamw_bnb_8bit").contains(optimizer)) {
            problems.add("tensor_parallel_size", "tensor_parallel_size " + layout.tensor() + " with optimizer: "
                    + optimizer + " is refused, as Axolotl does: 'tensor_parallel_size is not supported with"
                    + " paged_adamw_8bit, adamw_8bit, and adamw_bnb_8bit optimizers'");
        }
    }

    /**
     * Axolotl's {@code attn_uses_flash_lib} (schemas/enums.py {@code ATTN_IMPLS_USING_FLASH_LIB}), the old
     * {@code flash_attention: true} counting as flash_attention_2 as Axolotl maps it.
     */
    private static boolean flashAttention(TrainConfig config) {
        if (config.trainer().bool("flash_attention").orElse(false)) return true;
        return config.notes().stream().filter(n -> n.key().equals("attn_implementation"))
                .anyMatch(n -> List.of("flash_attention_2", "flash_attention_3", "kernels-community/flash-attn2",
                        "kernels-community/flash-attn3").contains(n.value()));
    }
}
