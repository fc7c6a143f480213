package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import dev.jtune.data.config.TrainerSettings;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.safetensors.SafetensorsFile;
import dev.jtune.testkit.TinyLlama;
import dev.jtune.trainer.optim.Tensors;
import java.io.ByteArrayOutputStream;
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
 * {@code early_stopping_patience} and {@code load_best_model_at_end}: a run without them gives the eval losses of
 * every step; the reference rule (transformers' EarlyStoppingCallback and {@code _determine_best_metric}, written
 * out below as its Python reads) says where a run with them stops and which checkpoint it ends on; the run with
 * them must stop there, with the same losses up to that step, and end on that checkpoint's weights.
 */
class EarlyStoppingTest {
    private static final List<Batch> TRAIN = TinySetup.batches(1, 12, 2, 24);
    private static final List<Batch> EVAL = TinySetup.batches(9, 2, 2, 24);
    private static final int STEPS = 12;

    private static TrainerOptions options() {
        // A high learning rate: the held-out loss falls, then rises and wanders, so the rule has something to do.
        return TrainerOptions.defaults(0.004).toBuilder().maxSteps(STEPS).lrScheduler("constant").evalSteps(1)
                .saveSteps(2).loggingSteps(1).handleSigterm(false).build();
    }

    /** The eval_loss lines of a run's metrics.jsonl, step → loss. */
    private static Map<Long, Double> evals(Path out) throws Exception {
        Map<Long, Double> m = new LinkedHashMap<>();
        for (JsonNode n : TrainerTest.metrics(out)) {
            if (n.has("eval_loss")) m.put(n.get("step").asLong(), n.get("eval_loss").asDouble());
        }
        return m;
    }

    /** The reference: EarlyStoppingCallback.on_evaluate then Trainer._determine_best_metric, per evaluation. */
    private static long[] reference(Map<Long, Double> evals, int patience, long saveEvery) {
        Double best = null; // state.best_metric
        long bestStep = -1;
        long bestCheckpoint = -1;
        int counter = 0;
        for (var e : evals.entrySet()) {
            long step = e.getKey();
            double v = e.getValue();
            if (best == null || (v < best && Math.abs(v - best) > 0.0)) counter = 0;
            else counter++;
            if (step == 0) continue; // eval_on_start: _evaluate only, no best-metric update, no stop check effect
            if (best == null) best = Double.POSITIVE_INFINITY;
            if (v < best) {
                best = v;
                bestStep = step;
            }
            if (step % saveEvery == 0 && bestStep >= 0 && bestStep % saveEvery == 0) bestCheckpoint = bestStep;
            if (counter >= patience) return new long[] {step, bestCheckpoint};
        }
        return new long[] {-1, bestCheckpoint};
    }

    @Test
    void stopsWhereTheReferenceRuleSaysAndEndsOnTheBestCheckpoint(@TempDir Path tmp) throws Exception {
        int patience = 3;
        Map<Long, Double> full;
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            Trainer.run(options(), new FullFineTuning(model), BatchPlan.of(TRAIN), BatchPlan.of(EVAL),
                    tmp.resolve("full"), quiet());
            full = evals(tmp.resolve("full"));
        }
        assertEquals(STEPS + 1, full.size(), full.toString());
        long[] expected = reference(full, patience, 2);
        long stopAt = expected[0];
        assertTrue(stopAt > 0 && stopAt < STEPS, "the full run's eval losses must trigger a stop: " + full);
        assertTrue(expected[1] > 0, "a best checkpoint: " + full);

        Path out = tmp.resolve("early");
        TrainingResult r;
        Map<String, float[]> weights = new LinkedHashMap<>();
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            FullFineTuning ft = new FullFineTuning(model);
            r = Trainer.run(options().toBuilder().earlyStoppingPatience(patience).loadBestModelAtEnd(true).build(), ft,
                    BatchPlan.of(TRAIN), BatchPlan.of(EVAL), out, quiet());
            ft.parameters().forEach((k, v) -> weights.put(k, Tensors.floats(v)));
        }
        assertEquals(stopAt, r.globalStep());
        Map<Long, Double> early = evals(out);
        List<Long> steps = new ArrayList<>(full.keySet()).subList(0, (int) stopAt + 1);
        assertEquals(steps, List.copyOf(early.keySet()));
        for (long s : steps) assertEquals(full.get(s), early.get(s), 0.0, "eval loss at step " + s);
        // load_best_model_at_end: the weights are the best checkpoint's, not the last step's.
        Path best = out.resolve("checkpoint-" + expected[1]);
        try (SafetensorsFile f = SafetensorsFile.open(best.resolve("model.safetensors"))) {
            for (var e : weights.entrySet()) assertArrayEquals(f.floats(e.getKey()), e.getValue(), e.getKey());
        }
        assertFalse(Files.exists(out.resolve("checkpoint-" + STEPS)));
    }

    @Test
    void aResumedRunStopsAndEndsAsTheUninterruptedOne(@TempDir Path tmp) throws Exception {
        TrainerOptions o = options().toBuilder().earlyStoppingPatience(3).loadBestModelAtEnd(true).build();
        Map<String, float[]> whole = new LinkedHashMap<>();
        TrainingResult r;
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            FullFineTuning ft = new FullFineTuning(model);
            r = Trainer.run(o, ft, BatchPlan.of(TRAIN), BatchPlan.of(EVAL), tmp.resolve("a"), quiet());
            ft.parameters().forEach((k, v) -> whole.put(k, Tensors.floats(v)));
        }
        assertTrue(r.globalStep() > 8 && r.globalStep() < STEPS, "stops after the resume point: " + r.globalStep());
        // The same run stopped after step 8 (two evaluations into its patience, its best at step 6): its output
        // folder as it was then, resumed. Without the state rebuilt from the log history it would not stop at 9.
        Path b = tmp.resolve("b");
        Files.createDirectories(b);
        for (String c : List.of("checkpoint-6", "checkpoint-8")) {
            Path from = tmp.resolve("a").resolve(c);
            Files.createDirectories(b.resolve(c));
            try (var files = Files.list(from)) {
                for (Path f : files.toList()) Files.copy(f, b.resolve(c).resolve(f.getFileName()));
            }
        }
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            FullFineTuning ft = new FullFineTuning(model);
            TrainingResult resumed = Trainer.run(o.toBuilder().resumeFromCheckpoint("auto").build(), ft,
                    BatchPlan.of(TRAIN), BatchPlan.of(EVAL), b, quiet());
            assertEquals(r.globalStep(), resumed.globalStep());
            for (var e : ft.parameters().entrySet()) {
                assertArrayEquals(whole.get(e.getKey()), Tensors.floats(e.getValue()), e.getKey());
            }
        }
    }

    @Test
    void withoutItTheRunGoesToTheEnd(@TempDir Path tmp) throws Exception {
        // The same options but no patience: every step, and the last weights (checked against the last checkpoint).
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            FullFineTuning ft = new FullFineTuning(model);
            TrainingResult r = Trainer.run(options(), ft, BatchPlan.of(TRAIN), BatchPlan.of(EVAL), tmp, quiet());
            assertEquals(STEPS, r.globalStep());
            try (SafetensorsFile f = SafetensorsFile.open(tmp.resolve("checkpoint-" + STEPS + "/model.safetensors"))) {
                for (var e : ft.parameters().entrySet()) {
                    assertArrayEquals(f.floats(e.getKey()), Tensors.floats(e.getValue()), e.getKey());
                }
            }
        }
    }

    @Test
    void axolotlsChecksOnTheKeys() {
        var e = assertThrows(IllegalArgumentException.class, () -> TrainerOptions.from(new TrainerSettings(Map.of(
                "learning_rate", 1e-3, "early_stopping_patience", 2L, "eval_steps", 10.0)), 1, false));
        assertTrue(e.getMessage().contains("early_stopping_patience requires save_steps and eval_steps"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TrainerOptions.from(new TrainerSettings(Map.of(
                "learning_rate", 1e-3, "early_stopping_patience", 2L, "eval_steps", 10.0, "save_steps", 15.0)), 1, false));
        assertTrue(e.getMessage().contains("evenly divide"), e.getMessage());
        TrainerOptions o = TrainerOptions.from(new TrainerSettings(Map.of("learning_rate", 1e-3,
                "early_stopping_patience", 2L, "eval_steps", 10.0, "save_steps", 20.0)), 1, false);
        assertTrue(o.loadBestModelAtEnd(), "implied by early_stopping_patience, as Axolotl passes it");
        // load_best_model_at_end alone, without save_steps: Axolotl passes false.
        assertFalse(TrainerOptions.from(new TrainerSettings(Map.of("learning_rate", 1e-3, "load_best_model_at_end", true,
                "eval_steps", 10.0)), 1, false).loadBestModelAtEnd());
        // No held-out data: the callback could never see an eval loss.
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            var ex = assertThrows(IllegalArgumentException.class, () -> Trainer.run(o, new FullFineTuning(model),
                    BatchPlan.of(TRAIN), null, Path.of("unused-out"), quiet()));
            assertTrue(ex.getMessage().contains("val_set_size"), ex.getMessage());
        }
    }

    private static PrintStream quiet() {
        return new PrintStream(new ByteArrayOutputStream());
    }
}
