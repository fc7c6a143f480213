package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.testkit.TinyLlama;
import dev.jtune.trainer.optim.AdamW;
import dev.jtune.trainer.optim.Tensors;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code unfrozen_parameters} against Axolotl's own tests of {@code freeze_layers_except} (tests/test_freeze.py at
 * {@code AxolotlKeys.COMMIT}): a model with {@code features.layer} (10 rows) and {@code classifier}; which parameters
 * stay trainable and which gradient rows survive. Then a real training run: frozen tensors and frozen rows keep
 * their values, the rest moves.
 */
class UnfrozenParametersTest {
    private static final Map<String, Long> MODEL = new LinkedHashMap<>(Map.of("features.layer.weight", 10L,
            "classifier.weight", 10L));

    /** The rows of features.layer that keep their gradient (1) or lose it (0), as the Axolotl test lists them. */
    private static int[] rowsKept(List<String> patterns) {
        Map<String, UnfrozenParameters.FrozenRows> kept = UnfrozenParameters.parse(patterns).select(MODEL);
        assertTrue(kept.containsKey("features.layer.weight"));
        assertFalse(kept.containsKey("classifier.weight"));
        int[] rows = new int[10];
        java.util.Arrays.fill(rows, 1);
        for (long[] r : kept.get("features.layer.weight").ranges()) {
            for (long i = r[0]; i < r[1]; i++) rows[(int) i] = 0;
        }
        return rows;
    }

    @Test
    void namesAsAxolotlMatchesThem() {
        // test_freeze_layers_with_dots_in_name / without_dots / regex_patterns / all frozen / all unfrozen
        assertEquals(List.of("features.layer.weight"),
                List.copyOf(UnfrozenParameters.parse(List.of("features.layer")).select(MODEL).keySet()));
        assertEquals(List.of("classifier.weight"),
                List.copyOf(UnfrozenParameters.parse(List.of("classifier")).select(MODEL).keySet()));
        assertEquals(List.of("features.layer.weight"), List.copyOf(UnfrozenParameters.parse(
                List.of("^features.[a-z]+.weight$", "class[a-c]+")).select(MODEL).keySet()));
        assertTrue(UnfrozenParameters.parse(List.of()).select(MODEL).isEmpty());
        assertEquals(2, UnfrozenParameters.parse(List.of("features.layer", "classifier")).select(MODEL).size());
        // re.match: from the start of the name, not anywhere in it; a dot is a literal dot unless followed by +.
        assertTrue(UnfrozenParameters.parse(List.of("layer")).select(MODEL).isEmpty());
        assertTrue(UnfrozenParameters.parse(List.of("features_layer")).select(MODEL).isEmpty());
        assertEquals(1, UnfrozenParameters.parse(List.of(".+layer")).select(MODEL).size());
    }

    @Test
    void rowRangesAsAxolotlZeroesThem() {
        assertArrayEquals(new int[] {0, 1, 1, 1, 1, 0, 0, 0, 0, 0}, rowsKept(List.of("features.layer[1:5]")));
        assertArrayEquals(new int[] {0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, rowsKept(List.of("features.layer[5]")));
        assertArrayEquals(new int[] {1, 1, 1, 1, 1, 0, 0, 0, 0, 0}, rowsKept(List.of("features.layer[:5]")));
        assertArrayEquals(new int[] {0, 0, 0, 0, 1, 1, 1, 1, 1, 1}, rowsKept(List.of("features.layer[4:]")));
        assertArrayEquals(new int[] {0, 0, 0, 0, 1, 1, 1, 1, 1, 1},
                rowsKept(List.of("features.layer[4:]", "features.layer[5:6]")));
        assertArrayEquals(new int[] {0, 0, 0, 0, 1, 1, 1, 1, 0, 0},
                rowsKept(List.of("features.layer[4:7]", "features.layer[6:8]")));
        assertArrayEquals(new int[] {0, 1, 0, 1, 0, 1, 0, 0, 0, 0},
                rowsKept(List.of("features.layer[1:2]", "features.layer[3:4]", "features.layer[5:6]")));
        // A plain pattern beside a ranged one: the ranged one still limits the rows (Axolotl merges ranges only).
        assertArrayEquals(new int[] {0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
                rowsKept(List.of("features.layer", "features.layer[1:2]")));
        var e = assertThrows(IllegalArgumentException.class, () -> rowsKept(List.of("features.layer[5:3]")));
        assertTrue(e.getMessage().contains("features.layer[5:3]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> rowsKept(List.of("features.layer[8:12]")));
        assertTrue(e.getMessage().contains("invalid unfreeze range"), e.getMessage());
    }

    @Test
    void frozenTensorsAndRowsKeepTheirValues(@TempDir Path out) throws Exception {
        List<Batch> train = TinySetup.batches(1, 4, 2, 24);
        // No weight decay: a frozen row's update is then exactly zero, as in torch (zero gradient, zero moments).
        TrainerOptions o = TrainerOptions.defaults(1e-2).toBuilder().maxSteps(2).handleSigterm(false)
                .adam(new AdamW.Hyper(0.9, 0.999, 1e-8, 0.0)).build();
        String ranged = "model.layers.0.mlp.down_proj.weight";
        String whole = "model.layers.1.self_attn.q_proj.weight";
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            FullFineTuning full = new FullFineTuning(model);
            Map<String, float[]> before = new HashMap<>();
            full.parameters().forEach((k, v) -> before.put(k, Tensors.floats(v)));
            TrainableModel partly = UnfrozenParameters.parse(List.of("^" + ranged + "$[1:3]", whole))
                    .apply(full, n -> n, List.of(), false);
            assertEquals(List.of(ranged, whole), List.copyOf(partly.parameters().keySet()));
            Trainer.run(o, partly, BatchPlan.of(train), null, out, new PrintStream(new ByteArrayOutputStream()));
            long columns = full.parameters().get(ranged).getShape().get(1);
            float[] after = Tensors.floats(full.parameters().get(ranged));
            float[] was = before.get(ranged);
            for (int row = 0; row < after.length / columns; row++) {
                boolean moved = false;
                for (int c = 0; c < columns; c++) moved |= after[(int) (row * columns + c)] != was[(int) (row * columns + c)];
                assertEquals(row == 1 || row == 2, moved, "row " + row + " of " + ranged);
            }
            assertNotEquals(java.util.Arrays.hashCode(before.get(whole)),
                    java.util.Arrays.hashCode(Tensors.floats(full.parameters().get(whole))));
            for (var e : full.parameters().entrySet()) {
                if (e.getKey().equals(ranged) || e.getKey().equals(whole)) continue;
                assertArrayEquals(before.get(e.getKey()), Tensors.floats(e.getValue()), e.getKey() + " trained");
            }
        }
    }

    @Test
    void patternsForThePlainModelMatchNothingUnderAnAdapter() {
        // Axolotl's Gemma 3 QLoRA examples: written for the model's names, matched against the PEFT model's.
        List<String> gemma = List.of("^model.language_model.*", "^lm_head.*");
        String loraA = "base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight";
        try (NDManager m = Torch.newManager()) {
            Map<String, NDArray> params = Map.of(loraA, m.zeros(new ai.djl.ndarray.types.Shape(8, 64)));
            TrainableModel lora = new TrainableModel() {
                @Override
                public LlamaModel model() {
                    return null;
                }

                @Override
                public Map<String, NDArray> parameters() {
                    return params;
                }

                @Override
                public void saveWeights(Path dir) {}
            };
            java.util.function.UnaryOperator<String> peft = n -> n.replace(".weight", ".default.weight");
            var e = assertThrows(IllegalArgumentException.class,
                    () -> UnfrozenParameters.parse(gemma).apply(lora, peft, List.of(), true));
            assertTrue(e.getMessage().contains("All parameters are frozen"), e.getMessage());
            assertTrue(e.getMessage().contains(peft.apply(loraA)), e.getMessage());
            // The PEFT names train what they match; a base weight is refused.
            assertEquals(1, UnfrozenParameters.parse(List.of(".+lora_")).apply(lora, peft, List.of(), true)
                    .parameters().size());
            e = assertThrows(IllegalArgumentException.class, () -> UnfrozenParameters.parse(List.of(".+q_proj"))
                    .apply(lora, peft, List.of("base_model.model.model.language_model.layers.0.self_attn.q_proj"
                            + ".base_layer.weight"), true));
            assertTrue(e.getMessage().contains("base_layer.weight"), e.getMessage());
        }
    }
}
