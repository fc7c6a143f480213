package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.testkit.TinyLlama;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code loss_watchdog_threshold} / {@code loss_watchdog_patience} as Axolotl's LossWatchDogCallback: the rule on
 * log histories written by hand, then a run that stops where the rule, applied to an unwatched run's logged losses,
 * says it must.
 */
class LossWatchdogTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static JsonNode loss(double v) {
        return JSON.createObjectNode().put("step", 1).put("loss", v);
    }

    private static JsonNode evalLine() {
        return JSON.createObjectNode().put("step", 1).put("eval_loss", 9.0);
    }

    @Test
    void theCallbacksRule() {
        LossWatchdog w = new LossWatchdog(2.0, 0); // patience default 3
        assertFalse(w.stepEnded(null)); // no log yet
        assertFalse(w.stepEnded(loss(3.0)));
        assertFalse(w.stepEnded(evalLine())); // an eval line neither counts nor resets
        assertFalse(w.stepEnded(loss(3.0)));
        assertTrue(w.stepEnded(loss(3.0))); // the third
        LossWatchdog v = new LossWatchdog(2.0, 2);
        assertFalse(v.stepEnded(loss(3.0)));
        assertFalse(v.stepEnded(loss(2.0))); // at the threshold: not above, resets
        assertFalse(v.stepEnded(loss(2.5)));
        assertTrue(v.stepEnded(loss(2.5))); // the same logged line seen at two steps (logging_steps 2) counts twice
    }

    /** Where the callback stops a run whose step k logs {@code logged[k-1]} (logging_steps 1): 0 for never. */
    private static long reference(List<Double> logged, double threshold, int patience) {
        int violations = 0;
        for (int k = 1; k <= logged.size(); k++) {
            if (k == 1) continue; // on_step_end of step 1: the history is empty (no eval before the first step)
            if (logged.get(k - 2) > threshold) {
                if (++violations >= patience) return k;
            } else {
                violations = 0;
            }
        }
        return 0;
    }

    @Test
    void stopsWhereTheRuleSays(@TempDir Path tmp) throws Exception {
        List<Batch> train = TinySetup.batches(1, 10, 2, 24);
        TrainerOptions o = TrainerOptions.defaults(3e-3).toBuilder().maxSteps(10).loggingSteps(1).handleSigterm(false)
                .build();
        List<Double> losses;
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            losses = Trainer.run(o, new FullFineTuning(model), BatchPlan.of(train), null, tmp.resolve("a"), quiet())
                    .losses();
        }
        // A threshold that the first losses exceed and a later one does not: the rule has both branches to take.
        List<Double> sorted = new ArrayList<>(losses);
        sorted.sort(null);
        double threshold = sorted.get(3);
        long expected = reference(losses, threshold, 2);
        assertTrue(expected > 0 && expected < 10, losses + " with threshold " + threshold);
        var console = new ByteArrayOutputStream();
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            TrainingResult r = Trainer.run(o.toBuilder().lossWatchdog(threshold, 2).build(), new FullFineTuning(model),
                    BatchPlan.of(train), null, tmp.resolve("b"), new PrintStream(console, true, StandardCharsets.UTF_8));
            assertEquals(expected, r.globalStep());
            assertEquals(losses.subList(0, (int) expected), r.losses());
        }
        assertTrue(console.toString(StandardCharsets.UTF_8).contains("Loss is too high"), console.toString());
    }

    private static PrintStream quiet() {
        return new PrintStream(new ByteArrayOutputStream());
    }
}
