package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.data.dataset.Batch;
import dev.jtune.lora.LoraLinear;
import dev.jtune.lora.LoraModel;
import dev.jtune.lora.LoraSettings;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.hf.HfCheckpoint;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.safetensors.HalfFloats;
import dev.jtune.model.safetensors.SafetensorsFile;
import dev.jtune.quant.Nf4;
import dev.jtune.quant.Nf4Linear;
import dev.jtune.quant.Nf4Quantizer;
import dev.jtune.trainer.optim.AdamW;
import dev.jtune.trainer.optim.JaggedRestarts;
import dev.jtune.trainer.optim.LrSchedule;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Axolotl's ReLoRA restart ({@link ReLora}) on the tiny Qwen3 fixture: the merge against {@code W + (alpha/r)·B·A}
 * computed here in double (dense base) and against the NF4 re-quantization of {@code W_last + delta} with the fp16
 * last-save rule (NF4 base, two restarts); the fresh A (jtune's initialiser for the restart's seed) and zero B; the
 * optimizer pruning rule against torch.quantile's linear interpolation worked by hand; and a whole run whose learning
 * rates follow the jagged schedule and which ends in a merged model.
 */
class ReLoraTest {
    private static final Path FIXTURE = Path.of("..", "model", "src", "test", "resources", "fixtures", "families",
            "qwen3").toAbsolutePath();
    private static final List<Batch> DATA = TinySetup.batches(13, 4, 2, 16);
    private static final long SEED = 5;
    private static final ReLora.Settings SETTINGS = new ReLora.Settings(new JaggedRestarts(2, 1, 1, 0.001), true, true,
            0.9);

    @TempDir
    static Path dir;

    private static LoraSettings settings(LoraSettings.Adapter adapter) {
        return new LoraSettings(adapter, 4, 8, 0.0, LoraSettings.LINEAR_MODULES, false, List.of(), true);
    }

    /** Random values into every LoRA tensor (a trained adapter), and one AdamW step so that its state is set. */
    private static AdamW trained(LoraTrainable t, NDManager m) {
        SplittableRandom r = new SplittableRandom(3);
        Map<String, NDArray> grads = new LinkedHashMap<>();
        for (var e : t.parameters().entrySet()) {
            float[] v = new float[Math.toIntExact(e.getValue().size())];
            for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextGaussian() * 0.05);
            dev.jtune.trainer.optim.Tensors.overwrite(e.getValue(), v, e.getKey());
            float[] g = new float[v.length];
            for (int i = 0; i < g.length; i++) g[i] = (float) r.nextGaussian();
            grads.put(e.getKey(), m.create(g, e.getValue().getShape()));
        }
        AdamW opt = new AdamW(t.parameters(), AdamW.DEFAULTS, n -> true, m);
        opt.step(1e-3, grads);
        return opt;
    }

    /** {@code w + scaling * b·a} in double, rounded once to float. */
    private static float[] expectedMerge(float[] w, float[] a, float[] b, int r, int in, double scaling) {
        int out = w.length / in;
        float[] x = new float[w.length];
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < in; i++) {
                double s = 0;
                for (int k = 0; k < r; k++) s += (double) b[o * r + k] * a[k * in + i];
                x[o * in + i] = (float) (w[o * in + i] + scaling * s);
            }
        }
        return x;
    }

    private static void assertClose(float[] expected, float[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what);
        double max = 0;
        for (int i = 0; i < expected.length; i++) max = Math.max(max, Math.abs(expected[i] - actual[i]));
        assertTrue(max <= tol, what + ": differs by " + max);
    }

    @Test
    void denseRestartMergesReinitialisesAndPrunes() throws Exception {
        try (NDManager m = Torch.newManager(); HfCheckpoint c = HfCheckpoint.open(FIXTURE)) {
            LoraModel lora = LoraModel.fresh(settings(LoraSettings.Adapter.LORA), SEED, LoraModel.dense());
            try (LlamaModel model = LlamaModel.load(c.config(), c, Dtype.FP32, m, lora)) {
                lora.attach(model);
                LoraTrainable t = new LoraTrainable(model, lora, FIXTURE.toString());
                try (AdamW opt = trained(t, m)) {
                    Map<String, float[][]> before = new LinkedHashMap<>();
                    for (var e : lora.adapters().entrySet()) {
                        LoraLinear l = e.getValue();
                        before.put(e.getKey(), new float[][] {((DenseLinear) l.base()).weight().toFloatArray(),
                            l.loraA().toFloatArray(), l.loraB().toFloatArray()});
                    }
                    ReLora relora = new ReLora(SETTINGS, t, opt, SEED);
                    assertFalse(relora.restartsAt(0));
                    assertFalse(relora.restartsAt(3));
                    assertTrue(relora.restartsAt(4));
                    String line = relora.restart(4);
                    assertTrue(line.startsWith("ReLoRA restart 1 before step 5: " + lora.adapters().size()), line);
                    for (var e : lora.adapters().entrySet()) {
                        LoraLinear l = e.getValue();
                        float[][] b = before.get(e.getKey());
                        int in = (int) l.inFeatures();
                        assertClose(expectedMerge(b[0], b[1], b[2], 4, in, 8.0 / 4), ((DenseLinear) l.base()).weight()
                                .toFloatArray(), 2e-7, e.getKey() + ": W + (alpha/r)·B·A");
                        assertArrayEquals(LoraLinear.initialA(SEED * 31 + 1, e.getKey(), 4, in), l.loraA().toFloatArray(),
                                e.getKey() + ": A re-initialised");
                        assertArrayEquals(new float[(int) l.loraB().size()], l.loraB().toFloatArray(), e.getKey() + ": B");
                    }
                    // Magnitude pruning at 0.9: about a tenth of each LoRA moment survives (ties aside).
                    for (String name : t.parameters().keySet()) {
                        float[] v = opt.expAvgSq().get(name).toFloatArray();
                        long kept = 0;
                        for (float x : v) if (x != 0) kept++;
                        assertTrue(kept >= v.length / 10 - 1 && kept <= v.length / 10 + 1, name + ": " + kept + " of "
                                + v.length + " kept");
                    }
                    assertEquals(1, opt.step(t.parameters().keySet().iterator().next()), "step counts stay");
                }
            }
        }
    }

    @Test
    void nf4RestartsRequantizeFromTheLastFp16Save() throws Exception {
        try (NDManager m = Torch.newManager(); HfCheckpoint c = HfCheckpoint.open(FIXTURE);
                var raw = dev.jtune.model.safetensors.SafetensorsCheckpoint.open(FIXTURE)) {
            LoraModel lora = LoraModel.fresh(settings(LoraSettings.Adapter.QLORA), SEED, Nf4.linearFactory());
            try (LlamaModel model = LlamaModel.load(c.config(), c, Dtype.FP32, m, lora)) {
                lora.attach(model);
                LoraTrainable t = new LoraTrainable(model, lora, FIXTURE.toString());
                try (AdamW opt = trained(t, m)) {
                    ReLora relora = new ReLora(SETTINGS, t, opt, SEED);
                    String module = lora.adapters().keySet().iterator().next();
                    LoraLinear l = lora.adapters().get(module);
                    long[] shape = {l.outFeatures(), l.inFeatures()};
                    float[] last = raw.floats(module + ".weight");
                    for (int restart = 1; restart <= 2; restart++) {
                        float[] next = expectedMerge(last, l.loraA().toFloatArray(), l.loraB().toFloatArray(), 4,
                                (int) shape[1], 2.0);
                        relora.restart(2L * restart);
                        float[] expected = Nf4Quantizer.dequantizeFp32(Nf4Quantizer.quantize(next, shape, Dtype.FP32));
                        try (NDArray w = ((Nf4Linear) l.base()).dequantize()) {
                            // The delta here is summed in double, jtune's in libtorch's fp32 matmul: a value on a
                            // code boundary may round the other way, nothing more.
                            float[] got = w.toFloatArray();
                            int off = 0;
                            for (int i = 0; i < got.length; i++) if (Math.abs(got[i] - expected[i]) > 1e-6) off++;
                            assertTrue(off <= got.length / 1000, module + " after restart " + restart + ": " + off
                                    + " of " + got.length + " values differ");
                        }
                        assertEquals(Dtype.FP32, ((Nf4Linear) l.base()).dtype(), "bitsandbytes keeps the fp32 dtype");
                        for (int i = 0; i < next.length; i++) {
                            next[i] = HalfFloats.float16ToFloat(HalfFloats.floatToFloat16(next[i]));
                        }
                        last = next;
                        // A trained LoRA again before the next restart.
                        SplittableRandom r = new SplittableRandom(restart);
                        float[] b = new float[(int) l.loraB().size()];
                        for (int i = 0; i < b.length; i++) b[i] = (float) (r.nextGaussian() * 0.05);
                        dev.jtune.trainer.optim.Tensors.overwrite(l.loraB(), b, "B");
                    }
                    Path out = dir.resolve("merged-nf4");
                    relora.writeMerged(out);
                    try (SafetensorsFile f = SafetensorsFile.open(out.resolve("model.safetensors"))) {
                        assertEquals(dev.jtune.model.safetensors.SafetensorsDtype.F16, f.info(module + ".weight").dtype());
                        float[] fin = expectedMerge(last, l.loraA().toFloatArray(), l.loraB().toFloatArray(), 4,
                                (int) shape[1], 2.0);
                        float[] got = f.floats(module + ".weight");
                        for (int i = 0; i < fin.length; i++) {
                            float want = HalfFloats.float16ToFloat(HalfFloats.floatToFloat16(fin[i]));
                            assertTrue(Math.abs(want - got[i]) <= Math.ulp(want) * 8192 + 1e-7, i + ": " + want + " vs "
                                    + got[i]);
                        }
                    }
                }
            }
        }
    }

    @Test
    void aRunFollowsTheJaggedScheduleAndEndsInAMergedModel() throws Exception {
        TrainerOptions o = TrainerOptions.defaults(1e-2).toBuilder().maxSteps(6).lrScheduler("cosine").warmupSteps(3)
                .loggingSteps(1).saveSteps(100).handleSigterm(false).restarts(new ReLora.Settings(
                        new JaggedRestarts(3, 1, 1, 0.001), true, true, 0.9)).build();
        List<Double> lrs = new ArrayList<>();
        Path out = dir.resolve("run");
        var console = new ByteArrayOutputStream();
        try (NDManager m = Torch.newManager(); HfCheckpoint c = HfCheckpoint.open(FIXTURE)) {
            LoraModel lora = LoraModel.fresh(settings(LoraSettings.Adapter.QLORA), SEED, Nf4.linearFactory());
            try (LlamaModel model = LlamaModel.load(c.config(), c, Dtype.FP32, m, lora)) {
                lora.attach(model);
                Trainer.run(o, new LoraTrainable(model, lora, FIXTURE.toString()), BatchPlan.of(DATA), null, out,
                        new PrintStream(console, true));
            }
        }
        for (var n : TrainerTest.metrics(out)) if (n.has("learning_rate")) lrs.add(n.get("learning_rate").asDouble());
        LrSchedule inner = LrSchedule.of("cosine", 3, 6);
        JaggedRestarts j = new JaggedRestarts(3, 1, 1, 0.001);
        assertEquals(6, lrs.size());
        for (int k = 0; k < 6; k++) assertEquals(j.lr(1e-2, inner, k), lrs.get(k), 1e-12, "lr of step " + (k + 1) + " in " + lrs + "\n" + console);
        String text = console.toString();
        assertTrue(text.contains("ReLoRA restart 1 before step 4") && !text.contains("restart 2"), text);
        assertTrue(java.nio.file.Files.isRegularFile(out.resolve("model.safetensors")), text);
    }
}
