package dev.jtune.trainer.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.jtune.model.engine.Torch;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AdamWTest {

    /** The AdamW update written out in double precision from the algorithm in torch's documentation. */
    static final class Reference {
        final double[] p;
        final double[] m;
        final double[] v;
        long t;

        Reference(float[] init) {
            p = new double[init.length];
            for (int i = 0; i < init.length; i++) p[i] = init[i];
            m = new double[init.length];
            v = new double[init.length];
        }

        void step(double[] g, double lr, AdamW.Hyper h, double wd) {
            t++;
            for (int i = 0; i < p.length; i++) {
                p[i] *= 1 - lr * wd;
                m[i] = h.beta1() * m[i] + (1 - h.beta1()) * g[i];
                v[i] = h.beta2() * v[i] + (1 - h.beta2()) * g[i] * g[i];
                double mHat = m[i] / (1 - Math.pow(h.beta1(), t));
                double vHat = v[i] / (1 - Math.pow(h.beta2(), t));
                p[i] -= lr * mHat / (Math.sqrt(vHat) + h.eps());
            }
        }
    }

    private static float[] randoms(Random r, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian() * scale);
        return x;
    }

    /** Puts grad = c into p's .grad by backpropagating sum(p * c). */
    private static void setGrad(NDManager m, NDArray p, float[] c) {
        try (NDManager step = m.newSubManager(); GradientCollector gc = Torch.engine().newGradientCollector()) {
            NDArray coef = step.create(c, p.getShape());
            gc.backward(p.mul(coef).sum());
        }
    }

    @Test
    void matchesDoubleReferenceOverSeveralStepsWithDecayGroups(@TempDir Path dir) {
        AdamW.Hyper hyper = new AdamW.Hyper(0.9, 0.98, 1e-6, 0.1);
        Random r = new Random(3);
        try (NDManager m = Torch.newManager()) {
            Map<String, NDArray> params = new LinkedHashMap<>();
            float[] a0 = randoms(r, 12, 1.0);
            float[] b0 = randoms(r, 5, 1.0);
            NDArray a = m.create(a0, new Shape(3, 4));
            NDArray b = m.create(b0, new Shape(5));
            a.setRequiresGradient(true);
            b.setRequiresGradient(true);
            params.put("layer.weight", a);
            params.put("norm.weight", b);
            Reference ra = new Reference(a0);
            Reference rb = new Reference(b0);
            double[] lrs = {1e-2, 5e-3, 2e-3, 1e-3, 3e-2};
            try (AdamW opt = new AdamW(params, hyper, name -> !name.startsWith("norm"), m)) {
                for (double lr : lrs) {
                    float[] ga = randoms(r, 12, 0.5);
                    float[] gb = randoms(r, 5, 0.5);
                    Gradients.zero(params.values());
                    setGrad(m, a, ga);
                    setGrad(m, b, gb);
                    opt.step(lr);
                    ra.step(toDouble(ga), lr, hyper, 0.1);
                    rb.step(toDouble(gb), lr, hyper, 0.0);
                }
                assertClose(ra.p, a.toFloatArray(), 2e-6);
                assertClose(rb.p, b.toFloatArray(), 2e-6);
                assertClose(ra.m, opt.expAvg().get("layer.weight").toFloatArray(), 1e-6);
                assertClose(ra.v, opt.expAvgSq().get("layer.weight").toFloatArray(), 1e-7);
                assertEquals(lrs.length, opt.step("layer.weight"));

                // Save, restore into a fresh optimizer: the next step matches the continued one bit for bit.
                Path file = dir.resolve("optimizer.safetensors");
                opt.save(file);
                float[] aBefore = a.toFloatArray();
                float[] ga = randoms(r, 12, 0.5);
                Gradients.zero(params.values());
                setGrad(m, a, ga);
                opt.step(1e-3);
                float[] continued = a.toFloatArray();
                Tensors.overwrite(a, aBefore, "a");
                try (AdamW fresh = new AdamW(params, hyper, name -> !name.startsWith("norm"), m)) {
                    fresh.load(file);
                    assertEquals(lrs.length, fresh.step("layer.weight"));
                    fresh.step(1e-3);
                    org.junit.jupiter.api.Assertions.assertArrayEquals(continued, a.toFloatArray());
                }
            }
        }
    }

    @Test
    void loadRejectsAStateForOtherParameters(@TempDir Path dir) {
        try (NDManager m = Torch.newManager()) {
            NDArray a = m.zeros(new Shape(2));
            a.setRequiresGradient(true);
            Path file = dir.resolve("o.safetensors");
            try (AdamW opt = new AdamW(Map.of("a", a), AdamW.DEFAULTS, n -> true, m)) {
                opt.save(file);
            }
            try (AdamW other = new AdamW(Map.of("b", a), AdamW.DEFAULTS, n -> true, m)) {
                var e = assertThrows(IllegalArgumentException.class, () -> other.load(file));
                assertEquals(true, e.getMessage().contains("missing tensor b.exp_avg"), e.getMessage());
            }
        }
    }

    @Test
    void clippingMatchesTheGlobalNormAndScalesEveryGradient() {
        Random r = new Random(9);
        try (NDManager m = Torch.newManager()) {
            NDArray a = m.zeros(new Shape(7));
            NDArray b = m.zeros(new Shape(2, 3));
            a.setRequiresGradient(true);
            b.setRequiresGradient(true);
            float[] ga = randoms(r, 7, 2.0);
            float[] gb = randoms(r, 6, 2.0);
            setGrad(m, a, ga);
            setGrad(m, b, gb);
            double sq = 0;
            for (float x : ga) sq += x * (double) x;
            for (float x : gb) sq += x * (double) x;
            double norm = Math.sqrt(sq);
            double maxNorm = norm / 4;
            double reported = GradClipping.clip(List.of(a, b), maxNorm, m);
            assertEquals(norm, reported, norm * 1e-6);
            double coef = maxNorm / (norm + 1e-6);
            float[] clipped = Gradients.open(List.of(a)).get(0).toFloatArray();
            for (int i = 0; i < ga.length; i++) assertEquals(ga[i] * coef, clipped[i], 1e-5);
            // Below the threshold the gradients stay (multiplied by 1.0).
            double again = GradClipping.clip(List.of(a, b), 1e9, m);
            assertEquals(maxNorm, again, maxNorm * 1e-5);
        }
    }

    @Test
    void finitenessCheckAndScaling() {
        try (NDManager m = Torch.newManager()) {
            NDArray a = m.zeros(new Shape(3));
            a.setRequiresGradient(true);
            setGrad(m, a, new float[] {1, 2, 3});
            assertEquals(true, Gradients.allFinite(List.of(a)));
            Gradients.scale(List.of(a), 0.5);
            assertEquals(List.of(0.5f, 1f, 1.5f), boxed(Gradients.open(List.of(a)).get(0).toFloatArray()));
            setGrad(m, a, new float[] {Float.POSITIVE_INFINITY, 0, 0});
            assertEquals(false, Gradients.allFinite(List.of(a)));
            Gradients.zero(List.of(a));
            assertEquals(List.of(0f, 0f, 0f), boxed(Gradients.open(List.of(a)).get(0).toFloatArray()));
        }
    }

    @Test
    void gradScalerFollowsTorchDefaults() {
        GradScaler s = new GradScaler(8.0, 2.0, 0.5, 3);
        s.update(true);
        assertEquals(4.0, s.scale());
        assertEquals(1, s.skipped());
        s.update(false);
        s.update(false);
        assertEquals(4.0, s.scale());
        s.update(false);
        assertEquals(8.0, s.scale());
        assertEquals(0, s.growthTracker());
        assertEquals(65536.0, new GradScaler().scale());
    }

    private static List<Float> boxed(float[] x) {
        List<Float> l = new java.util.ArrayList<>();
        for (float v : x) l.add(v);
        return l;
    }

    private static double[] toDouble(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) d[i] = x[i];
        return d;
    }

    private static void assertClose(double[] expected, float[] actual, double tol) {
        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], tol * Math.max(1, Math.abs(expected[i])), "index " + i);
        }
    }
}
