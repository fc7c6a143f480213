package dev.jtune.bench;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.data.dataset.Batch;
import dev.jtune.lora.LoraLinear;
import dev.jtune.lora.LoraModel;
import dev.jtune.lora.LoraSettings;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.llama.RandomInit;
import dev.jtune.trainer.dist.DistEnv;
import dev.jtune.trainer.dist.ProcessGroup;
import dev.jtune.trainer.dist.ProcessGroups;
import dev.jtune.trainer.dist.ShardedWeights;
import dev.jtune.trainer.train.BatchPlan;
import dev.jtune.trainer.train.TrainableModel;
import dev.jtune.trainer.train.LoraTrainable;
import dev.jtune.trainer.train.Trainer;
import dev.jtune.trainer.train.TrainerOptions;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Issue 5, part 6: 1 -> 2 process scaling of a LoRA train step, and per-rank memory with and without FSDP.
 *
 * <p>The model, LoRA, optimizer and batches are {@link TrainStepBench}'s (~21.6M-parameter Llama, LoRA r=16 on
 * every projection, fp32, micro-batch 4 x 256 random tokens). Every rank is its own JVM running {@link Trainer#run}
 * with the process group a worker of {@code ./launch.sh} gets: {@link ProcessGroups#forEnvironment} over a TCP
 * store, here served by rank 0 itself (the srun path), then the TCP ring. Each rank takes one micro-batch per step,
 * so a 2-rank step trains twice the tokens of a 1-process step. Throughput is rank 0's per-step timer from
 * {@code metrics.jsonl} (global tokens / step time, including the gradient all-reduce); the first W steps are
 * warm-up. Each child gets libtorch intra-op threads set ({@code Torch.setThreads}, and OMP_NUM_THREADS).
 *
 * <p>Usage: {@code DistBench [--rounds R] [--steps N] [--warmup W] [--skip-memory]}; a child is
 * {@code DistBench child RANK WORLD PORT MODE STEPS WARMUP GC THREADS OUTDIR} with MODE {@code dp} or {@code fsdp}.
 */
public final class DistBench {
    private static final ObjectMapper JSON = new ObjectMapper();

    private DistBench() {}

    /** One configuration: world size, threads per rank, FSDP, gradient checkpointing. */
    record Setup(String name, int world, int threads, boolean fsdp, boolean gc) {}

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("child")) {
            child(Integer.parseInt(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]), args[4],
                    Integer.parseInt(args[5]), Integer.parseInt(args[6]), Boolean.parseBoolean(args[7]),
                    Integer.parseInt(args[8]), Path.of(args[9]));
            return;
        }
        Map<String, String> opt = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--skip-memory")) {
                opt.put("skip-memory", "true");
            } else if (args[i].startsWith("--") && i + 1 < args.length) {
                opt.put(args[i].substring(2), args[++i]);
            } else {
                throw new IllegalArgumentException("unexpected argument " + args[i]);
            }
        }
        int rounds = Integer.parseInt(opt.getOrDefault("rounds", "2"));
        int steps = Integer.parseInt(opt.getOrDefault("steps", "6"));
        int warmup = Integer.parseInt(opt.getOrDefault("warmup", "2"));
        int cores = Runtime.getRuntime().availableProcessors();
        int perRank = Math.max(1, cores / 2);
        System.out.printf(Locale.ROOT, "model: %,d parameters (TrainStepBench's), fp32, LoRA r=16 on q,k,v,o,gate,up,down; "
                + "micro-batch %d x %d per rank per step; %d warm-up + %d timed steps; %d cores; load average now %s%n",
                TrainStepBench.config().parameterCount(), TrainStepBench.BATCH, TrainStepBench.SEQ, warmup, steps, cores,
                TrainStepBench.loadAverage());

        List<Setup> scaling = List.of(new Setup("1 proc x " + cores + " thr", 1, cores, false, false),
                new Setup("1 proc x " + perRank + " thr", 1, perRank, false, false),
                new Setup("2 proc x " + perRank + " thr", 2, perRank, false, false));
        Map<String, List<Double>> tps = new LinkedHashMap<>();
        System.out.printf(Locale.ROOT, "%n%-18s %-6s %12s %14s   %s%n", "setup", "round", "tokens/s", "peak RSS r0",
                "load average (1/5/15 min) after");
        for (int r = 1; r <= rounds; r++) {
            for (Setup s : scaling) {
                List<JsonNode> ranks = run(s, steps, warmup);
                String load = TrainStepBench.loadAverage();
                double t = ranks.get(0).get("tokens_per_s").asDouble();
                tps.computeIfAbsent(s.name(), k -> new ArrayList<>()).add(t);
                System.out.printf(Locale.ROOT, "%-18s %-6d %12.1f %14s   %s%n", s.name(), r, t,
                        mb(ranks.get(0).get("peak_rss_bytes").asLong()), load);
            }
        }
        // Other jobs only ever slow a run down: the best round of each setup is the least disturbed.
        if (rounds > 0) {
            efficiency(scaling, tps);
        }
        if (!opt.containsKey("skip-memory")) {
            memory(Math.max(2, steps / 2), Math.max(1, warmup), perRank);
        }
    }

    private static void efficiency(List<Setup> scaling, Map<String, List<Double>> tps) {
        double best2 = best(tps.get(scaling.get(2).name()));
        System.out.printf(Locale.ROOT, "%nscaling efficiency = tokens/s with 2 processes / (2 x tokens/s with 1), "
                + "best rounds:%n");
        for (Setup one : scaling.subList(0, 2)) {
            double b1 = best(tps.get(one.name()));
            System.out.printf(Locale.ROOT, "  vs %-16s: %.1f / (2 x %.1f) = %.3f   (per round: %s)%n", one.name(), best2,
                    b1, best2 / (2 * b1), perRound(tps.get(scaling.get(2).name()), tps.get(one.name())));
        }
    }

    private static String perRound(List<Double> two, List<Double> one) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < Math.min(two.size(), one.size()); i++) {
            s.append(String.format(Locale.ROOT, "%.3f ", two.get(i) / (2 * one.get(i))));
        }
        return s.toString().trim();
    }

    private static double best(List<Double> v) {
        return v.stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN);
    }

    private static void memory(int steps, int warmup, int threads) throws Exception {
        List<Setup> setups = List.of(new Setup("1 proc", 1, threads, false, false),
                new Setup("1 proc + ckpt", 1, threads, false, true),
                new Setup("DP x2", 2, threads, false, false),
                new Setup("DP x2 + ckpt", 2, threads, false, true),
                new Setup("FSDP x2 (ckpt)", 2, threads, true, true));
        System.out.printf(Locale.ROOT, "%nper-rank memory (MB = 2^20 bytes; %d thread(s) per rank; base = frozen weights "
                + "this rank holds for good; FSDP implies gradient checkpointing)%n", threads);
        System.out.printf(Locale.ROOT, "%-15s %4s %14s %14s %14s %14s %14s %14s %10s   %s%n", "setup", "rank",
                "RSS after load", "peak (process)", "peak (steps)", "layer linears", "other frozen", "base held",
                "tokens/s", "load after");
        for (Setup s : setups) {
            List<JsonNode> ranks = run(s, steps, warmup);
            String load = TrainStepBench.loadAverage();
            for (JsonNode j : ranks) {
                long layer = j.get("layer_linear_bytes").asLong();
                long other = j.get("other_frozen_bytes").asLong();
                System.out.printf(Locale.ROOT, "%-15s %4d %14s %14s %14s %14s %14s %14s %10s   %s%n", s.name(),
                        j.get("rank").asInt(), mb(j.get("rss_after_load_bytes").asLong()),
                        mb(j.get("peak_rss_bytes").asLong()),
                        j.get("step_peak_rss_bytes").asLong() > 0 ? mb(j.get("step_peak_rss_bytes").asLong()) : "n/a",
                        mb(layer), mb(other), mb(layer + other),
                        j.has("tokens_per_s") ? String.format(Locale.ROOT, "%.1f", j.get("tokens_per_s").asDouble()) : "",
                        load);
                if (j.has("fsdp_total_bytes")) {
                    System.out.printf(Locale.ROOT, "%-15s %4d   FSDP: shard %s of %s decoder-layer linears; largest "
                            + "layer %s; peak gathered at once %s%n", "", j.get("rank").asInt(),
                            mb(j.get("fsdp_shard_bytes").asLong()), mb(j.get("fsdp_total_bytes").asLong()),
                            mb(j.get("fsdp_largest_layer_bytes").asLong()), mb(j.get("fsdp_peak_gathered_bytes").asLong()));
                }
            }
        }
    }

    private static String mb(long bytes) {
        return String.format(Locale.ROOT, "%.1f", bytes / 1048576.0);
    }

    // ---------------------------------------------------------------- orchestration

    /** Runs {@code s}: one child JVM per rank, all at once; their JSON results by rank. */
    static List<JsonNode> run(Setup s, int steps, int warmup) throws IOException, InterruptedException {
        int port;
        try (ServerSocket free = new ServerSocket(0)) {
            port = free.getLocalPort();
        }
        Path out = Files.createTempDirectory("jtune-distbench-");
        try {
            String java = ProcessHandle.current().info().command().orElse("java");
            List<Process> procs = new ArrayList<>();
            List<Path> logs = new ArrayList<>();
            for (int rank = 0; rank < s.world(); rank++) {
                List<String> cmd = List.of(java, "-Xss4m", "--enable-native-access=ALL-UNNAMED",
                        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", System.getProperty("java.class.path"),
                        DistBench.class.getName(), "child", Integer.toString(rank), Integer.toString(s.world()),
                        Integer.toString(port), s.fsdp() ? "fsdp" : "dp", Integer.toString(steps),
                        Integer.toString(warmup), Boolean.toString(s.gc()), Integer.toString(s.threads()),
                        out.resolve("run").toString());
                Path log = out.resolve("rank-" + rank + ".log");
                ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
                pb.environment().put("OMP_NUM_THREADS", Integer.toString(s.threads()));
                procs.add(pb.start());
                logs.add(log);
            }
            List<JsonNode> results = new ArrayList<>();
            for (int rank = 0; rank < procs.size(); rank++) {
                int rc = procs.get(rank).waitFor();
                String text = Files.readString(logs.get(rank), StandardCharsets.UTF_8);
                String json = null;
                for (String line : text.split("\n")) {
                    if (line.startsWith("{")) {
                        json = line;
                    }
                }
                if (rc != 0 || json == null) {
                    procs.forEach(Process::destroy);
                    throw new IllegalStateException(s.name() + " rank " + rank + ": exit status " + rc + "\n" + text);
                }
                results.add(JSON.readTree(json));
            }
            return results;
        } finally {
            deleteTree(out);
        }
    }

    // ---------------------------------------------------------------- one rank (child JVM)

    private static void child(int rank, int world, int port, String mode, int steps, int warmup, boolean gc,
            int threads, Path out) throws Exception {
        boolean fsdp = switch (mode) {
            case "dp" -> false;
            case "fsdp" -> true;
            default -> throw new IllegalArgumentException("mode must be dp or fsdp, got " + mode);
        };
        Torch.engine();
        Torch.setThreads(threads);
        LlamaConfig c = TrainStepBench.config();
        LoraSettings settings = new LoraSettings(LoraSettings.Adapter.LORA, 16, 32, 0.0, LoraSettings.LINEAR_MODULES,
                false, List.of());
        int total = warmup + steps;
        try (ProcessGroup group = world == 1 ? ProcessGroup.single()
                : ProcessGroups.forEnvironment(new DistEnv(rank, rank, world, world, "127.0.0.1", port));
                NDManager manager = Torch.newManager()) {
            LlamaModel.LinearFactory dense = LoraModel.dense();
            ShardedWeights shards = fsdp && world > 1 ? new ShardedWeights(group, dense) : null;
            LoraModel lora = LoraModel.fresh(settings, 42, shards != null ? shards : dense);
            try (LlamaModel model = LlamaModel.load(c, new RandomInit(c, 7).weights(), Dtype.FP32, manager, lora)) {
                lora.attach(model);
                long linearParams = 0;
                for (LoraLinear l : lora.adapters().values()) {
                    linearParams += l.base().inFeatures() * l.base().outFeatures();
                }
                long layerLinear = shards != null ? shards.shardBytes() : 4L * linearParams;
                long otherFrozen = 4L * (c.parameterCount() - linearParams);
                TrainableModel trainable = new LoraTrainable(model, lora, "bench");
                long rssAfterLoad = TrainStepBench.status("VmRSS:");
                boolean[] reset = {false};
                long[] peakBeforeReset = {0};
                // Every rank gets distinct batches: rank r takes micro-batches r, r+W, ... of each step.
                List<Batch> batches = TrainStepBench.batches(c.vocabSize(), total * world);
                BatchPlan plan = new BatchPlan() {
                    @Override
                    public int batchesPerEpoch() {
                        return total * world;
                    }

                    @Override
                    public Batch batch(int epoch, int index) {
                        if (index / world == warmup && !reset[0] && peakBeforeReset[0] == 0) {
                            peakBeforeReset[0] = TrainStepBench.status("VmHWM:");
                            reset[0] = TrainStepBench.resetPeak();
                        }
                        return batches.get(index);
                    }
                };
                TrainerOptions options = TrainerOptions.defaults(1e-4).toBuilder()
                        .microBatchSize(TrainStepBench.BATCH).maxSteps(total).lrScheduler("constant").maxGradNorm(1.0)
                        .gradientCheckpointing(gc).fsdp(fsdp).loggingSteps(1).saveSteps(total).handleSigterm(false)
                        .build();
                Trainer.run(options, trainable, plan, null, out, new PrintStream(OutputStream.nullOutputStream()),
                        group, shards);
                long stepPeak = reset[0] ? TrainStepBench.status("VmHWM:") : 0;
                long peak = Math.max(peakBeforeReset[0], TrainStepBench.status("VmHWM:"));
                ObjectNode o = JSON.createObjectNode();
                o.put("rank", rank);
                o.put("world", world);
                o.put("mode", mode);
                o.put("gradient_checkpointing", gc || shards != null);
                o.put("threads", Torch.threads());
                if (rank == 0) {
                    // Rank 0 alone writes metrics: global tokens over its step time (which waits for the others).
                    double tokens = 0;
                    double seconds = 0;
                    double perStep = (double) world * TrainStepBench.BATCH * TrainStepBench.SEQ;
                    for (String line : Files.readAllLines(out.resolve(Trainer.METRICS_FILE))) {
                        JsonNode m = JSON.readTree(line);
                        if (m.has("tokens_per_second") && m.get("step").asLong() > warmup) {
                            tokens += perStep;
                            seconds += perStep / m.get("tokens_per_second").asDouble();
                        }
                    }
                    o.put("tokens_per_s", tokens / seconds);
                }
                o.put("rss_after_load_bytes", rssAfterLoad);
                o.put("peak_rss_bytes", peak);
                o.put("step_peak_rss_bytes", stepPeak);
                o.put("layer_linear_bytes", layerLinear);
                o.put("other_frozen_bytes", otherFrozen);
                if (shards != null) {
                    o.put("fsdp_shard_bytes", shards.shardBytes());
                    o.put("fsdp_total_bytes", shards.totalBytes());
                    o.put("fsdp_largest_layer_bytes", shards.largestLayerBytes());
                    o.put("fsdp_peak_gathered_bytes", shards.peakGatheredBytes());
                }
                System.out.println(JSON.writeValueAsString(o));
            }
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
