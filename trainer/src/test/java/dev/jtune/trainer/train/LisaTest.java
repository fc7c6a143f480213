package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import dev.jtune.data.dataset.Batch;
import dev.jtune.data.config.TrainerSettings;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.testkit.TinyLlama;
import dev.jtune.trainer.optim.AdamW;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Axolotl's LISA callback ({@link Lisa}) on full fine-tuning of the tiny Llama (4 decoder layers): after every step,
 * exactly the layers of the draw in effect have moved (the draws at global_step 0, 1 and each multiple of the
 * interval, by the callback's condition), every other layer is bit-identical to its value before the step,
 * everything outside the layers trains at every step; a layer drawn again continues from its kept AdamW state; the run
 * differs from plain full fine-tuning; and a run resumed from a checkpoint ends bit-identical to the uninterrupted one.
 */
class LisaTest {
    private static final List<Batch> TRAIN = TinySetup.batches(23, 2, 2, 16);
    private static final Lisa LISA = new Lisa(2, 3);
    private static final int STEPS = 7;

    @TempDir
    static Path dir;

    private static TrainerOptions options(Lisa lisa, String resume) {
        return TrainerOptions.defaults(3e-3).toBuilder().maxSteps(STEPS).lrScheduler("constant").warmupSteps(0)
                .loggingSteps(1).saveSteps(4).adam(new AdamW.Hyper(0.9, 0.999, 1e-8, 0.1)).lisa(lisa)
                .resumeFromCheckpoint(resume).handleSigterm(false).build();
    }

    /** The trainable tensors after each step (index 0: before training), and the console. */
    private record Run(List<Map<String, float[]>> after, String console) {}

    private static Run train(TrainerOptions o, Path out) throws IOException {
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 5)) {
            FullFineTuning ft = new FullFineTuning(model);
            List<Map<String, float[]>> after = new ArrayList<>();
            after.add(snapshot(ft));
            Trainer.afterStep = step -> after.add(snapshot(ft));
            var console = new ByteArrayOutputStream();
            try {
                Trainer.run(o, ft, BatchPlan.of(TRAIN), null, out, new PrintStream(console, true));
            } finally {
                Trainer.afterStep = null;
            }
            return new Run(after, console.toString());
        }
    }

    private static Map<String, float[]> snapshot(FullFineTuning ft) {
        Map<String, float[]> s = new LinkedHashMap<>();
        ft.parameters().forEach((k, v) -> s.put(k, v.toFloatArray()));
        return s;
    }

    /** The decoder layers whose tensors changed in step {@code k + 1}; fails if a layer changed only in part. */
    private static Set<Integer> moved(Run run, int k) {
        Set<Integer> layers = new TreeSet<>();
        Set<Integer> still = new TreeSet<>();
        for (String name : run.after().get(k).keySet()) {
            int layer = Lisa.layerOf(name);
            boolean changed = !Arrays.equals(run.after().get(k).get(name), run.after().get(k + 1).get(name));
            if (layer < 0) {
                assertTrue(changed, name + " (outside the layers) trains at every step; step " + (k + 1));
            } else if (changed) {
                layers.add(layer);
            } else {
                still.add(layer);
            }
        }
        Set<Integer> both = new TreeSet<>(layers);
        both.retainAll(still);
        assertEquals(Set.of(), both, "layers half moved in step " + (k + 1));
        return layers;
    }

    @Test
    void exactlyTheDrawnLayersTrainAtEachStep() throws IOException {
        Run run = train(options(LISA, null), dir.resolve("lisa"));
        long seed = TrainerOptions.defaults(1).seed();
        List<Set<Integer>> perStep = new ArrayList<>();
        for (int k = 0; k < STEPS; k++) {
            Set<Integer> expected = new TreeSet<>();
            for (int l : LISA.draw(seed, LISA.lastDraw(k), 4)) expected.add(l);
            assertEquals(2, expected.size());
            assertEquals(expected, moved(run, k), "layers trained in step " + (k + 1));
            perStep.add(expected);
        }
        // The callback's draws: before steps 1, 2 (global_step 0 and 1), 4 and 7 (3 and 6); steps 2-3 and 4-6 share.
        assertEquals(List.of(0L, 1L, 1L, 3L, 3L, 3L, 6L), java.util.stream.LongStream.range(0, STEPS)
                .map(LISA::lastDraw).boxed().toList());
        assertEquals(perStep.get(1), perStep.get(2));
        assertEquals(perStep.get(3), perStep.get(5));
        assertTrue(new HashSet<>(perStep).size() > 1, "the draws differ: " + perStep);
        assertTrue(run.console().contains("LISA: step 4 on, decoder layers"), run.console());
        // Frozen over a whole interval: a layer outside the draw of steps 4-6 is unchanged from after step 3 to 6.
        for (int layer = 0; layer < 4; layer++) {
            if (perStep.get(3).contains(layer)) continue;
            for (String name : run.after().get(3).keySet()) {
                if (Lisa.layerOf(name) == layer) {
                    assertArrayEquals(run.after().get(3).get(name), run.after().get(6).get(name), name);
                }
            }
        }

        Run plain = train(options(null, null), dir.resolve("plain"));
        for (int k = 0; k < STEPS; k++) assertEquals(Set.of(0, 1, 2, 3), moved(plain, k));
        String outside = "model.embed_tokens.weight";
        assertFalse(Arrays.equals(plain.after().get(STEPS).get(outside), run.after().get(STEPS).get(outside)),
                "LISA's run differs from plain full fine-tuning");

        // Resumed from checkpoint-4 (inside the interval of the draw at global_step 3): the same end, bit for bit.
        Run resumed = train(options(LISA, dir.resolve("lisa").resolve("checkpoint-4").toString()),
                dir.resolve("resumed"));
        for (var e : run.after().get(STEPS).entrySet()) {
            assertArrayEquals(e.getValue(), resumed.after().get(resumed.after().size() - 1).get(e.getKey()),
                    e.getKey() + " after resuming");
        }
    }

    @Test
    void drawsAreDistinctUniformAndRefuseTooMany() {
        Lisa lisa = new Lisa(3, 5);
        int[] counts = new int[8];
        for (long step = 0; step < 4000; step++) {
            int[] d = lisa.draw(42, step, 8);
            assertEquals(3, Arrays.stream(d).distinct().count());
            for (int l : d) counts[l]++;
        }
        // 12000 picks over 8 layers: 1500 each expected, binomial sd ~ 36.
        for (int c : counts) assertTrue(Math.abs(c - 1500) < 200, Arrays.toString(counts));
        var e = assertThrows(IllegalArgumentException.class, () -> new Lisa(5, 1).draw(42, 0, 4));
        assertTrue(e.getMessage().startsWith("lisa_n_layers: 5 is more than the model's 4 decoder layers"));
    }

    @Test
    void axolotlTurnsItOnWithBothCountsOnly() {
        assertTrue(Lisa.from(settings(Map.of("lisa_n_layers", 4L))).isEmpty());
        assertEquals(new Lisa(4, 20), Lisa.from(settings(Map.of("lisa_n_layers", 4L, "lisa_step_interval", 20L)))
                .orElseThrow());
        assertEquals("lisa_n_layers", Lisa.refusals(settings(Map.of("lisa_n_layers", 4L))).orElseThrow().key());
        assertTrue(Lisa.refusals(settings(Map.of("lisa_n_layers", 4L, "lisa_step_interval", 2L, "adapter", "lora")))
                .orElseThrow().message().contains("with adapter: lora is not supported"));
        assertTrue(Lisa.refusals(settings(Map.of("lisa_n_layers", 4L, "lisa_step_interval", 2L, "fsdp",
                List.of("full_shard")))).orElseThrow().message().contains("with fsdp is not supported"));
        assertEquals("lisa_layers_attribute", Lisa.refusals(settings(Map.of("lisa_n_layers", 4L, "lisa_step_interval",
                2L, "lisa_layers_attribute", "model.model.layers"))).orElseThrow().key());
        assertTrue(Lisa.refusals(settings(Map.of("lisa_n_layers", 4L, "lisa_step_interval", 2L,
                "lisa_layers_attribute", "model.layers"))).isEmpty());
    }

    private static TrainerSettings settings(Map<String, Object> values) {
        return new TrainerSettings(new LinkedHashMap<>(values));
    }
}
