package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.quant.Nf4;
import dev.jtune.testkit.TinyLlama;
import dev.jtune.trainer.dist.DistException;
import dev.jtune.trainer.dist.ProcessGroup;
import dev.jtune.trainer.dist.ShardedWeights;
import dev.jtune.trainer.dist.ThreadProcessGroup;
import dev.jtune.trainer.optim.Replicas;
import dev.jtune.trainer.optim.AdamW;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two ranks as threads ({@link ThreadProcessGroup}) against one process with the same global batch: data
 * parallel and FSDP give the one-process losses and adapter; ranks agree; only rank 0 writes; resume works;
 * FSDP's base weights per rank are a half plus one layer.
 */
class DataParallelTest {
    private static final long SEED = 7;
    private static final int STEPS = 4;
    private static final double TOL = 1e-5;
    private static final List<Batch> DATA = TinySetup.batches(11, 8, 2, 16);
    private static final List<Batch> EVAL = TinySetup.batches(12, 3, 2, 16);

    @TempDir
    static Path tmp;

    /** Rank results: losses, eval loss, final params, and FSDP's byte counts (0 without). */
    record RankRun(List<Double> losses, double evalLoss, Map<String, float[]> params, long shardBytes, long totalBytes,
            long largestLayer, long peakGathered, long gatheredAfter, long tensorsWithGrad) {}

    private static RankRun single;
    private static List<RankRun> dp;
    private static List<RankRun> fsdp;

    private static TrainerOptions options(int ga, long steps, boolean shard) {
        return TrainerOptions.defaults(3e-3).toBuilder().gradientAccumulationSteps(ga).maxSteps(steps)
                .lrScheduler("constant").warmupSteps(0).loggingSteps(1).saveSteps(2).maxGradNorm(0.05)
                .adam(new AdamW.Hyper(0.9, 0.999, 1e-8, 0.01)).handleSigterm(false).fsdp(shard).build();
    }

    private static PrintStream quiet() {
        return new PrintStream(new ByteArrayOutputStream());
    }

    static RankRun train(ProcessGroup g, TrainerOptions o, Path out, boolean shardBase) throws IOException {
        return train(g, o, out, shardBase, false);
    }

    /** With {@code nf4}, the frozen base of the decoder layers is quantized to NF4 (QLoRA). */
    static RankRun train(ProcessGroup g, TrainerOptions o, Path out, boolean shardBase, boolean nf4)
            throws IOException {
        try (NDManager m = Torch.newManager()) {
            LlamaModel.LinearFactory base = nf4 ? Nf4.linearFactory() : (n, w) -> new DenseLinear(w);
            ShardedWeights sw = !shardBase ? null : nf4 ? ShardedWeights.nf4(g, base) : new ShardedWeights(g, base);
            TinySetup.TinyAdapter a = TinySetup.TinyAdapter.load(m, SEED, o.precision(), 4, sw == null ? base : sw);
            TrainingResult r = Trainer.run(o, a, BatchPlan.of(DATA), BatchPlan.of(EVAL), out, quiet(), g, sw);
            Map<String, float[]> params = new LinkedHashMap<>();
            for (var e : a.parameters().entrySet()) params.put(e.getKey(), e.getValue().toFloatArray());
            long withGrad = a.parameters().values().stream().filter(p -> {
                NDArray grad = dev.jtune.model.engine.Autograd.gradient(p);
                if (grad != null) grad.close();
                return grad != null;
            }).count();
            return sw == null ? new RankRun(r.losses(), r.evalLoss().orElseThrow(), params, 0, 0, 0, 0, 0, withGrad)
                    : new RankRun(r.losses(), r.evalLoss().orElseThrow(), params, sw.shardBytes(), sw.totalBytes(),
                            sw.largestLayerBytes(), sw.peakGatheredBytes(), sw.gatheredBytes(), withGrad);
        }
    }

    private static int threadsBefore;

    /**
     * Ranks as threads of one process share libtorch's intra-op pool; two ranks entering it at once can get
     * other splits of a reduction than one rank alone, a rounding difference that AdamW amplifies on near-zero
     * gradients. One intra-op thread makes every kernel's arithmetic independent of what the other rank is
     * doing, as separate processes are (DistributedTrainTest checks those).
     */
    @BeforeAll
    static void runAll() throws Exception {
        Torch.engine(); // loads the natives
        threadsBefore = Torch.threads();
        Torch.setThreads(1);
        // On a fresh thread like the ranks: libtorch keeps per-thread executor state (TorchScript's graph executor
        // mode is thread-local), and the test thread has run other tests' kernels before.
        single = ThreadProcessGroup.run(1, g -> train(ProcessGroup.single(), options(2, STEPS, false),
                tmp.resolve("single"), false)).get(0);
        dp = ThreadProcessGroup.run(2, g -> train(g, options(1, STEPS, false), tmp.resolve("dp" + g.rank()), false));
        fsdp = ThreadProcessGroup.run(2, g -> train(g, options(1, STEPS, true), tmp.resolve("fsdp" + g.rank()), true));
    }

    @org.junit.jupiter.api.AfterAll
    static void restoreThreads() {
        Torch.setThreads(threadsBefore);
    }

    private static void assertClose(double expected, double actual, String what) {
        assertTrue(Math.abs(expected - actual) <= TOL * Math.abs(expected), what + ": expected " + expected
                + ", got " + actual);
    }

    private static void assertSameRun(RankRun expected, RankRun actual, String what) {
        assertEquals(expected.losses().size(), actual.losses().size(), what + ": steps");
        for (int i = 0; i < expected.losses().size(); i++) {
            assertClose(expected.losses().get(i), actual.losses().get(i), what + ": loss at step " + (i + 1));
        }
        assertClose(expected.evalLoss(), actual.evalLoss(), what + ": eval loss");
        for (var e : expected.params().entrySet()) {
            float[] x = e.getValue();
            float[] y = actual.params().get(e.getKey());
            double maxAbs = 0;
            double diff = 0;
            for (int i = 0; i < x.length; i++) {
                maxAbs = Math.max(maxAbs, Math.abs(x[i]));
                diff = Math.max(diff, Math.abs(x[i] - y[i]));
            }
            assertTrue(diff <= TOL * maxAbs, what + ": " + e.getKey() + " differs by " + diff + " (max |x| " + maxAbs + ")");
        }
    }

    @Test
    void dataParallelEqualsOneProcessWithTheSameGlobalBatch() {
        // The adapter moved (B starts at zero), so equal params are not the trivial initial ones.
        assertTrue(single.params().values().stream().anyMatch(v -> {
            for (float f : v) if (f != 0f) return true;
            return false;
        }));
        assertSameRun(single, dp.get(0), "data parallel");
    }

    @Test
    void theComparisonTellsADifferentGlobalBatchApart() throws Exception {
        // One process with half the global batch (what a rank alone sees) must not pass for the same run.
        RankRun half = ThreadProcessGroup.run(1, g -> train(ProcessGroup.single(), options(1, STEPS, false),
                tmp.resolve("half"), false)).get(0);
        assertThrows(AssertionError.class, () -> assertSameRun(half, dp.get(0), "half batch"));
    }

    @Test
    void fsdpEqualsDataParallel() {
        assertSameRun(dp.get(0), fsdp.get(0), "FSDP");
    }

    @Test
    void fsdpKeepsNoFullGradientsOfTheShardedAdapter() {
        // Data parallel accumulates every adapter tensor's gradient in .grad; FSDP hands each recomputed layer's
        // gradients to a reduce-scatter at once (the tiny adapter lives in the decoder layers only).
        int tensors = single.params().size();
        assertEquals(tensors, dp.get(0).tensorsWithGrad());
        for (RankRun r : fsdp) {
            assertEquals(0, r.tensorsWithGrad());
        }
    }

    @Test
    void fsdpOverABf16BaseEqualsDataParallel() throws Exception {
        TrainerOptions o = options(1, 2, false).toBuilder().precision(Dtype.BF16).build();
        List<RankRun> plain = ThreadProcessGroup.run(2, g -> train(g, o, tmp.resolve("bf16-dp" + g.rank()), false));
        List<RankRun> sharded = ThreadProcessGroup.run(2, g -> train(g, o.toBuilder().fsdp(true).build(),
                tmp.resolve("bf16-fsdp" + g.rank()), true));
        assertSameRun(plain.get(0), sharded.get(0), "FSDP over bf16");
        assertEquals(sharded.get(0).totalBytes() / 2, sharded.get(0).shardBytes());
    }

    @Test
    void fsdpOverAnNf4BaseEqualsDataParallelAndHoldsHalfItsCodes() throws Exception {
        TrainerOptions o = options(1, STEPS, false);
        List<RankRun> plain = ThreadProcessGroup.run(2, g -> train(g, o, tmp.resolve("nf4-dp" + g.rank()), false, true));
        List<RankRun> sharded = ThreadProcessGroup.run(2, g -> train(g, o.toBuilder().fsdp(true).build(),
                tmp.resolve("nf4-fsdp" + g.rank()), true, true));
        assertSameRun(plain.get(0), sharded.get(0), "FSDP over NF4");
        // Not the dense run: the NF4 base changes the losses (so the comparison above is about NF4).
        assertThrows(AssertionError.class, () -> assertSameRun(dp.get(0), plain.get(0), "NF4 vs dense"));

        // Expected bytes from the NF4 layout (blocksize 64, nested 256): per projection (numel + 1) / 2 packed bytes
        // and one absmax code a block, sharded; fp32 nested scales, offset and the 16 + 256 map values, replicated.
        LlamaConfig c = TinyLlama.preset();
        long h = c.hiddenSize();
        long kv = (long) c.numKeyValueHeads() * c.headDim();
        long[] numels = {h * h, kv * h, kv * h, h * h, c.intermediateSize() * h, c.intermediateSize() * h,
                h * c.intermediateSize()};
        long codes = 0;
        long codesPerRank = 0;
        long stats = 0;
        for (long n : numels) {
            long blocks = (n + 63) / 64;
            codes += (n + 1) / 2 + blocks;
            codesPerRank += (blocks + 1) / 2 * (64 / 2 + 1);
            stats += 4 * ((blocks + 255) / 256 + 1 + 16 + 256);
        }
        assertEquals(codes, 2 * codesPerRank, "every block count is even: each rank holds exactly half the codes");
        int layers = c.numHiddenLayers();
        for (RankRun r : sharded) {
            assertEquals(layers * (codes + stats), r.totalBytes(), "whole NF4 base");
            assertEquals(layers * (codesPerRank + stats), r.shardBytes(), "held for good");
            assertEquals(codes, r.largestLayer(), "one layer's codes");
            assertEquals(r.largestLayer(), r.peakGathered(), "at most one layer gathered at a time");
            assertEquals(0, r.gatheredAfter(), "nothing gathered after training");
        }
    }

    @Test
    void ranksHoldIdenticalParametersAndLosses() {
        for (List<RankRun> runs : List.of(dp, fsdp)) {
            assertEquals(runs.get(0).losses(), runs.get(1).losses());
            for (var e : runs.get(0).params().entrySet()) {
                assertArrayEquals(e.getValue(), runs.get(1).params().get(e.getKey()), e.getKey());
            }
        }
    }

    @Test
    void onlyRankZeroWrites() throws IOException {
        for (String run : List.of("dp", "fsdp")) {
            assertTrue(Files.isRegularFile(tmp.resolve(run + "0").resolve(Trainer.METRICS_FILE)));
            assertTrue(Files.isDirectory(tmp.resolve(run + "0").resolve("checkpoint-" + STEPS)));
            try (Stream<Path> s = Files.list(tmp.resolve(run + "1"))) {
                assertEquals(List.of(), s.toList(), run + ": rank 1 wrote files");
            }
        }
    }

    @Test
    void fsdpHoldsHalfTheBaseWeightsPlusOneLayer() {
        for (RankRun r : fsdp) {
            // 4 layers x 7 projections of the tiny preset, fp32; every size is even, so no padding.
            assertTrue(r.totalBytes() > 0);
            assertEquals(r.totalBytes() / 2, r.shardBytes(), "chunks held for good");
            assertEquals(r.totalBytes() / 4, r.largestLayer(), "one of the 4 equal layers");
            assertEquals(r.largestLayer(), r.peakGathered(), "at most one layer gathered at a time");
            assertEquals(0, r.gatheredAfter(), "nothing gathered after training");
            assertTrue(r.shardBytes() + r.peakGathered() <= r.totalBytes() / 2 + r.largestLayer());
        }
    }

    @Test
    void resumeDistributedReproducesTheUninterruptedLosses() throws Exception {
        Path dir = tmp.resolve("resumed");
        // The first half (constant lr: a shorter run is a prefix of the longer one), then resume to the end,
        // with plain data parallel and, from the same checkpoint, with FSDP (checkpoints are world-size free).
        ThreadProcessGroup.run(2, g -> train(g, options(1, STEPS / 2, false), dir, false));
        Path half = dir.resolve("checkpoint-" + STEPS / 2);
        assertTrue(Files.isDirectory(half));
        Path copy = tmp.resolve("resumed-fsdp");
        copyCheckpoint(half, copy);
        // And a checkpoint that FSDP wrote (its adapter and optimizer state gathered from the shards), resumed by
        // plain data parallel.
        Path fromFsdp = tmp.resolve("resumed-from-fsdp");
        copyCheckpoint(tmp.resolve("fsdp0/checkpoint-" + STEPS / 2), fromFsdp);
        List<RankRun> resumed = ThreadProcessGroup.run(2, g -> train(g,
                options(1, STEPS, false).toBuilder().resumeFromCheckpoint("auto").build(), dir, false));
        List<RankRun> resumedFsdp = ThreadProcessGroup.run(2, g -> train(g,
                options(1, STEPS, true).toBuilder().resumeFromCheckpoint("auto").build(), copy, true));
        List<RankRun> resumedFromFsdp = ThreadProcessGroup.run(2, g -> train(g,
                options(1, STEPS, false).toBuilder().resumeFromCheckpoint("auto").build(), fromFsdp, false));
        for (List<RankRun> runs : List.of(resumed, resumedFsdp, resumedFromFsdp)) {
            List<Double> losses = runs.get(0).losses();
            assertEquals(STEPS / 2, losses.size(), "steps run after resume");
            for (int i = 0; i < losses.size(); i++) {
                assertClose(dp.get(0).losses().get(STEPS / 2 + i), losses.get(i), "loss at step " + (STEPS / 2 + i + 1));
            }
            assertSameRun(new RankRun(List.of(), dp.get(0).evalLoss(), dp.get(0).params(), 0, 0, 0, 0, 0, 0),
                    new RankRun(List.of(), runs.get(0).evalLoss(), runs.get(0).params(), 0, 0, 0, 0, 0, 0), "resumed");
        }
    }

    /** Full fine-tuning of the tiny model on rank {@code g}: losses and final weights. */
    private static RankRun trainFull(ProcessGroup g, TrainerOptions o, Path out) throws IOException {
        try (NDManager m = Torch.newManager();
                LlamaModel model = LlamaModel.load(TinyLlama.preset(), TinyLlama.weights(TinyLlama.preset(), SEED),
                        Dtype.FP32, m, (n, w) -> new DenseLinear(w))) {
            FullFineTuning full = new FullFineTuning(model);
            TrainingResult r = Trainer.run(o, full, BatchPlan.of(DATA), BatchPlan.of(EVAL), out, quiet(), g, null);
            Map<String, float[]> params = new LinkedHashMap<>();
            for (var e : full.parameters().entrySet()) params.put(e.getKey(), e.getValue().toFloatArray());
            return new RankRun(r.losses(), r.evalLoss().orElseThrow(), params, 0, 0, 0, 0, 0, 0);
        }
    }

    @Test
    void fsdpOfFullFineTuningShardsTheLayersAndEqualsDataParallel() throws Exception {
        // Every decoder layer's weights are trainable here, so FSDP shards them all (gathered per layer).
        TrainerOptions o = options(1, 2, false).toBuilder().learningRate(1e-3).build();
        List<RankRun> plain = ThreadProcessGroup.run(2, g -> trainFull(g, o, tmp.resolve("full-dp" + g.rank())));
        List<RankRun> sharded = ThreadProcessGroup.run(2, g -> trainFull(g, o.toBuilder().fsdp(true).build(),
                tmp.resolve("full-fsdp" + g.rank())));
        assertSameRun(plain.get(0), sharded.get(0), "FSDP of full fine-tuning");
        assertSameRun(sharded.get(0), sharded.get(1), "FSDP ranks");
    }

    /** Copies {@code checkpoint} into {@code outputDir} under its own name. */
    private static void copyCheckpoint(Path checkpoint, Path outputDir) throws IOException {
        assertTrue(Files.isDirectory(checkpoint), checkpoint.toString());
        try (Stream<Path> s = Files.walk(checkpoint)) {
            for (Path p : s.toList()) {
                Path to = outputDir.resolve(checkpoint.getFileName().toString()).resolve(checkpoint.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(to);
                else Files.copy(p, to);
            }
        }
    }

    @Test
    void divergedReplicasFailLoudlyNamingTheStep() {
        DistException e = assertThrows(DistException.class, () -> ThreadProcessGroup.run(2, g -> {
            try (NDManager m = Torch.newManager()) {
                NDArray p = m.create(new float[] {1f, 2f + g.rank()});
                Replicas.checkIdentical(g, List.of(p), 17, m);
                return null;
            }
        }));
        assertTrue(e.getMessage().contains("after step 17"), e.getMessage());
    }

    /**
     * FSDP over an NF4 base with a real LoRA adapter on every projection, for the families whose layers differ most
     * from Llama's: Phi-3's fused projections, Qwen2's biases and tied head, a multimodal Gemma 3's text layers under
     * {@code model.language_model.} with two rotary tables. Sharded equals unsharded, and each rank holds half the codes.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"phi3", "qwen2", "gemma3-conditional"})
    void fsdpOverEachFamilysNf4BaseEqualsDataParallel(String family) throws Exception {
        Path fixture = Path.of("..", "model", "src", "test", "resources", "fixtures", "families", family)
                .toAbsolutePath();
        TrainerOptions o = options(1, STEPS, false);
        List<RankRun> plain = ThreadProcessGroup.run(2, g -> trainFamily(g, o, tmp.resolve(family + "-dp" + g.rank()),
                fixture, false));
        List<RankRun> sharded = ThreadProcessGroup.run(2, g -> trainFamily(g, o.toBuilder().fsdp(true).build(),
                tmp.resolve(family + "-fsdp" + g.rank()), fixture, true));
        assertSameRun(plain.get(0), sharded.get(0), family + ": FSDP over NF4");
        for (RankRun r : sharded) {
            assertTrue(r.totalBytes() > 0 && r.shardBytes() < r.totalBytes() * 0.75,
                    family + ": every decoder layer is sharded (" + r.shardBytes() + " of " + r.totalBytes() + ")");
        }
    }

    private static RankRun trainFamily(ProcessGroup g, TrainerOptions o, Path out, Path fixture, boolean shard)
            throws IOException {
        var settings = new dev.jtune.lora.LoraSettings(dev.jtune.lora.LoraSettings.Adapter.QLORA, 4, 8, 0.0,
                dev.jtune.lora.LoraSettings.LINEAR_MODULES, false, List.of(), true);
        try (NDManager m = Torch.newManager(); var c = dev.jtune.model.hf.HfCheckpoint.open(fixture)) {
            LlamaModel.LinearFactory base = Nf4.linearFactory();
            ShardedWeights sw = shard ? ShardedWeights.nf4(g, base) : null;
            var lora = dev.jtune.lora.LoraModel.fresh(settings, SEED, sw == null ? base : sw);
            try (LlamaModel model = LlamaModel.load(c.config(), c, o.precision(), m, lora)) {
                lora.attach(model);
                var trainable = new LoraTrainable(model, lora, fixture.toString());
                TrainingResult r = Trainer.run(o, trainable, BatchPlan.of(DATA), BatchPlan.of(EVAL), out, quiet(), g, sw);
                Map<String, float[]> params = new LinkedHashMap<>();
                for (var e : trainable.parameters().entrySet()) params.put(e.getKey(), e.getValue().toFloatArray());
                return sw == null ? new RankRun(r.losses(), r.evalLoss().orElseThrow(), params, 0, 0, 0, 0, 0, 0)
                        : new RankRun(r.losses(), r.evalLoss().orElseThrow(), params, sw.shardBytes(), sw.totalBytes(),
                                sw.largestLayerBytes(), sw.peakGatheredBytes(), sw.gatheredBytes(), 0);
            }
        }
    }
}
