package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.dataset.Batch;
import dev.jtune.data.dataset.Row;
import dev.jtune.data.dataset.Sample;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.hf.HfCheckpoint;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.trainer.optim.AdamW;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code use_eaft}: Axolotl's EAFT loss against its own function run by torch (fixture from
 * tools/reference/eaft_expected.py): the loss and its gradient with respect to the logits, masked labels, three
 * (alpha, k) settings; and two training steps with gradient accumulation, whose losses are the EAFT ones and not the
 * plain NLL's.
 */
class EaftTest {
    private static final Path FIXTURE_MODEL = Path.of("..", "model", "src", "test", "resources", "fixtures",
            "tiny-bf16-llama").toAbsolutePath();

    private static JsonNode fixture() throws IOException {
        try (InputStream in = EaftTest.class.getResourceAsStream("/fixtures/eaft_expected.json")) {
            return new ObjectMapper().readTree(in);
        }
    }

    private static int[] ints(JsonNode n) {
        int[] x = new int[n.size()];
        for (int i = 0; i < x.length; i++) x[i] = n.get(i).asInt();
        return x;
    }

    @Test
    void lossAndLogitGradientMatchAxolotl() throws IOException {
        JsonNode k = fixture().get("kernel");
        int b = k.get("shape").get(0).asInt(), t = k.get("shape").get(1).asInt(), v = k.get("shape").get(2).asInt();
        float[] logits = new float[b * t * v];
        for (int i = 0; i < logits.length; i++) logits[i] = (float) k.get("logits").get(i).asDouble();
        // jtune's shift (ForwardBackward.inputs): position i is trained on label i + 1, the last on nothing
        long[] labels = new long[b * t];
        for (int r = 0; r < b; r++) {
            for (int i = 0; i < t; i++) {
                labels[r * t + i] = i + 1 < t ? k.get("labels").get(r).get(i + 1).asLong() : Kernels.IGNORE_INDEX;
            }
        }
        long n = k.get("num_items_in_batch").asLong();
        for (JsonNode c : k.get("cases")) {
            try (NDManager m = Torch.newManager()) {
                NDArray x = m.create(logits, new Shape(b * t, v));
                x.setRequiresGradient(true);
                NDArray y = m.create(labels);
                double[] loss = new double[2];
                Autograd.withGrad(() -> {
                    var out = Kernels.get().eaftNllSum(x, y, c.get("alpha").asDouble(), c.get("k").asInt());
                    assertEquals(n, out.get(1).getLong(), "trained tokens");
                    NDArray l = out.get(0).div(m.full(new Shape(), (float) n));
                    loss[0] = l.getFloat();
                    Autograd.backward(l);
                    return null;
                });
                String what = "alpha " + c.get("alpha") + ", k " + c.get("k");
                double expected = c.get("loss").asDouble();
                assertEquals(expected, loss[0], 1e-5 * expected, what);
                assertTrue(Math.abs(expected - c.get("plain_loss").asDouble()) > 0.1, "the weighting matters: " + what);
                float[] grad = Autograd.gradient(x).toFloatArray();
                double worst = 0;
                for (int i = 0; i < grad.length; i++) {
                    worst = Math.max(worst, Math.abs(grad[i] - c.get("grad").get(i).asDouble()));
                }
                assertTrue(worst < 1e-6, what + ": largest gradient difference " + worst);
            }
        }
    }

    @Test
    void twoStepsWithAccumulationTrainOnTheEaftLoss(@TempDir Path out) throws IOException {
        JsonNode fx = fixture().get("training");
        List<Batch> batches = new ArrayList<>();
        for (int r = 0; r < fx.get("rows").size(); r++) {
            batches.add(TinySetup.collate(List.of(Row.of(new Sample(ints(fx.get("rows").get(r)),
                    ints(fx.get("labels").get(r)))))));
        }
        TrainerOptions.Builder o = TrainerOptions.defaults(fx.get("lr").asDouble()).toBuilder().maxSteps(2)
                .gradientAccumulationSteps(2).lrScheduler("constant").warmupSteps(0).loggingSteps(1)
                .maxGradNorm(fx.get("max_grad_norm").asDouble()).adam(new AdamW.Hyper(0.9, 0.999, 1e-8, 0.0))
                .handleSigterm(false);
        List<Double> eaft = train(o.eaft(new Eaft(fx.get("alpha").asDouble(), fx.get("k").asInt())).build(), batches,
                out.resolve("eaft"));
        List<Double> plain = train(o.eaft(null).build(), batches, out.resolve("plain"));
        for (int i = 0; i < 2; i++) {
            double e = fx.get("eaft_losses").get(i).asDouble();
            double p = fx.get("plain_losses").get(i).asDouble();
            assertEquals(e, eaft.get(i), 1e-4 * e, "EAFT loss at step " + (i + 1));
            assertEquals(p, plain.get(i), 1e-4 * p, "plain loss at step " + (i + 1));
            assertTrue(Math.abs(e - p) > 1, "the fixture's EAFT and plain losses differ");
        }
    }

    private static List<Double> train(TrainerOptions o, List<Batch> batches, Path out) throws IOException {
        try (NDManager m = Torch.newManager(); HfCheckpoint ckpt = HfCheckpoint.open(FIXTURE_MODEL);
                LlamaModel model = LlamaModel.load(ckpt.config(), ckpt, Dtype.FP32, m)) {
            ByteArrayOutputStream console = new ByteArrayOutputStream();
            TrainingResult r = Trainer.run(o, new FullFineTuning(model), BatchPlan.of(batches), null, out,
                    new PrintStream(console));
            // the opening line says which loss the logged figures are
            assertEquals(o.eaft() != null, console.toString().contains("EAFT loss (entropy^1.0 of the top-20 logits"),
                    console.toString());
            return r.losses();
        }
    }
}
