package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.data.dataset.Batch;
import dev.jtune.data.dataset.Row;
import dev.jtune.data.dataset.Sample;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.testkit.TinyLlama;
import dev.jtune.trainer.optim.Gradients;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ForwardBackwardTest {

    /** Σ over trained positions of -log softmax(logits[i])[label[i+1]], in double, from the model's own forward. */
    static double referenceNll(LlamaModel model, Batch b, NDManager m) {
        try (NDManager s = m.newSubManager()) {
            long[] ids = new long[b.inputIds().length];
            long[] pos = new long[ids.length];
            long[] seg = new long[ids.length];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = b.inputIds()[i];
                pos[i] = b.positionIds()[i];
                seg[i] = b.segmentIds()[i];
            }
            Shape shape = new Shape(b.rows(), b.length());
            NDArray logits = model.forward(s.create(ids, shape), s.create(pos, shape),
                    b.packed() ? s.create(seg, shape) : null);
            float[] l = logits.toFloatArray();
            int v = (int) logits.getShape().get(2);
            double sum = 0;
            for (int r = 0; r < b.rows(); r++) {
                for (int i = 0; i + 1 < b.length(); i++) {
                    int label = b.labels()[r * b.length() + i + 1];
                    if (label == Sample.IGNORE_INDEX) continue;
                    int base = (r * b.length() + i) * v;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < v; j++) max = Math.max(max, l[base + j]);
                    double z = 0;
                    for (int j = 0; j < v; j++) z += Math.exp(l[base + j] - max);
                    sum += max + Math.log(z) - l[base + label];
                }
            }
            return sum;
        }
    }

    static Map<String, float[]> grads(Map<String, NDArray> params) {
        Map<String, float[]> out = new LinkedHashMap<>();
        List<NDArray> g = Gradients.open(params.values());
        int i = 0;
        for (String name : params.keySet()) {
            out.put(name, g.get(i++).toFloatArray());
        }
        Gradients.close(g);
        return out;
    }

    static void assertGradsClose(Map<String, float[]> a, Map<String, float[]> b, double rel) {
        for (String name : a.keySet()) {
            float[] x = a.get(name);
            float[] y = b.get(name);
            double scale = 0;
            for (float v : x) scale = Math.max(scale, Math.abs(v));
            for (int i = 0; i < x.length; i++) {
                assertEquals(x[i], y[i], rel * scale + 1e-12, name + "[" + i + "]");
            }
        }
    }

    @Test
    void lossIsTheMeanOverAllTrainedTokensAndAccumulationEqualsOneBatch() {
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            FullFineTuning ft = new FullFineTuning(model);
            ft.parameters().values().forEach(p -> p.setRequiresGradient(true));
            ForwardBackward fb = new ForwardBackward(model, false, 42);
            Random r = new Random(5);
            List<Row> rows1 = List.of(Row.of(TinySetup.sample(r, 20, 3)), Row.of(TinySetup.sample(r, 9, 2)));
            List<Row> rows2 = List.of(Row.of(TinySetup.sample(r, 31, 10)));
            Batch b1 = TinySetup.collate(rows1);
            Batch b2 = TinySetup.collate(rows2);
            List<Row> all = new ArrayList<>(rows1);
            all.addAll(rows2);
            Batch full = TinySetup.collate(all);
            long n = b1.trainedTokens() + b2.trainedTokens();
            assertEquals(n, full.trainedTokens());

            Gradients.zero(ft.parameters().values());
            double s1 = fb.run(b1, n, 1.0, true, 0, 0, m).nllSum();
            double s2 = fb.run(b2, n, 1.0, true, 0, 1, m).nllSum();
            Map<String, float[]> accumulated = grads(ft.parameters());
            // Independent reference of the loss: the model's forward + a log-softmax in double.
            double ref1 = referenceNll(model, b1, m);
            double ref2 = referenceNll(model, b2, m);
            assertEquals(ref1, s1, 1e-4 * Math.abs(ref1));
            assertEquals(ref2, s2, 1e-4 * Math.abs(ref2));
            double meanOfMeans = (s1 / b1.trainedTokens() + s2 / b2.trainedTokens()) / 2;
            assertTrue(Math.abs((s1 + s2) / n - meanOfMeans) > 1e-3, "test data must tell the two means apart");

            Gradients.zero(ft.parameters().values());
            double sFull = fb.run(full, n, 1.0, true, 0, 0, m).nllSum();
            assertEquals(s1 + s2, sFull, 1e-4 * sFull);
            assertGradsClose(accumulated, grads(ft.parameters()), 1e-4);

            // The gradient is that of total NLL / N: a finite difference along one embedding row agrees.
            NDArray embed = model.embedTokens();
            float[] g = accumulated.get("model.embed_tokens.weight");
            int idx = b1.inputIds()[1] * 128 + 7;
            float[] w = embed.toFloatArray();
            double h = 1e-2;
            double[] f = new double[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                float[] w2 = w.clone();
                w2[idx] += (float) (sgn == 0 ? h : -h);
                dev.jtune.trainer.optim.Tensors.overwrite(embed, w2, "embed");
                f[sgn] = (referenceNll(model, b1, m) + referenceNll(model, b2, m)) / n;
            }
            dev.jtune.trainer.optim.Tensors.overwrite(embed, w, "embed");
            double fd = (f[0] - f[1]) / (2 * h);
            assertEquals(fd, g[idx], 2e-3 * Math.max(1e-2, Math.abs(fd)) + 2e-4, "finite difference");
        }
    }

    @Test
    void checkpointingGivesTheSameGradientsPlainAndPacked() {
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 2)) {
            FullFineTuning ft = new FullFineTuning(model);
            ft.parameters().values().forEach(p -> p.setRequiresGradient(true));
            for (Batch b : List.of(TinySetup.batches(3, 1, 2, 32).get(0), TinySetup.packedBatch(4, 2, 32))) {
                long n = b.trainedTokens();
                Gradients.zero(ft.parameters().values());
                double plain = new ForwardBackward(model, false, 7).run(b, n, 1.0, true, 3, 0, m).nllSum();
                Map<String, float[]> g1 = grads(ft.parameters());
                Gradients.zero(ft.parameters().values());
                double ckpt = new ForwardBackward(model, true, 7).run(b, n, 1.0, true, 3, 0, m).nllSum();
                Map<String, float[]> g2 = grads(ft.parameters());
                assertEquals(plain, ckpt, 1e-5 * Math.abs(plain));
                assertGradsClose(g1, g2, 1e-6);
                // Evaluation (no autograd) gives the same sum.
                double evalSum = new ForwardBackward(model, false, 7).run(b, n, 1.0, false, 3, 0, m).nllSum();
                assertEquals(plain, evalSum, 1e-5 * Math.abs(plain));
            }
        }
    }

    @Test
    void checkpointingWithAFrozenEmbeddingAsUnderLora() {
        // Only the decoder weights train (the embedding is frozen, as with LoRA): the embedding output has no
        // grad_fn, which used to crash the JVM in DJL's grad_fn lookup once backward reached it.
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 5)) {
            Map<String, NDArray> trained = new java.util.LinkedHashMap<>(new FullFineTuning(model).parameters());
            trained.keySet().removeIf(k -> k.contains("embed_tokens") || k.contains("lm_head"));
            trained.values().forEach(p -> p.setRequiresGradient(true));
            Batch b = TinySetup.batches(6, 1, 2, 32).get(0);
            long n = b.trainedTokens();
            new ForwardBackward(model, false, 7).run(b, n, 1.0, true, 0, 0, m);
            Map<String, float[]> g1 = grads(trained);
            Gradients.zero(trained.values());
            new ForwardBackward(model, true, 7).run(b, n, 1.0, true, 0, 0, m);
            assertGradsClose(g1, grads(trained), 1e-6);
        }
    }

    @Test
    void packedSamplesAreIsolated() {
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 3)) {
            Random r = new Random(11);
            Sample a = TinySetup.sample(r, 12, 2);
            Sample c = TinySetup.sample(r, 17, 4);
            Batch packed = TinySetup.collate(List.of(Row.pack(List.of(a, c))));
            assertTrue(packed.packed());
            ForwardBackward fb = new ForwardBackward(model, false, 1);
            double together = fb.run(packed, 1, 1, false, 0, 0, m).nllSum();
            double apart = fb.run(TinySetup.collate(List.of(Row.of(a))), 1, 1, false, 0, 0, m).nllSum()
                    + fb.run(TinySetup.collate(List.of(Row.of(c))), 1, 1, false, 0, 0, m).nllSum();
            assertEquals(apart, together, 1e-4 * apart);
        }
    }
}
