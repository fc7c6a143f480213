package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.dataset.Batch;
import dev.jtune.data.dataset.Row;
import dev.jtune.data.dataset.Sample;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.hf.HfCheckpoint;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsFile;
import dev.jtune.testkit.TinyLlama;
import dev.jtune.trainer.dist.ProcessGroup;
import dev.jtune.trainer.dist.ThreadProcessGroup;
import dev.jtune.trainer.optim.AdamW;
import dev.jtune.trainer.optim.Tensors;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Full fine-tuning in mixed precision with fp32 master weights ({@code bf16: true} under FSDP or DeepSpeed,
 * {@code fp16: true}): the model holds fp32 weights and computes in bf16/fp16, AdamW and its moments are fp32.
 * Checked against torch doing the same (fixture from tools/reference/mixed_full_ft_expected.py); two FSDP ranks equal
 * one rank accumulating both micro-batches, bit for bit; resume is exact; the saved model is F32.
 */
class MixedPrecisionFullFineTuningTest {
    private static final Path FIXTURE_MODEL = Path.of("..", "model", "src", "test", "resources", "fixtures",
            "tiny-bf16-llama").toAbsolutePath();

    private static PrintStream quiet() {
        return new PrintStream(new ByteArrayOutputStream());
    }

    private static int[] ints(JsonNode n) {
        int[] x = new int[n.size()];
        for (int i = 0; i < x.length; i++) x[i] = n.get(i).asInt();
        return x;
    }

    private static Map<String, float[]> snapshot(FullFineTuning ft) {
        Map<String, float[]> out = new LinkedHashMap<>();
        ft.parameters().forEach((k, v) -> {
            assertEquals(Dtype.FP32, Kernels.get().dtypeOf(v), k + " is an fp32 master weight");
            out.put(k, Tensors.floats(v));
        });
        return out;
    }

    private static TrainerOptions options(Dtype precision, int ga, long steps, boolean fsdp) {
        return TrainerOptions.defaults(3e-3).toBuilder().gradientAccumulationSteps(ga).maxSteps(steps)
                .lrScheduler("cosine").warmupSteps(1).loggingSteps(1).saveSteps(2).maxGradNorm(1.0)
                .adam(new AdamW.Hyper(0.9, 0.999, 1e-8, 0.01)).precision(precision).fsdp(fsdp).handleSigterm(false)
                .build();
    }

    private record Run(List<Double> losses, Map<String, float[]> params, long skipped) {}

    private static Run train(ProcessGroup g, Dtype compute, TrainerOptions o, List<Batch> data, Path out)
            throws IOException {
        try (NDManager m = Torch.newManager();
                LlamaModel model = LlamaModel.loadFp32Weights(TinyLlama.preset(), TinyLlama.weights(TinyLlama.preset(),
                        5), compute, m)) {
            FullFineTuning ft = new FullFineTuning(model);
            assertEquals(compute != Dtype.FP32, ft.masterWeights());
            TrainingResult r = Trainer.run(o, ft, BatchPlan.of(data), null, out, quiet(), g, null);
            return new Run(r.losses(), snapshot(ft), r.skippedSteps());
        }
    }

    /**
     * Two FSDP ranks (one micro-batch each; parameters, gradients and fp32 AdamW state sharded) against one rank
     * accumulating both: every micro-batch's bf16 gradient is cast to fp32 before it is summed, so the sums are the
     * same fp32 additions. Without clipping the runs agree bit for bit. With clipping the global norm is summed in
     * another order (per shard, then over the ranks), so the clip coefficient may differ in its last bit, and a master
     * weight one fp32 ulp apart can round to another bf16 value, after which a near-zero gradient may change sign
     * and Adam moves that weight by ±lr: measured, losses within 5e-6 relative, and all but a few weights of the
     * embedding within 0.01·lr after four steps.
     */
    @Test
    void twoFsdpRanksEqualOneRankInBf16() throws Exception {
        assertTwoRanksEqualOne(Dtype.BF16, "bf16");
    }

    /** The same in fp16, with the dynamic loss scale (the ranks agree on inf/nan and skip the same steps). */
    @Test
    void twoFsdpRanksEqualOneRankInFp16() throws Exception {
        assertTwoRanksEqualOne(Dtype.FP16, "fp16");
    }

    private static void assertTwoRanksEqualOne(Dtype compute, String name) throws Exception {
        Path out = Files.createTempDirectory("mixed-" + name);
        List<Batch> data = TinySetup.batches(4, 8, 2, 16);
        Torch.engine(); // loads the natives before the thread count is read or set
        int threads = Torch.threads();
        Torch.setThreads(1); // as DataParallelTest: each rank's kernels split their reductions alike
        try {
            for (double clip : new double[] {0.0, 1.0}) {
                TrainerOptions o = options(compute, 2, 4, true).toBuilder().maxGradNorm(clip).build();
                Run one = ThreadProcessGroup.run(1, g -> train(ProcessGroup.single(), compute, o, data,
                        out.resolve("one-" + clip))).get(0);
                List<Run> two = ThreadProcessGroup.run(2, g -> train(g, compute,
                        o.toBuilder().gradientAccumulationSteps(1).build(), data, out.resolve("r" + g.rank() + clip)));
                assertTrue(one.losses().get(3) < one.losses().get(0), "the loss falls: " + one.losses());
                for (Run r : two) {
                    assertEquals(one.skipped(), r.skipped());
                    if (clip == 0) {
                        assertEquals(one.losses(), r.losses());
                        one.params().forEach((k, v) -> assertArrayEquals(v, r.params().get(k), k));
                    } else {
                        for (int i = 0; i < one.losses().size(); i++) {
                            assertEquals(one.losses().get(i), r.losses().get(i), 1e-4 * one.losses().get(i),
                                    "loss at step " + (i + 1) + ": " + one.losses() + " vs " + r.losses());
                        }
                        long n = 0, close = 0;
                        for (var e : one.params().entrySet()) {
                            float[] v = e.getValue();
                            float[] w = r.params().get(e.getKey());
                            for (int i = 0; i < v.length; i++, n++) {
                                if (Math.abs(v[i] - w[i]) <= 0.01 * o.learningRate()) close++;
                            }
                        }
                        System.out.println(name + " clipped: " + close + " of " + n + " weights within 0.01·lr");
                        assertTrue(close >= 0.99 * n, close + " of " + n + " weights within 0.01·lr");
                    }
                }
                // and it is not fp32 training: the same run computing in fp32 ends elsewhere
                Run fp32 = train(ProcessGroup.single(), Dtype.FP32, options(Dtype.FP32, 2, 4, true).toBuilder()
                        .maxGradNorm(clip).build(), data, out.resolve("fp32-" + clip));
                assertNotEquals(one.losses(), fp32.losses());
            }
        } finally {
            Torch.setThreads(threads);
        }
    }

    /** Two FSDP ranks resume from a checkpoint (the fp32 masters and moments, gathered) exactly. */
    @Test
    void twoFsdpRanksResumeExactly(@TempDir Path out) throws Exception {
        List<Batch> data = TinySetup.batches(5, 8, 2, 16);
        Torch.engine();
        int threads = Torch.threads();
        Torch.setThreads(1);
        try {
            TrainerOptions o = options(Dtype.BF16, 1, 4, true);
            Path dir = out.resolve("fsdp");
            List<Run> whole = ThreadProcessGroup.run(2, g -> train(g, Dtype.BF16, o, data, dir));
            List<Run> resumed = ThreadProcessGroup.run(2, g -> train(g, Dtype.BF16, o.toBuilder()
                    .resumeFromCheckpoint(dir.resolve("checkpoint-2").toString()).build(), data, dir));
            for (int r = 0; r < 2; r++) {
                assertEquals(whole.get(r).losses().subList(2, 4), resumed.get(r).losses(), "rank " + r);
                Map<String, float[]> p = resumed.get(r).params();
                whole.get(r).params().forEach((k, v) -> assertArrayEquals(v, p.get(k), k));
            }
        } finally {
            Torch.setThreads(threads);
        }
    }

    @Test
    void resumeIsExactAndTheSavedModelIsF32(@TempDir Path out) throws IOException {
        List<Batch> data = TinySetup.batches(3, 8, 2, 16);
        TrainerOptions o = options(Dtype.BF16, 2, 4, true);
        Run whole = train(ProcessGroup.single(), Dtype.BF16, o, data, out.resolve("whole"));
        Run resumed = train(ProcessGroup.single(), Dtype.BF16, o.toBuilder()
                .resumeFromCheckpoint(out.resolve("whole").resolve("checkpoint-2").toString()).build(), data,
                out.resolve("whole"));
        assertEquals(whole.losses().subList(2, 4), resumed.losses(), "steps 3-4 after resuming from checkpoint-2");
        whole.params().forEach((k, v) -> assertArrayEquals(v, resumed.params().get(k), k));
        // The checkpoint holds the fp32 master weights (F32, off the bf16 grid) and fp32 moments.
        Path ckpt = out.resolve("whole").resolve("checkpoint-2");
        try (SafetensorsFile f = SafetensorsFile.open(ckpt.resolve("model.safetensors"))) {
            assertEquals(SafetensorsDtype.F32, f.info("model.layers.0.self_attn.q_proj.weight").dtype());
            float[] w = f.floats("model.layers.0.self_attn.q_proj.weight");
            long offGrid = 0;
            for (float x : w) {
                if ((Float.floatToRawIntBits(x) & 0xFFFF) != 0) offGrid++;
            }
            assertTrue(offGrid > w.length / 2, offGrid + " of " + w.length + " master values are not bf16 values");
        }
        // The exported model: F32 weights, config.json float32 (the upcast parameters' dtype that save_pretrained
        // writes after FSDP mixed precision), loading back bit for bit.
        Path export = out.resolve("export");
        Files.createDirectories(export);
        try (NDManager m = Torch.newManager();
                LlamaModel model = LlamaModel.loadFp32Weights(TinyLlama.preset(), TinyLlama.weights(TinyLlama.preset(),
                        5), Dtype.BF16, m)) {
            FullFineTuning ft = new FullFineTuning(model);
            ft.loadWeights(ckpt);
            ft.saveWeights(export);
            assertTrue(Files.readString(export.resolve("config.json")).contains("\"torch_dtype\" : \"float32\""));
            try (SafetensorsFile f = SafetensorsFile.open(export.resolve("model.safetensors"))) {
                assertEquals(SafetensorsDtype.F32, f.info("lm_head.weight").dtype());
            }
            try (NDManager m2 = Torch.newManager(); HfCheckpoint saved = HfCheckpoint.open(export);
                    LlamaModel back = LlamaModel.load(saved.config(), saved, Dtype.FP32, m2)) {
                Map<String, float[]> a = snapshot(ft);
                Map<String, float[]> b = snapshot(new FullFineTuning(back));
                assertEquals(a.keySet(), b.keySet());
                a.forEach((k, v) -> assertArrayEquals(v, b.get(k), k));
            }
        }
    }

    /**
     * Every family's parts (biases, q/k norms, Gemma's norms, Phi-3's fused projections, a multimodal prefix) compute
     * from fp32 master weights exactly what the model loaded in bf16 computes: the casts where each weight is used
     * round as loading in bf16 rounds. One micro-batch's gradients reach the fp32 masters as the bf16 model's bf16
     * gradients, widened — except the embedding's, summed over repeated tokens in fp32 rather than in bf16.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"qwen2", "qwen3", "mistral-nemo", "gemma2",
            "gemma3-text", "gemma3-conditional", "phi3"})
    void everyFamilyComputesFromMastersAsFromBf16Weights(String family) {
        Path dir = Path.of("..", "model", "src", "test", "resources", "fixtures", "families", family).toAbsolutePath();
        Batch b = TinySetup.packedBatch(9, 2, 40);
        Torch.setGraphOptimization(false); // as training runs: the profiling executor would round otherwise later on
        try (HfCheckpoint ckpt = HfCheckpoint.open(dir); NDManager m = Torch.newManager();
                LlamaModel bf16 = LlamaModel.load(ckpt.config(), ckpt, Dtype.BF16, m);
                LlamaModel mixed = LlamaModel.loadFp32Weights(ckpt.config(), ckpt, Dtype.BF16, m)) {
            Map<String, float[]> g16 = gradients(bf16, b, m);
            Map<String, float[]> g32 = gradients(mixed, b, m);
            assertEquals(Dtype.BF16, mixed.dtype());
            assertEquals(g16.keySet(), g32.keySet());
            String embed = ckpt.config().architecture().textPrefix() + "embed_tokens.weight";
            for (var e : g16.entrySet()) {
                if (e.getKey().equals(embed) || e.getKey().equals("loss")) {
                    continue;
                }
                assertArrayEquals(e.getValue(), g32.get(e.getKey()), family + ": " + e.getKey());
            }
            assertArrayEquals(g16.get("loss"), g32.get("loss"), family + ": the loss");
            // The embedding (and a tied head): bf16 sums over repeated tokens against fp32 ones.
            float[] a = g16.get(embed);
            float[] c = g32.get(embed);
            double max = 0;
            for (float v : a) max = Math.max(max, Math.abs(v));
            for (int i = 0; i < a.length; i++) {
                assertEquals(a[i], c[i], 0.02 * max, family + ": " + embed + "[" + i + "]");
            }
        }
    }

    /** One micro-batch's loss (under "loss") and every weight's gradient, as fp32 values. */
    private static Map<String, float[]> gradients(LlamaModel model, Batch b, NDManager m) {
        Map<String, ai.djl.ndarray.NDArray> params = FullFineTuning.namedWeights(model);
        params.values().forEach(p -> p.setRequiresGradient(true));
        double nll = new ForwardBackward(model, false, 7).run(b, b.trainedTokens(), 1.0, true, 0, 0, m).nllSum();
        Map<String, float[]> out = new LinkedHashMap<>();
        List<ai.djl.ndarray.NDArray> g = dev.jtune.trainer.optim.Gradients.open(params.values());
        int i = 0;
        for (String name : params.keySet()) {
            out.put(name, Tensors.floats(g.get(i++))); // bf16 gradients widened exactly
        }
        dev.jtune.trainer.optim.Gradients.close(g);
        out.put("loss", new float[] {(float) nll});
        return out;
    }

    // ---- against torch ----

    /** Trains the fixture's model for {@code steps} of the fixture's batches; returns the master weights. */
    private static Map<String, float[]> trainFixture(JsonNode fx, Dtype compute, int steps, Path out,
            List<Double> losses) throws IOException {
        return trainFixture(fx, compute, steps, out, losses, 1.0, new long[1]);
    }

    /** As above, the final norm's weight times {@code normScale} first; {@code skipped[0]} gets the skipped steps. */
    private static Map<String, float[]> trainFixture(JsonNode fx, Dtype compute, int steps, Path out,
            List<Double> losses, double normScale, long[] skipped) throws IOException {
        List<Batch> batches = new ArrayList<>();
        for (JsonNode b : fx.get("batches")) {
            List<Row> rows = new ArrayList<>();
            for (int r = 0; r < b.get("input_ids").size(); r++) {
                rows.add(Row.of(new Sample(ints(b.get("input_ids").get(r)), ints(b.get("labels").get(r)))));
            }
            batches.add(TinySetup.collate(rows));
        }
        while (batches.size() < steps) {
            batches.add(batches.get(0)); // the same batch every step, as the fixture's script
        }
        TrainerOptions o = TrainerOptions.defaults(fx.get("lr").asDouble()).toBuilder().maxSteps(steps)
                .lrScheduler("constant").warmupSteps(0).loggingSteps(1).maxGradNorm(fx.get("max_grad_norm").asDouble())
                .adam(new AdamW.Hyper(0.9, 0.999, 1e-8, fx.get("weight_decay").asDouble())).precision(compute)
                .fsdp(true).handleSigterm(false).build();
        try (NDManager m = Torch.newManager(); HfCheckpoint ckpt = HfCheckpoint.open(FIXTURE_MODEL);
                LlamaModel model = LlamaModel.loadFp32Weights(ckpt.config(), ckpt, compute, m)) {
            if (normScale != 1.0) {
                float[] w = Tensors.floats(model.norm());
                for (int i = 0; i < w.length; i++) w[i] *= (float) normScale;
                Tensors.overwrite(model.norm(), w, "model.norm.weight");
            }
            FullFineTuning ft = new FullFineTuning(model);
            TrainingResult r = Trainer.run(o, ft, BatchPlan.of(batches.subList(0, steps)), null, out, quiet());
            losses.addAll(r.losses());
            skipped[0] = r.skippedSteps();
            return snapshot(ft);
        }
    }

    /** The fixture's fp32 values: base64 of little-endian float32. */
    private static float[] f32(String base64) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(java.util.Base64.getDecoder().decode(base64))
                .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        float[] x = new float[b.remaining() / 4];
        b.asFloatBuffer().get(x);
        return x;
    }

    /** Agreement of the fp32 master weights the fixture holds (a few tensors) with the fixture's values. */
    private record Agreement(long values, long identical, long withinHalfLr, double worst) {
        static Agreement of(Map<String, float[]> actual, JsonNode expected, double lr) {
            long values = 0, identical = 0, close = 0;
            double worst = 0;
            for (var names = expected.fieldNames(); names.hasNext(); ) {
                String name = names.next();
                float[] x = f32(expected.get(name).asText());
                float[] a = actual.get(name);
                assertEquals(x.length, a.length, name);
                for (int i = 0; i < a.length; i++) {
                    values++;
                    if (x[i] == a[i]) identical++;
                    double diff = Math.abs(x[i] - a[i]);
                    if (diff <= 0.5 * lr) close++;
                    worst = Math.max(worst, diff / lr);
                }
            }
            return new Agreement(values, identical, close, worst);
        }
    }

    private JsonNode fixture() throws IOException {
        try (InputStream in = getClass().getResourceAsStream("/fixtures/mixed_full_ft_expected.json")) {
            return new ObjectMapper().readTree(in);
        }
    }

    /**
     * One step and three steps against torch (fp32 master weights cast to bf16 for forward and backward, the bf16
     * gradients cast to fp32, clip_grad_norm_ and torch.optim.AdamW in fp32). Adam's first step moves each weight by
     * about lr·sign(gradient): a bf16 master copy, bf16 moments or an fp32 forward would move most values elsewhere.
     */
    @Test
    void bf16StepsMatchTorch(@TempDir Path out) throws IOException {
        JsonNode fx = fixture().get("bf16");
        double lr = fixture().get("lr").asDouble();
        List<Double> losses = new ArrayList<>();
        Agreement one = Agreement.of(trainFixture(fixture(), Dtype.BF16, 1, out.resolve("one"), losses),
                fx.get("after_first"), lr);
        System.out.println("bf16 one step " + one + " losses " + losses);
        assertTrue(one.identical() >= 0.6 * one.values(), one + " after one step");
        assertTrue(one.withinHalfLr() >= 0.99 * one.values(), one + " after one step");
        List<Double> three = new ArrayList<>();
        Agreement a = Agreement.of(trainFixture(fixture(), Dtype.BF16, 3, out.resolve("three"), three),
                fx.get("final"), lr);
        for (int i = 0; i < 3; i++) {
            double expected = fx.get("losses").get(i).asDouble();
            assertEquals(expected, three.get(i), 0.01 * expected, "loss at step " + (i + 1) + ": " + three);
        }
        System.out.println("bf16 three steps " + a + " losses " + three);
        assertTrue(a.withinHalfLr() >= 0.95 * a.values(), a + " after three steps");
    }

    /** The same in fp16 with torch's GradScaler (initial scale 2^16). */
    @Test
    void fp16StepsMatchTorch(@TempDir Path out) throws IOException {
        JsonNode fx = fixture().get("fp16");
        double lr = fixture().get("lr").asDouble();
        List<Double> three = new ArrayList<>();
        Agreement a = Agreement.of(trainFixture(fixture(), Dtype.FP16, 3, out.resolve("three"), three),
                fx.get("final"), lr);
        for (int i = 0; i < 3; i++) {
            double expected = fx.get("losses").get(i).asDouble();
            assertEquals(expected, three.get(i), 0.01 * expected, "loss at step " + (i + 1) + ": " + three);
        }
        System.out.println("fp16 three steps " + a + " losses " + three);
        assertTrue(a.withinHalfLr() >= 0.95 * a.values(), a + " after three steps");
    }

    /**
     * Loss scaling on fp32 master weights against torch's GradScaler: with the final norm's weight times 256 the
     * scaled fp16 gradients overflow; both skip the first 7 steps (the weights unchanged, the loss the same), halving
     * the scale from 2^16 to 2^9, then train.
     */
    @Test
    void fp16OverflowSkipsTheStepsTorchSkips(@TempDir Path out) throws IOException {
        JsonNode fx = fixture().get("fp16_overflow");
        JsonNode expected = fx.get("losses");
        List<Double> losses = new ArrayList<>();
        long[] skipped = new long[1];
        trainFixture(fixture(), Dtype.FP16, expected.size(), out, losses, fx.get("norm_scale").asDouble(), skipped);
        System.out.println("fp16 overflow: skipped " + skipped[0] + ", losses " + losses);
        assertEquals(fx.get("skipped_steps").asLong(), skipped[0], "skipped steps: " + losses);
        for (int i = 0; i <= skipped[0]; i++) {
            double e = expected.get(i).asDouble();
            assertEquals(e, losses.get(i), 0.01 * e, "loss at step " + (i + 1) + ": " + losses);
        }
        for (int i = 1; i < skipped[0]; i++) {
            assertEquals(losses.get(0), losses.get(i), "a skipped step leaves the weights: step " + (i + 1));
        }
        List<JsonNode> metrics = TrainerTest.metrics(out);
        assertTrue(metrics.get((int) skipped[0]).has("grad_norm"), metrics.get((int) skipped[0]).toString());
    }
}
