package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.hf.HfCheckpoint;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.trainer.optim.AdamW;
import dev.jtune.trainer.optim.Gradients;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Axolotl's DiffusionPlugin objective against its own code run by torch (fixture from
 * tools/reference/diffusion_expected.py, Axolotl 067b021's {@code _forward_process} and
 * {@code _compute_diffusion_loss} verbatim), with the fixture's random draws injected ({@link DiffusionDraw}): the
 * masked positions and noisy ids, the loss and the gradients of one packed, padded micro-batch of the tiny model
 * (two settings; with and without gradient checkpointing), and two optimizer steps with gradient accumulation.
 */
class DiffusionTest {
    private static final Path FIXTURE_MODEL = Path.of("..", "model", "src", "test", "resources", "fixtures",
            "tiny-bf16-llama").toAbsolutePath();

    private static JsonNode fixture() throws IOException {
        try (InputStream in = DiffusionTest.class.getResourceAsStream("/fixtures/diffusion_expected.json")) {
            return new ObjectMapper().readTree(in);
        }
    }

    private static float[] floats(JsonNode n) {
        float[] x = new float[n.size()];
        for (int i = 0; i < x.length; i++) x[i] = (float) n.get(i).asDouble();
        return x;
    }

    /**
     * Axolotl's packed collation (attention_mask = 1-based sample id, 0 on padding) as jtune's {@link Batch}: samples
     * numbered from 0, padding one past the row's last sample.
     */
    static Batch batch(JsonNode b) {
        int rows = b.get("ids").size();
        int len = b.get("ids").get(0).size();
        int n = rows * len;
        int[] ids = new int[n], labels = new int[n], pos = new int[n], seg = new int[n], mask = new int[n];
        boolean packed = false;
        for (int r = 0; r < rows; r++) {
            int samples = 0;
            for (int i = 0; i < len; i++) samples = Math.max(samples, b.get("segments").get(r).get(i).asInt());
            packed |= samples > 1;
            int p = 0;
            for (int i = 0; i < len; i++) {
                int at = r * len + i;
                int s = b.get("segments").get(r).get(i).asInt();
                ids[at] = b.get("ids").get(r).get(i).asInt();
                labels[at] = b.get("labels").get(r).get(i).asInt();
                mask[at] = s == 0 ? 0 : 1;
                seg[at] = s == 0 ? samples : s - 1;
                p = i > 0 && seg[at] != seg[at - 1] ? 0 : p;
                pos[at] = p++;
            }
        }
        return new Batch(rows, len, ids, labels, pos, seg, mask, packed);
    }

    private static Set<Integer> special(JsonNode fx) {
        Set<Integer> s = new HashSet<>();
        fx.get("special_ids").forEach(n -> s.add(n.asInt()));
        return s;
    }

    /** A draw that replays the fixture's, in order: the k-th micro-batch run gets the k-th (t, u). */
    private static DiffusionDraw replay(List<float[][]> draws) {
        int[] next = {0};
        return (step, micro, t, u) -> {
            float[][] d = draws.get(next[0]++);
            assertEquals(t.length, d[0].length);
            assertEquals(u.length, d[1].length);
            System.arraycopy(d[0], 0, t, 0, t.length);
            System.arraycopy(d[1], 0, u, 0, u.length);
        };
    }

    @Test
    void forwardProcessMasksWhatAxolotlMasks() throws IOException {
        JsonNode fx = fixture();
        Batch b = batch(fx.get("micro").get("batch"));
        for (JsonNode c : fx.get("micro").get("cases")) {
            DiffusionNoise noise = DiffusionNoise.of(b, c.get("eps").asDouble(), fx.get("mask_token_id").asInt(),
                    special(fx), floats(c.get("t")), floats(c.get("u")));
            int[] masked = new int[noise.masked().length];
            for (int i = 0; i < masked.length; i++) masked[i] = noise.masked()[i] ? 1 : 0;
            int[] expectedMasked = new int[masked.length];
            int[] expectedNoisy = new int[masked.length];
            for (int i = 0; i < masked.length; i++) {
                expectedMasked[i] = c.get("masked").get(i).asInt();
                expectedNoisy[i] = c.get("noisy").get(i).asInt();
            }
            assertArrayEquals(expectedMasked, masked, "masked positions, eps " + c.get("eps"));
            assertArrayEquals(expectedNoisy, noise.noisy(), "noisy ids, eps " + c.get("eps"));
            assertArrayEquals(floats(c.get("p_mask")), noise.pMask(), "p_mask, eps " + c.get("eps"));
            assertTrue(noise.maskedCount() >= 3, "the fixture masks something");
        }
    }

    @Test
    void lossAndGradientsMatchAxolotl() throws IOException {
        JsonNode fx = fixture();
        Batch b = batch(fx.get("micro").get("batch"));
        for (boolean checkpointing : new boolean[] {false, true}) {
            for (JsonNode c : fx.get("micro").get("cases")) {
                String what = "eps " + c.get("eps") + ", importance " + c.get("importance_weighting")
                        + (checkpointing ? ", checkpointing" : "");
                Diffusion d = new Diffusion(c.get("eps").asDouble(), c.get("importance_weighting").asBoolean(),
                        fx.get("mask_token_id").asInt(), special(fx),
                        replay(List.<float[][]>of(new float[][] {floats(c.get("t")), floats(c.get("u"))})));
                try (NDManager m = Torch.newManager(); HfCheckpoint ckpt = HfCheckpoint.open(FIXTURE_MODEL);
                        LlamaModel model = LlamaModel.load(ckpt.config(), ckpt, Dtype.FP32, m)) {
                    FullFineTuning ft = new FullFineTuning(model);
                    ft.parameters().values().forEach(p -> p.setRequiresGradient(true));
                    Gradients.zero(ft.parameters().values());
                    ForwardBackward fb = new ForwardBackward(model, checkpointing, 7, ForwardBackward.LayerHooks.NONE,
                            null, d);
                    ForwardBackward.Result r = fb.run(b, 1, 1.0, true, 0, 0, m);
                    double expected = c.get("loss").asDouble();
                    assertEquals(expected, r.nllSum(), 2e-6 * expected, what + ": loss");
                    Map<String, float[]> grads = ForwardBackwardTest.grads(ft.parameters());
                    var norms = c.get("grad_norms");
                    assertEquals(norms.size(), grads.size(), "every parameter has a gradient");
                    norms.fieldNames().forEachRemaining(name -> {
                        double sq = 0;
                        for (float g : grads.get(name)) sq += (double) g * g;
                        double e = norms.get(name).asDouble();
                        assertEquals(e, Math.sqrt(sq), 1e-4 * e + 1e-9, what + ": gradient norm of " + name);
                    });
                    c.get("grads").fieldNames().forEachRemaining(name -> {
                        float[] e = floats(c.get("grads").get(name));
                        float[] g = grads.get(name);
                        double scale = 0;
                        for (float x : e) scale = Math.max(scale, Math.abs(x));
                        for (int i = 0; i < e.length; i++) {
                            assertEquals(e[i], g[i], 1e-4 * scale, what + ": " + name + "[" + i + "]");
                        }
                    });
                }
            }
        }
    }

    @Test
    void twoStepsWithAccumulationLogAxolotlsLosses(@TempDir Path out) throws IOException {
        JsonNode fx = fixture();
        JsonNode tr = fx.get("training");
        List<Batch> batches = new ArrayList<>();
        tr.get("batches").forEach(b -> batches.add(batch(b)));
        List<float[][]> draws = new ArrayList<>();
        tr.get("draws").forEach(d -> draws.add(new float[][] {floats(d.get("t")), floats(d.get("u"))}));
        Diffusion d = new Diffusion(tr.get("eps").asDouble(), tr.get("importance_weighting").asBoolean(),
                fx.get("mask_token_id").asInt(), special(fx), replay(draws));
        TrainerOptions o = TrainerOptions.defaults(tr.get("lr").asDouble()).toBuilder().maxSteps(2)
                .gradientAccumulationSteps(tr.get("gradient_accumulation_steps").asInt()).lrScheduler("constant")
                .warmupSteps(0).loggingSteps(1).maxGradNorm(tr.get("max_grad_norm").asDouble())
                .adam(new AdamW.Hyper(0.9, 0.999, 1e-8, 0.0)).handleSigterm(false).diffusion(d).build();
        try (NDManager m = Torch.newManager(); HfCheckpoint ckpt = HfCheckpoint.open(FIXTURE_MODEL);
                LlamaModel model = LlamaModel.load(ckpt.config(), ckpt, Dtype.FP32, m)) {
            ByteArrayOutputStream console = new ByteArrayOutputStream();
            TrainingResult r = Trainer.run(o, new FullFineTuning(model), BatchPlan.of(batches), null, out,
                    new PrintStream(console));
            assertTrue(console.toString().contains("diffusion objective (mask token 200"), console.toString());
            for (int i = 0; i < 2; i++) {
                double e = tr.get("losses").get(i).asDouble();
                assertEquals(e, r.losses().get(i), 1e-4 * e, "logged loss at step " + (i + 1));
            }
        }
    }
}
