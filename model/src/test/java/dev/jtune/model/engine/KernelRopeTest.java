package dev.jtune.model.engine;

import static dev.jtune.model.engine.KernelTestSupport.assertClose;
import static dev.jtune.model.engine.KernelTestSupport.assertShape;
import static dev.jtune.model.engine.KernelTestSupport.bf16;
import static dev.jtune.model.engine.KernelTestSupport.checkForwardAndGradients;
import static dev.jtune.model.engine.KernelTestSupport.normal;
import static dev.jtune.model.engine.KernelTestSupport.runIn;
import static dev.jtune.model.engine.KernelTestSupport.uniform;
import static dev.jtune.model.engine.KernelTestSupport.valuesIn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.KernelTestSupport.Arg;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Rotary embedding: {@link Kernels#ropeInvFreq}, {@link Kernels#ropeLlama3}, {@link Kernels#ropeCosSin}, {@link Kernels#rope}. */
class KernelRopeTest {
    private final Kernels k = Kernels.get();

    // ---- inverse frequencies ----

    /**
     * transformers' default: {@code 1 / base ** (arange(0, dim, 2).float() / dim)}, step by step in float32:
     * the exponent is an fp32 division, the power an fp32 result, the reciprocal an fp32 division.
     */
    private static float[] invFreqRef(int dim, double base) {
        float[] f = new float[dim / 2];
        for (int i = 0; i < dim / 2; i++) {
            float exponent = (float) (2 * i) / (float) dim;
            float power = (float) Math.pow((float) base, exponent);
            f[i] = 1f / power;
        }
        return f;
    }

    @Test
    void ropeInvFreqMatchesTransformersDefault() {
        int[][] cases = {{128, 500000}, {64, 10000}, {8, 10000}, {96, 1000000}};
        try (NDManager m = Torch.newManager()) {
            for (int[] c : cases) {
                NDArray f = k.ropeInvFreq(m, c[0], c[1]);
                assertEquals(DataType.FLOAT32, f.getDataType());
                assertShape(f, c[0] / 2);
                // libtorch's vectorised fp32 pow may differ from the correctly rounded one by an ulp or two.
                assertClose("inv_freq dim " + c[0] + " base " + c[1], invFreqRef(c[0], c[1]), f.toFloatArray(), 0,
                        3e-7);
            }
        }
    }

    @Test
    void ropeInvFreqHandWorkedValues() {
        try (NDManager m = Torch.newManager()) {
            float[] f = k.ropeInvFreq(m, 4, 10000).toFloatArray();
            assertEquals(2, f.length);
            assertEquals(1.0f, f[0], 0f); // 10000^0
            assertEquals(0.01f, f[1], 1e-9f); // 10000^-(2/4)
        }
    }

    /** transformers' _compute_llama3_parameters, in double, on the given inverse frequencies. */
    private static double[] llama3Ref(float[] invFreq, double factor, double low, double high, double oldLen) {
        double lowWavelen = oldLen / low;
        double highWavelen = oldLen / high;
        double[] out = new double[invFreq.length];
        for (int i = 0; i < invFreq.length; i++) {
            double f = invFreq[i];
            double wavelen = 2 * Math.PI / f;
            double llama = wavelen > lowWavelen ? f / factor : f;
            double smooth = (oldLen / wavelen - low) / (high - low);
            double smoothed = (1 - smooth) * llama / factor + smooth * llama;
            boolean medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
            out[i] = medium ? smoothed : llama;
        }
        return out;
    }

    @Test
    void ropeLlama3MatchesTransformersOnRealConfigs() {
        // Llama 3.1 8B (factor 8) and Llama 3.2 1B (factor 32): dim 128, theta 500000, 8192 original positions.
        double[][] configs = {{8, 1, 4, 8192}, {32, 1, 4, 8192}, {16, 2, 8, 4096}};
        try (NDManager m = Torch.newManager()) {
            for (double[] c : configs) {
                float[] base = invFreqRef(128, 500000);
                NDArray out = k.ropeLlama3(m.create(base), c[0], c[1], c[2], c[3]);
                assertShape(out, 64);
                double[] expected = llama3Ref(base, c[0], c[1], c[2], c[3]);
                assertClose("llama3 factor " + c[0], expected, out.toFloatArray(), 0, 1e-5);
                // All three regimes occur in this table, so each branch is exercised.
                int high = 0;
                int low = 0;
                int medium = 0;
                for (int i = 0; i < 64; i++) {
                    double wl = 2 * Math.PI / base[i];
                    if (wl < c[3] / c[2]) {
                        high++;
                    } else if (wl > c[3] / c[1]) {
                        low++;
                    } else {
                        medium++;
                    }
                }
                if (high == 0 || low == 0 || medium == 0) {
                    fail("test table misses a regime: " + high + "/" + medium + "/" + low);
                }
            }
        }
    }

    @Test
    void ropeLlama3HandWorkedRegimes() {
        // factor 8, low 1, high 4, original 8192: wavelengths below 2048 keep their frequency, above 8192 are
        // divided by 8, between are interpolated: wavelen 4096 -> smooth = (2 - 1) / 3 = 1/3 ->
        // (2/3) f / 8 + (1/3) f = (10/24) f.
        float[] f = {(float) (2 * Math.PI / 1000), (float) (2 * Math.PI / 10000), (float) (2 * Math.PI / 4096),
            (float) (2 * Math.PI / 100000)};
        try (NDManager m = Torch.newManager()) {
            float[] got = k.ropeLlama3(m.create(f), 8, 1, 4, 8192).toFloatArray();
            double[] expected = {f[0], f[1] / 8.0, f[2] * 10.0 / 24.0, f[3] / 8.0};
            assertClose("llama3 regimes", expected, got, 0, 1e-5);
        }
    }

    // ---- cos / sin tables ----

    /** [cos | sin] per (b, t): cos[b,t,j] = cos(pos * f[j mod D/2]) * scaling, D = 2 * f.length. */
    private static double[] cosSinRef(double[] invFreq, double[] pos, int b, int t, double scaling) {
        int half = invFreq.length;
        int d = 2 * half;
        double[] out = new double[b * t * 2 * d];
        for (int p = 0; p < b * t; p++) {
            for (int j = 0; j < d; j++) {
                double angle = pos[p] * invFreq[j % half];
                out[p * 2 * d + j] = Math.cos(angle) * scaling;
                out[p * 2 * d + d + j] = Math.sin(angle) * scaling;
            }
        }
        return out;
    }

    @Test
    void ropeCosSinMatchesReferenceWithGradients() {
        int b = 2;
        int t = 5;
        float[] invFreq = {1f, 0.3f, 0.05f, 0.004f};
        long[] pos = {0, 1, 2, 3, 4, 7, 8, 0, 1, 40}; // row 2: a packed batch restarting at 0
        double scaling = 0.8;
        checkForwardAndGradients(in -> {
            NDList cs = k.ropeCosSin(in[1], in[0], scaling, Dtype.FP32);
            assertEquals(2, cs.size());
            assertShape(cs.get(0), b, t, 8);
            assertShape(cs.get(1), b, t, 8);
            return cs.get(0).concat(cs.get(1), -1);
        }, in -> cosSinRef(in[0], in[1], b, t, scaling), 1e-5, 1e-3, 51, Arg.grad("inv_freq", invFreq, 4),
                Arg.ids("position_ids", pos, b, t));
    }

    @Test
    void ropeCosSinInBf16IsTheRoundedFp32Table() {
        int b = 1;
        int t = 6;
        float[] invFreq = {1f, 0.1f, 0.01f};
        long[] pos = {0, 1, 2, 3, 100, 1000};
        try (NDManager m = Torch.newManager()) {
            NDList cs = k.ropeCosSin(m.create(pos, new Shape(b, t)), m.create(invFreq), 1.0, Dtype.BF16);
            assertEquals(Dtype.BF16, k.dtypeOf(cs.get(0)));
            assertEquals(Dtype.BF16, k.dtypeOf(cs.get(1)));
            float[] cos = KernelTestSupport.values(cs.get(0));
            float[] sin = KernelTestSupport.values(cs.get(1));
            double[] ref = cosSinRef(KernelTestSupport.toDouble(invFreq), new double[] {0, 1, 2, 3, 100, 1000}, b, t,
                    1.0);
            int d = 6;
            for (int p = 0; p < t; p++) {
                for (int j = 0; j < d; j++) {
                    // The fp32 angle pos*f is off by up to half an fp32 ulp (6e-5 at 1000): allow that, then the
                    // bf16 rounding of the value.
                    checkBf16(ref[p * 2 * d + j], cos[p * d + j], 1e-4, "cos " + p + "," + j);
                    checkBf16(ref[p * 2 * d + d + j], sin[p * d + j], 1e-4, "sin " + p + "," + j);
                }
            }
        }
    }

    private static void checkBf16(double exact, float got, double slack, String what) {
        float lo = bf16((float) (exact - slack));
        float hi = bf16((float) (exact + slack));
        if (!(got >= Math.min(lo, hi) && got <= Math.max(lo, hi))) {
            fail(what + ": " + got + " is not the bf16 rounding of " + exact);
        }
    }

    // ---- rope ----

    /** out = x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x2, x1); cos, sin [B,T,D] over all H. */
    private static double[] ropeRef(double[] x, double[] cos, double[] sin, int b, int h, int t, int d) {
        double[] out = new double[x.length];
        int half = d / 2;
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                for (int ti = 0; ti < t; ti++) {
                    int xo = ((bi * h + hi) * t + ti) * d;
                    int co = (bi * t + ti) * d;
                    for (int j = 0; j < d; j++) {
                        double rotated = j < half ? -x[xo + j + half] : x[xo + j - half];
                        out[xo + j] = x[xo + j] * cos[co + j] + rotated * sin[co + j];
                    }
                }
            }
        }
        return out;
    }

    @Test
    void ropeMatchesRotateHalfReferenceWithGradients() {
        int b = 2;
        int h = 3;
        int t = 4;
        int d = 6;
        Random r = new Random(61);
        // Arbitrary (not trigonometric) cos and sin, so that every term of the formula is visible.
        float[] x = normal(r, b * h * t * d, 1);
        float[] cos = uniform(r, b * t * d, -1, 1);
        float[] sin = uniform(r, b * t * d, -1, 1);
        checkForwardAndGradients(in -> k.rope(in[0], in[1], in[2]), in -> ropeRef(in[0], in[1], in[2], b, h, t, d),
                1e-5, 1e-3, 62, Arg.grad("x", x, b, h, t, d), Arg.grad("cos", cos, b, t, d),
                Arg.grad("sin", sin, b, t, d));
    }

    @Test
    void ropeInBf16AgreesWithReference() {
        int b = 1;
        int h = 2;
        int t = 5;
        int d = 8;
        Random r = new Random(63);
        Arg x = Arg.fixed("x", normal(r, b * h * t * d, 1), b, h, t, d);
        Arg cos = Arg.fixed("cos", uniform(r, b * t * d, -1, 1), b, t, d);
        Arg sin = Arg.fixed("sin", uniform(r, b * t * d, -1, 1), b, t, d);
        float[] got = runIn(Dtype.BF16, in -> {
            NDArray out = k.rope(in[0], in[1], in[2]);
            assertEquals(Dtype.BF16, k.dtypeOf(out));
            return out;
        }, x, cos, sin);
        double[][] in = valuesIn(Dtype.BF16, x, cos, sin);
        double[] expected = ropeRef(in[0], in[1], in[2], b, h, t, d);
        // Two products and a sum, each rounded to bf16 (2^-9 relative): bounded by 2^-8 (|x cos| + |rot sin|).
        // |x cos| + |rot sin| = (|x| * |cos|) + (|x| rotated * |sin|): split so rotate_half's sign cancels.
        double[] xCos = ropeRef(abs(in[0]), abs(in[1]), new double[in[2].length], b, h, t, d);
        double[] rotSin = ropeRef(abs(in[0]), new double[in[1].length], abs(in[2]), b, h, t, d);
        for (int i = 0; i < got.length; i++) {
            double tol = 0x1p-7 * (Math.abs(xCos[i]) + Math.abs(rotSin[i])) + 1e-6;
            if (!(Math.abs(got[i] - expected[i]) <= tol)) {
                fail("element " + i + ": " + got[i] + ", expected " + expected[i]);
            }
        }
    }

    private static double[] abs(double[] v) {
        double[] a = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            a[i] = Math.abs(v[i]);
        }
        return a;
    }

    @Test
    void ropeWithRealTablesIsARotationByRelativePosition() {
        // With tables from ropeCosSin, q_i . k_j after rope depends on i - j only, and each (j, j + D/2) pair
        // keeps its norm: the convention of the tables (cat(freqs, freqs)) and of rope (rotate half) agree.
        int t = 6;
        int d = 8;
        Random r = new Random(64);
        float[] q = normal(r, t * d, 1);
        float[] kk = normal(r, t * d, 1);
        try (NDManager m = Torch.newManager()) {
            NDArray invFreq = k.ropeInvFreq(m, d, 10000);
            float[][] dots = new float[2][];
            long[] shifts = {0, 37};
            for (int s = 0; s < 2; s++) {
                long[] pos = new long[t];
                for (int i = 0; i < t; i++) {
                    pos[i] = shifts[s] + i;
                }
                NDList cs = k.ropeCosSin(m.create(pos, new Shape(1, t)), invFreq, 1.0, Dtype.FP32);
                float[] rq = k.rope(m.create(q, new Shape(1, 1, t, d)), cs.get(0), cs.get(1)).toFloatArray();
                float[] rk = k.rope(m.create(kk, new Shape(1, 1, t, d)), cs.get(0), cs.get(1)).toFloatArray();
                dots[s] = new float[t * t];
                for (int i = 0; i < t; i++) {
                    for (int j = 0; j < t; j++) {
                        double dot = 0;
                        for (int c = 0; c < d; c++) {
                            dot += (double) rq[i * d + c] * rk[j * d + c];
                        }
                        dots[s][i * t + j] = (float) dot;
                    }
                    for (int c = 0; c < d / 2; c++) {
                        double before = Math.hypot(q[i * d + c], q[i * d + c + d / 2]);
                        double after = Math.hypot(rq[i * d + c], rq[i * d + c + d / 2]);
                        assertEquals(before, after, 1e-5 * (1 + before), "pair norm");
                    }
                }
            }
            assertClose("q.k after a shift of all positions", dots[0], dots[1], 1e-4, 1e-4);
            // And the rotation is not the identity: unshifted dot products differ from the raw ones.
            double raw = 0;
            for (int c = 0; c < d; c++) {
                raw += (double) q[(t - 1) * d + c] * kk[c];
            }
            if (Math.abs(raw - dots[0][(t - 1) * t]) < 1e-3) {
                fail("rope did not rotate");
            }
        }
    }
}
