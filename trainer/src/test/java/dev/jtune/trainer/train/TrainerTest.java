package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.testkit.TinyLlama;
import dev.jtune.trainer.optim.LrSchedule;
import dev.jtune.trainer.optim.Tensors;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainerTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    static List<JsonNode> metrics(Path dir) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve(Trainer.METRICS_FILE))) {
            out.add(JSON.readTree(line));
        }
        return out;
    }

    private static PrintStream quiet() {
        return new PrintStream(new ByteArrayOutputStream());
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void logsEvaluatesAndCheckpointsAsConfigured(@TempDir Path out) throws IOException {
        List<Batch> train = TinySetup.batches(1, 8, 2, 24);
        List<Batch> eval = TinySetup.batches(2, 2, 2, 24);
        TrainerOptions o = TrainerOptions.defaults(3e-3).toBuilder().gradientAccumulationSteps(2).numEpochs(2)
                .lrScheduler("linear").warmupSteps(2).loggingSteps(1).evalSteps(4).saveSteps(2).saveTotalLimit(2)
                .handleSigterm(false).build();
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            TrainingResult r = Trainer.run(o, new FullFineTuning(model), BatchPlan.of(train), BatchPlan.of(eval), out,
                    quiet());
            assertEquals(8, r.globalStep());
            LrSchedule schedule = new LrSchedule.Linear(2, 8);
            List<JsonNode> lines = metrics(out);
            List<JsonNode> steps = lines.stream().filter(n -> n.has("loss")).toList();
            List<JsonNode> evals = lines.stream().filter(n -> n.has("eval_loss")).toList();
            assertEquals(8, steps.size());
            for (int k = 0; k < 8; k++) {
                JsonNode n = steps.get(k);
                assertEquals(k + 1, n.get("step").asLong());
                assertEquals(3e-3 * schedule.factor(k), n.get("learning_rate").asDouble(), 0.0);
                assertEquals((k + 1) / 4.0, n.get("epoch").asDouble(), 1e-12);
                assertEquals(r.losses().get(k), n.get("loss").asDouble(), 0.0);
                for (String key : List.of("grad_norm", "tokens_per_second", "trained_tokens_per_second",
                        "memory_rss_mb", "eta_seconds", "tokens", "trained_tokens", "step_seconds")) {
                    assertTrue(n.get(key).isNumber(), key + " in " + n);
                }
                // One step per line here: the counts and the step's time give the rates.
                assertEquals(n.get("tokens").asDouble() / n.get("step_seconds").asDouble(),
                        n.get("tokens_per_second").asDouble(), 1e-9 * n.get("tokens_per_second").asDouble());
                assertEquals(n.get("trained_tokens").asDouble() / n.get("step_seconds").asDouble(),
                        n.get("trained_tokens_per_second").asDouble(),
                        1e-9 * n.get("trained_tokens_per_second").asDouble());
            }
            // Step 1 runs at lr 0 (warmup): the weights do not move, so step 2 would see them unchanged.
            assertTrue(r.losses().get(7) < r.losses().get(0), "loss went down: " + r.losses());
            // Step 0 is the baseline before training (a fresh run), then every eval_steps and the last step.
            assertEquals(List.of(0L, 4L, 8L), evals.stream().map(n -> n.get("step").asLong()).toList());
            assertEquals(evals.get(0).get("eval_loss").asDouble(), r.initialEvalLoss().getAsDouble(), 0.0);
            for (JsonNode e : evals) {
                assertEquals(Math.exp(e.get("eval_loss").asDouble()), e.get("eval_perplexity").asDouble(), 1e-9);
            }
            // The final eval loss against an independent computation on the trained model.
            double nll = 0;
            long tokens = 0;
            for (Batch b : eval) {
                nll += ForwardBackwardTest.referenceNll(model, b, m);
                tokens += b.trainedTokens();
            }
            assertEquals(nll / tokens, evals.get(2).get("eval_loss").asDouble(), 1e-5);
            assertEquals(nll / tokens, r.evalLoss().getAsDouble(), 1e-5);

            assertEquals(List.of("checkpoint-6", "checkpoint-8", "metrics.jsonl"), names(out));
            Path ckpt = out.resolve("checkpoint-8");
            assertEquals(List.of("config.json", "data_state.json", "model.safetensors", "optimizer.safetensors",
                    "rng_state.json", "scheduler.json", "trainer_state.json"), names(ckpt));
            JsonNode state = JSON.readTree(ckpt.resolve("trainer_state.json").toFile());
            assertEquals(8, state.get("global_step").asLong());
            assertEquals(8, state.get("max_steps").asLong());
            assertEquals(2.0, state.get("epoch").asDouble());
            assertEquals(11, state.get("log_history").size()); // 8 steps, 3 evals (0, 4, 8)
            assertTrue(state.get("best_metric").isNull());
            JsonNode sched = JSON.readTree(ckpt.resolve("scheduler.json").toFile());
            assertEquals(8, sched.get("last_epoch").asLong());
            // The saved weights are the trained ones.
            try (var f = dev.jtune.model.safetensors.SafetensorsFile.open(ckpt.resolve("model.safetensors"))) {
                assertTrue(Arrays.equals(model.norm().toFloatArray(), f.floats("model.norm.weight")));
            }
        }
    }

    @Test
    void sameSeedSameLossesBitForBitAndCheckpointingAgrees(@TempDir Path out) throws IOException {
        List<Batch> train = TinySetup.batches(4, 6, 2, 20);
        TrainerOptions o = TrainerOptions.defaults(2e-3).toBuilder().gradientAccumulationSteps(2).maxSteps(5)
                .loggingSteps(1).handleSigterm(false).build();
        List<List<Double>> runs = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            TrainerOptions oi = i < 2 ? o : o.toBuilder().gradientCheckpointing(true).build();
            try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 9)) {
                runs.add(Trainer.run(oi, new FullFineTuning(model), BatchPlan.of(train), null, out.resolve("r" + i),
                        quiet()).losses());
            }
        }
        assertEquals(5, runs.get(0).size());
        assertEquals(runs.get(0), runs.get(1));
        for (int k = 0; k < 5; k++) {
            assertEquals(runs.get(0).get(k), runs.get(2).get(k), 1e-5, "checkpointing, step " + k);
        }
    }

    @Test
    void stepsDoNotLeakNativeArrays(@TempDir Path out) throws IOException {
        List<Batch> train = TinySetup.batches(5, 4, 2, 16);
        TrainerOptions o = TrainerOptions.defaults(1e-3).toBuilder().gradientAccumulationSteps(2).maxSteps(30)
                .loggingSteps(10).saveSteps(15).handleSigterm(false).gradientCheckpointing(true).build();
        long[] counts = new long[31];
        NDManager system;
        try (NDManager probe = Torch.newManager()) {
            system = probe.getParentManager();
        }
        Trainer.afterStep = step -> counts[(int) step] = system.getManagedArrays().size();
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 2)) {
            int modelArrays = m.getManagedArrays().size();
            Trainer.run(o, new FullFineTuning(model), BatchPlan.of(train), null, out, quiet());
            assertEquals(modelArrays, m.getManagedArrays().size(), "arrays left in the model's manager");
        } finally {
            Trainer.afterStep = null;
        }
        assertTrue(counts[5] > 0);
        assertEquals(counts[5], counts[30], "live arrays after step 5 vs step 30: " + Arrays.toString(counts));
    }

    @Test
    void nanLossStopsNamingTheStepAndKeepsTheLastCheckpoint(@TempDir Path out) throws IOException {
        List<Batch> train = TinySetup.batches(6, 6, 1, 16);
        TrainerOptions o = TrainerOptions.defaults(1e-3).toBuilder().maxSteps(6).saveSteps(1).loggingSteps(1)
                .handleSigterm(false).build();
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 3)) {
            NDArray embed = model.embedTokens();
            BatchPlan poisoned = new BatchPlan() {
                @Override
                public int batchesPerEpoch() {
                    return train.size();
                }

                @Override
                public Batch batch(int epoch, int index) {
                    if (index == 2) {
                        float[] w = embed.toFloatArray();
                        Arrays.fill(w, Float.NaN);
                        Tensors.overwrite(embed, w, "embed");
                    }
                    return train.get(index);
                }
            };
            var e = assertThrows(TrainingDivergedException.class,
                    () -> Trainer.run(o, new FullFineTuning(model), poisoned, null, out, quiet()));
            assertEquals(3, e.step());
            assertTrue(e.getMessage().startsWith("step 3: loss is NaN"), e.getMessage());
            assertTrue(e.getMessage().contains("checkpoint-2"), e.getMessage());
        }
        assertEquals(List.of("checkpoint-1", "checkpoint-2", "metrics.jsonl"), names(out));
    }

    @Test
    void adaptersOnBf16AndFp16BasesTrainTheirFp32Parameters(@TempDir Path out) throws IOException {
        List<Batch> train = TinySetup.batches(7, 4, 2, 16);
        for (Dtype dtype : List.of(Dtype.BF16, Dtype.FP16)) {
            TrainerOptions o = TrainerOptions.defaults(1e-2).toBuilder().maxSteps(4).loggingSteps(1).precision(dtype)
                    .handleSigterm(false).build();
            try (NDManager m = Torch.newManager()) {
                TinySetup.TinyAdapter a = TinySetup.TinyAdapter.load(m, 4, dtype, 4);
                NDArray someB = a.params.values().stream().skip(1).findFirst().orElseThrow();
                float[] before = someB.toFloatArray();
                Path dir = out.resolve(dtype.label());
                TrainingResult r = Trainer.run(o, a, BatchPlan.of(train), null, dir, quiet());
                assertEquals(4, r.globalStep());
                r.losses().forEach(l -> assertTrue(Double.isFinite(l), dtype + " loss " + l));
                assertFalse(Arrays.equals(before, someB.toFloatArray()), dtype + ": adapter B did not move");
                assertTrue(Files.exists(dir.resolve("checkpoint-4").resolve("adapter_model.safetensors")));
                if (dtype == Dtype.FP16) {
                    assertTrue(Files.exists(dir.resolve("checkpoint-4").resolve("scaler.json")));
                    // Each skipped step halves the scale from torch's initial 65536.
                    for (JsonNode n : metrics(dir)) {
                        assertEquals(65536.0, n.get("loss_scale").asDouble() * (1L << n.get("skipped_steps").asLong()),
                                0.0, n.toString());
                    }
                }
                a.model.close();
            }
        }
    }

    /**
     * fp16 weights train in place only under float16: true (no loss scaling); with fp16: true (torch AMP) the trainer
     * refuses them before any step, as torch's GradScaler refuses to unscale fp16 gradients.
     */
    @Test
    void fp16WeightsTrainOnlyUnderFloat16(@TempDir Path dir) throws IOException {
        try (NDManager m = Torch.newManager();
                LlamaModel model = TinyLlama.load(TinyLlama.preset(), 1, Dtype.FP16, m)) {
            FullFineTuning ft = new FullFineTuning(model);
            TrainerOptions amp = TrainerOptions.defaults(1e-3).toBuilder().maxSteps(1).precision(Dtype.FP16)
                    .handleSigterm(false).build();
            var e = assertThrows(IllegalArgumentException.class, () -> Trainer.run(amp, ft,
                    BatchPlan.of(TinySetup.batches(1, 1, 1, 8)), null, dir.resolve("amp"),
                    new java.io.PrintStream(java.io.OutputStream.nullOutputStream())));
            assertTrue(e.getMessage().contains("is fp16") && e.getMessage().contains("fp16 with float16: true"),
                    e.getMessage());
        }
    }
}
