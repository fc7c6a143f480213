package dev.jtune.model.engine;

import static dev.jtune.model.engine.KernelTestSupport.assertClose;
import static dev.jtune.model.engine.KernelTestSupport.assertShape;
import static dev.jtune.model.engine.KernelTestSupport.bf16;
import static dev.jtune.model.engine.KernelTestSupport.checkForwardAndGradients;
import static dev.jtune.model.engine.KernelTestSupport.normal;
import static dev.jtune.model.engine.KernelTestSupport.runIn;
import static dev.jtune.model.engine.KernelTestSupport.valuesIn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.KernelTestSupport.Arg;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link Kernels#embedding}, {@link Kernels#rmsNorm} and {@link Kernels#swiglu}. */
class KernelLayerTest {
    private final Kernels k = Kernels.get();

    // ---- embedding ----

    /** out[p, e] = weight[ids[p], e]. in: weight [V,E], ids. */
    private static double[] embeddingRef(double[] weight, double[] ids, int e) {
        double[] out = new double[ids.length * e];
        for (int p = 0; p < ids.length; p++) {
            int row = (int) ids[p];
            System.arraycopy(weight, row * e, out, p * e, e);
        }
        return out;
    }

    @Test
    void embeddingGathersRowsAndScatterAddsGradients() {
        int v = 7;
        int e = 5;
        Random r = new Random(21);
        float[] w = normal(r, v * e, 1);
        long[] ids = {3, 0, 6, 3, 3, 1}; // row 3 repeated: its gradient must accumulate; rows 2, 4, 5 unused
        checkForwardAndGradients(in -> k.embedding(in[1], in[0]), in -> embeddingRef(in[0], in[1], e), 0, 1e-3,
                22, Arg.grad("weight", w, v, e), Arg.ids("ids", ids, 2, 3));
    }

    @Test
    void embeddingKeepsIdShapeAndIsExact() {
        int v = 11;
        int e = 4;
        Random r = new Random(23);
        float[] w = normal(r, v * e, 1);
        long[] ids = {10, 0, 5, 5, 2, 9, 1, 7, 10, 3, 4, 8};
        try (NDManager m = Torch.newManager()) {
            NDArray out = k.embedding(m.create(ids, new Shape(2, 3, 2)), m.create(w, new Shape(v, e)));
            assertShape(out, 2, 3, 2, e);
            float[] got = out.toFloatArray();
            for (int p = 0; p < ids.length; p++) {
                for (int j = 0; j < e; j++) {
                    assertEquals(w[(int) ids[p] * e + j], got[p * e + j], 0f, "token " + p + " dim " + j);
                }
            }
            // int32 ids are accepted too.
            int[] ids32 = {4, 1};
            float[] got32 = k.embedding(m.create(ids32), m.create(w, new Shape(v, e))).toFloatArray();
            for (int j = 0; j < e; j++) {
                assertEquals(w[4 * e + j], got32[j], 0f);
                assertEquals(w[e + j], got32[e + j], 0f);
            }
        }
    }

    @Test
    void embeddingOfBf16WeightsIsTheBf16Rows() {
        int v = 6;
        int e = 8;
        float[] w = normal(new Random(24), v * e, 1);
        long[] ids = {5, 2, 2, 0};
        float[] got = runIn(Dtype.BF16, in -> {
            NDArray out = k.embedding(in[1], in[0]);
            assertEquals(Dtype.BF16, k.dtypeOf(out));
            return out;
        }, Arg.fixed("weight", w, v, e), Arg.ids("ids", ids, 4));
        for (int p = 0; p < ids.length; p++) {
            for (int j = 0; j < e; j++) {
                assertEquals(bf16(w[(int) ids[p] * e + j]), got[p * e + j], 0f);
            }
        }
    }

    // ---- RMSNorm ----

    /** transformers' LlamaRMSNorm in double: weight * x / sqrt(mean(x^2) + eps) over the last dim. */
    private static double[] rmsNormRef(double[] x, double[] w, double eps) {
        int e = w.length;
        double[] out = new double[x.length];
        for (int row = 0; row < x.length / e; row++) {
            double ss = 0;
            for (int j = 0; j < e; j++) {
                ss += x[row * e + j] * x[row * e + j];
            }
            double inv = 1 / Math.sqrt(ss / e + eps);
            for (int j = 0; j < e; j++) {
                out[row * e + j] = w[j] * (x[row * e + j] * inv);
            }
        }
        return out;
    }

    @Test
    void rmsNormMatchesReferenceWithGradients() {
        int b = 2;
        int t = 3;
        int e = 6;
        Random r = new Random(31);
        float[] x = normal(r, b * t * e, 1.5);
        float[] w = normal(r, e, 1);
        double eps = 1e-5;
        checkForwardAndGradients(in -> k.rmsNorm(in[0], in[1], eps), in -> rmsNormRef(in[0], in[1], eps), 1e-5,
                1e-3, 32, Arg.grad("x", x, b, t, e), Arg.grad("weight", w, e));
    }

    @Test
    void rmsNormEpsilonMatters() {
        // Tiny inputs: eps dominates mean(x^2), so an ignored or misplaced eps shows.
        int e = 4;
        float[] x = {1e-3f, -2e-3f, 5e-4f, 3e-3f, 4e-3f, 0f, -1e-3f, 2e-3f};
        float[] w = {1f, 2f, -0.5f, 3f};
        double eps = 1e-5;
        try (NDManager m = Torch.newManager()) {
            float[] got = k.rmsNorm(m.create(x, new Shape(2, e)), m.create(w), eps).toFloatArray();
            assertClose("rmsNorm with eps", rmsNormRef(KernelTestSupport.toDouble(x), KernelTestSupport.toDouble(w),
                    eps), got, 1e-6, 1e-5);
        }
    }

    @Test
    void rmsNormInBf16NormalisesInFp32AndScalesInBf16() {
        int rows = 5;
        int e = 16;
        Random r = new Random(33);
        Arg x = Arg.fixed("x", normal(r, rows * e, 2), rows, e);
        Arg w = Arg.fixed("weight", normal(r, e, 1), e);
        double eps = 1e-6;
        float[] got = runIn(Dtype.BF16, in -> {
            NDArray out = k.rmsNorm(in[0], in[1], eps);
            assertEquals(Dtype.BF16, k.dtypeOf(out));
            return out;
        }, x, w);
        // LlamaRMSNorm: h = normalise(x) in fp32, rounded to bf16, then weight(bf16) * h(bf16) rounded to bf16.
        double[][] in = valuesIn(Dtype.BF16, x, w);
        double[] ones = new double[e];
        java.util.Arrays.fill(ones, 1);
        double[] h = rmsNormRef(in[0], ones, eps);
        for (int i = 0; i < got.length; i++) {
            float hb = bf16((float) h[i]);
            float expected = bf16((float) (in[1][i % e] * hb));
            // h differs from libtorch's fp32 h by a few fp32 ulps, which may flip one bf16 rounding: 1 bf16 ulp.
            double tol = Math.abs(expected) * 0x1p-7 + 1e-30;
            if (!(Math.abs(got[i] - expected) <= tol)) {
                fail("element " + i + ": " + got[i] + ", expected " + expected);
            }
        }
    }

    // ---- SwiGLU ----

    private static double[] swigluRef(double[] g, double[] u) {
        double[] out = new double[g.length];
        for (int i = 0; i < g.length; i++) {
            out[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
        }
        return out;
    }

    @Test
    void swigluMatchesReferenceWithGradients() {
        Random r = new Random(41);
        int n = 3 * 10;
        float[] g = normal(r, n, 3);
        float[] u = normal(r, n, 1);
        checkForwardAndGradients(in -> k.swiglu(in[0], in[1]), in -> swigluRef(in[0], in[1]), 1e-5, 1e-3, 42,
                Arg.grad("gate", g, 3, 10), Arg.grad("up", u, 3, 10));
    }

    @Test
    void swigluAnalyticGradient() {
        // d/dg silu(g) u = u * s(g) (1 + g (1 - s(g))), d/du = silu(g): checked at hand-picked points.
        float[] g = {-20f, -2f, -0.5f, 0f, 0.5f, 2f, 20f};
        float[] u = {1f, -1.5f, 2f, 3f, -0.25f, 0.75f, 1f};
        try (NDManager m = Torch.newManager()) {
            NDArray ga = m.create(g);
            NDArray ua = m.create(u);
            ga.setRequiresGradient(true);
            ua.setRequiresGradient(true);
            try (var gc = Torch.engine().newGradientCollector()) {
                gc.backward(k.swiglu(ga, ua).sum());
                double[] dg = new double[g.length];
                double[] du = new double[g.length];
                for (int i = 0; i < g.length; i++) {
                    double s = 1 / (1 + Math.exp(-g[i]));
                    dg[i] = u[i] * s * (1 + g[i] * (1 - s));
                    du[i] = g[i] * s;
                }
                assertClose("d/dgate", dg, ga.getGradient().toFloatArray(), 1e-6, 1e-5);
                assertClose("d/dup", du, ua.getGradient().toFloatArray(), 1e-6, 1e-5);
            }
        }
    }

    @Test
    void swigluInBf16AgreesWithFp32() {
        Random r = new Random(43);
        int n = 64;
        Arg g = Arg.fixed("gate", normal(r, n, 2), n);
        Arg u = Arg.fixed("up", normal(r, n, 1), n);
        float[] got = runIn(Dtype.BF16, in -> k.swiglu(in[0], in[1]), g, u);
        double[][] in = valuesIn(Dtype.BF16, g, u);
        double[] expected = swigluRef(in[0], in[1]);
        // silu rounded to bf16, then the product rounded: 2 roundings of 2^-9 relative each, plus slack.
        assertClose("bf16 swiglu", expected, got, 1e-6, 0x1p-7);
        float[] fp16 = runIn(Dtype.FP16, in2 -> k.swiglu(in2[0], in2[1]), g, u);
        double[][] in16 = valuesIn(Dtype.FP16, g, u);
        assertClose("fp16 swiglu", swigluRef(in16[0], in16[1]), fp16, 1e-4, 0x1p-9);
    }
}
