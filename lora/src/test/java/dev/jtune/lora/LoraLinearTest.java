package dev.jtune.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.safetensors.HalfFloats;
import java.util.Random;
import org.junit.jupiter.api.Test;

class LoraLinearTest {

    @Test
    void initialisationIsKaimingUniformAndZeroB() {
        int r = 16;
        int in = 256;
        try (NDManager m = Torch.newManager()) {
            var base = new DenseLinear(m.zeros(new Shape(64, in)));
            LoraLinear l = LoraLinear.initialise(base, "model.layers.0.self_attn.q_proj", r, 2.0, 0.0, 7, m);
            float[] a = l.loraA().toFloatArray();
            double bound = 1 / Math.sqrt(in);
            double sum = 0;
            double sq = 0;
            for (float v : a) {
                assertTrue(Math.abs(v) <= bound, "A value " + v + " outside ±" + bound);
                sum += v;
                sq += (double) v * v;
            }
            int n = a.length;
            // U(-b, b): mean 0 (sd b/√(3n)), variance b²/3.
            assertEquals(0, sum / n, 5 * bound / Math.sqrt(3.0 * n));
            assertEquals(bound * bound / 3, sq / n, 0.05 * bound * bound / 3);
            for (float v : l.loraB().toFloatArray()) {
                assertEquals(0f, v);
            }
            assertEquals(new Shape(r, in), l.loraA().getShape());
            assertEquals(new Shape(64, r), l.loraB().getShape());
            assertTrue(l.loraA().hasGradient() && l.loraB().hasGradient(), "A and B are trainable");

            // Seeded: the same seed and name give the same bits; another name or seed does not.
            var again = LoraLinear.initialise(new DenseLinear(m.zeros(new Shape(64, in))),
                    "model.layers.0.self_attn.q_proj", r, 2.0, 0.0, 7, m);
            assertArrayEquals(a, again.loraA().toFloatArray());
            var other = LoraLinear.initialise(new DenseLinear(m.zeros(new Shape(64, in))),
                    "model.layers.0.self_attn.k_proj", r, 2.0, 0.0, 7, m);
            assertNotEquals(a[0], other.loraA().toFloatArray()[0]);
            var seed8 = LoraLinear.initialise(new DenseLinear(m.zeros(new Shape(64, in))),
                    "model.layers.0.self_attn.q_proj", r, 2.0, 0.0, 8, m);
            assertNotEquals(a[0], seed8.loraA().toFloatArray()[0]);
        }
    }

    /** base(x) + s·B·A·x against a double reference, in fp32. */
    @Test
    void forwardMatchesReference() {
        int n = 5, in = 12, out = 7, r = 3;
        double s = 16.0 / 3;
        Random rnd = new Random(1);
        float[] w = DoubleMath.gaussian(rnd, out * in, 0.3);
        float[] a = DoubleMath.gaussian(rnd, r * in, 0.3);
        float[] b = DoubleMath.gaussian(rnd, out * r, 0.3);
        float[] x = DoubleMath.gaussian(rnd, n * in, 1);
        try (NDManager m = Torch.newManager()) {
            LoraLinear l = new LoraLinear(new DenseLinear(m.create(w, new Shape(out, in))),
                    m.create(a, new Shape(r, in)), m.create(b, new Shape(out, r)), s, 0.0);
            float[] y = l.forward(m.create(x, new Shape(n, in))).toFloatArray();
            double[] expected = reference(DoubleMath.toDouble(x), w, a, b, s, n, in, out, r);
            assertTrue(DoubleMath.maxAbsDiff(expected, y) < 1e-5, "max diff " + DoubleMath.maxAbsDiff(expected, y));
        }
    }

    /** In a bf16 model the adapter path runs in fp32 and only the sum is rounded to bf16, as PEFT does. */
    @Test
    void bf16BaseKeepsTheAdapterInFp32() {
        int n = 4, in = 16, out = 8, r = 2;
        Random rnd = new Random(2);
        float[] w = DoubleMath.gaussian(rnd, out * in, 0.3);
        float[] a = DoubleMath.gaussian(rnd, r * in, 0.3);
        float[] b = DoubleMath.gaussian(rnd, out * r, 0.3);
        float[] x = DoubleMath.gaussian(rnd, n * in, 1);
        Kernels k = Kernels.get();
        try (NDManager m = Torch.newManager()) {
            NDArray wb = k.cast(m.create(w, new Shape(out, in)), Dtype.BF16);
            NDArray xb = k.cast(m.create(x, new Shape(n, in)), Dtype.BF16);
            LoraLinear l = new LoraLinear(new DenseLinear(wb), m.create(a, new Shape(r, in)),
                    m.create(b, new Shape(out, r)), 2.0, 0.0);
            NDArray y = l.forward(xb);
            assertEquals(Dtype.BF16, k.dtypeOf(y));
            float[] got = k.cast(y, Dtype.FP32).toFloatArray();
            // Reference: bf16-rounded inputs, base product rounded to bf16 (the base Linear's output),
            // adapter in double, sum rounded to bf16.
            double[] xr = new double[x.length];
            for (int i = 0; i < x.length; i++) {
                xr[i] = HalfFloats.bfloat16ToFloat(HalfFloats.floatToBFloat16(x[i]));
            }
            float[] wr = new float[w.length];
            for (int i = 0; i < w.length; i++) {
                wr[i] = HalfFloats.bfloat16ToFloat(HalfFloats.floatToBFloat16(w[i]));
            }
            double[] baseOut = DoubleMath.linear(xr, wr, n, in, out);
            double[] delta = reference(xr, new float[out * in], a, b, 2.0, n, in, out, r);
            for (int i = 0; i < got.length; i++) {
                double baseB = HalfFloats.bfloat16ToFloat(HalfFloats.floatToBFloat16((float) baseOut[i]));
                double expected = baseB + delta[i];
                // One bf16 rounding of the sum (2^-9 relative), plus slack for the base product's rounding.
                assertEquals(expected, got[i], Math.abs(expected) * 0x1p-8 + 1e-2, "element " + i);
            }
        }
    }

    /** dL/dA and dL/dB of L = Σ y·g through autograd against central differences of the double reference. */
    @Test
    void gradientsMatchFiniteDifferences() {
        int n = 3, in = 5, out = 4, r = 2;
        double s = 1.5;
        Random rnd = new Random(3);
        float[] w = DoubleMath.gaussian(rnd, out * in, 0.5);
        float[] a = DoubleMath.gaussian(rnd, r * in, 0.5);
        float[] b = DoubleMath.gaussian(rnd, out * r, 0.5);
        float[] x = DoubleMath.gaussian(rnd, n * in, 1);
        float[] g = DoubleMath.gaussian(rnd, n * out, 1);
        try (NDManager m = Torch.newManager()) {
            LoraLinear l = new LoraLinear(new DenseLinear(m.create(w, new Shape(out, in))),
                    m.create(a, new Shape(r, in)), m.create(b, new Shape(out, r)), s, 0.0);
            try (GradientCollector gc = Torch.engine().newGradientCollector()) {
                NDArray y = l.forward(m.create(x, new Shape(n, in)));
                gc.backward(y.mul(m.create(g, new Shape(n, out))).sum());
            }
            float[] ga = l.loraA().getGradient().toFloatArray();
            float[] gb = l.loraB().getGradient().toFloatArray();
            double h = 0x1p-10; // exact in float for these magnitudes, and the loss is linear in each element
            for (int i = 0; i < a.length; i++) {
                double fd = (loss(w, bump(a, i, h), b, x, g, s, n, in, out, r)
                        - loss(w, bump(a, i, -h), b, x, g, s, n, in, out, r)) / (2 * h);
                assertEquals(fd, ga[i], 1e-3 * Math.max(1, Math.abs(fd)), "dL/dA[" + i + "]");
            }
            for (int i = 0; i < b.length; i++) {
                double fd = (loss(w, a, bump(b, i, h), x, g, s, n, in, out, r)
                        - loss(w, a, bump(b, i, -h), x, g, s, n, in, out, r)) / (2 * h);
                assertEquals(fd, gb[i], 1e-3 * Math.max(1, Math.abs(fd)), "dL/dB[" + i + "]");
            }
        }
    }

    @Test
    void dropoutOnlyWhileTraining() {
        // in = r = out = 1: the adapter's term is b·a·s·dropout(x), so it is 0 or b·a·s·x/(1-p).
        double p = 0.5;
        try (NDManager m = Torch.newManager()) {
            LoraLinear l = new LoraLinear(new DenseLinear(m.zeros(new Shape(1, 1))), m.create(new float[] {2f},
                    new Shape(1, 1)), m.create(new float[] {3f}, new Shape(1, 1)), 0.5, p);
            NDArray x = m.create(new float[] {1f}, new Shape(1, 1));
            for (int i = 0; i < 20; i++) {
                assertEquals(3f, l.forward(x).toFloatArray()[0], 1e-6, "evaluation mode has no dropout");
            }
            l.setTraining(true);
            int zeros = 0;
            int kept = 0;
            for (int i = 0; i < 400; i++) {
                float v = l.forward(x).toFloatArray()[0];
                if (v == 0f) {
                    zeros++;
                } else {
                    assertEquals(3.0 / (1 - p), v, 1e-5, "kept inputs are scaled by 1/(1-p)");
                    kept++;
                }
            }
            assertTrue(zeros > 140 && kept > 140, "dropout p=0.5 dropped " + zeros + " of 400");
            // libtorch's generator: the same seed gives the same mask sequence.
            float[] first = masks(l, x, 11);
            assertArrayEquals(first, masks(l, x, 11));
            l.setTraining(false);
            assertEquals(3f, l.forward(x).toFloatArray()[0], 1e-6);
        }
    }

    /**
     * PEFT's arithmetic, bit for bit, with gradients: with dropout (p = 0.25, exact in float) and without, for scalings
     * that are powers of two (the kernel then scales the rank-r intermediate: {@link LoraKernels#scalesExactly}) and
     * one that is not (PEFT's order).
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"2.0, 0.25", "0.5, 0.25", "1.5, 0.25", "2.0, 0.0", "0.75, 0.0"})
    void trainingIsPeftsArithmeticBitForBitWithGradients(double s, double p) {
        // On CPU the mask is DropoutMask's, seeded by one draw from libtorch's generator; given that mask, output and
        // gradients must be torch.dropout's exactly (ATen's _dropout_impl: h * (mask / (1 - p))), although the
        // adapter path keeps a bool mask for backward and drops with where() (+0.0 where a product may give -0.0: the
        // gradients are compared by value, so -0.0 == +0.0 there).
        int n = 96;
        int in = 40;
        int out = 24;
        int r = 8;
        Random rnd = new Random(5);
        try (NDManager m = Torch.newManager()) {
            NDArray w = m.create(gaussian(rnd, out * in), new Shape(out, in));
            float[] av = gaussian(rnd, r * in);
            float[] bv = gaussian(rnd, out * r);
            float[] xv = gaussian(rnd, n * in);
            NDArray g = m.create(gaussian(rnd, n * out), new Shape(n, out));

            LoraLinear l = new LoraLinear(new DenseLinear(w.duplicate()), m.create(av, new Shape(r, in)),
                    m.create(bv, new Shape(out, r)), s, p);
            l.setTraining(true);
            NDArray x1 = m.create(xv, new Shape(n, in));
            x1.setRequiresGradient(true);
            Autograd.manualSeed(77);
            NDArray y1 = Autograd.withGrad(() -> l.forward(x1));
            Autograd.backward(y1, g);

            NDArray a2 = m.create(av, new Shape(r, in));
            NDArray b2 = m.create(bv, new Shape(out, r));
            NDArray x2 = m.create(xv, new Shape(n, in));
            for (NDArray t : new NDArray[] {a2, b2, x2}) {
                t.setRequiresGradient(true);
            }
            Autograd.manualSeed(77);
            NDArray keep = p > 0 ? DropoutMask.keep(m, x2.getShape(), p, LoraKernels.drawSeed(x2))
                    : m.ones(x2.getShape(), ai.djl.ndarray.types.DataType.BOOLEAN);
            NDArray noise = keep.toType(ai.djl.ndarray.types.DataType.FLOAT32, false).div((float) (1 - p));
            NDArray y2 = Autograd.withGrad(() -> {
                NDArray base = ai.djl.nn.core.Linear.linear(x2, w).singletonOrThrow();
                NDArray h = p > 0 ? x2.mul(noise) : x2;
                NDArray delta = ai.djl.nn.core.Linear.linear(ai.djl.nn.core.Linear.linear(h, a2).singletonOrThrow(), b2)
                        .singletonOrThrow().mul((float) s);
                return base.add(delta);
            });
            Autograd.backward(y2, g);

            float[] want = y2.toFloatArray();
            float[] got = y1.toFloatArray();
            for (int i = 0; i < want.length; i++) {
                assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), "y[" + i + "]");
            }
            int dropped = 0;
            for (boolean k : keep.toBooleanArray()) {
                dropped += k ? 0 : 1;
            }
            assertTrue(dropped > p * n * in - 200 && dropped < p * n * in + 200,
                    "p=" + p + " dropped " + dropped + " of " + n * in);
            assertArrayEquals(Autograd.gradient(x2).toFloatArray(), Autograd.gradient(x1).toFloatArray(), 0f, "dL/dx");
            assertArrayEquals(Autograd.gradient(a2).toFloatArray(), Autograd.gradient(l.loraA()).toFloatArray(), 0f,
                    "dL/dA");
            assertArrayEquals(Autograd.gradient(b2).toFloatArray(), Autograd.gradient(l.loraB()).toFloatArray(), 0f,
                    "dL/dB");
        }
    }

    @Test
    void scalesExactlyOnlyByPowersOfTwoThatFp32Represents() {
        for (double s : new double[] {1, 2, 0.5, 4, 0x1p-126, 0x1p127}) {
            assertTrue(LoraKernels.scalesExactly(s), "scaling " + s);
        }
        for (double s : new double[] {1.5, 16.0 / 3, 0, -2, Double.NaN, Double.POSITIVE_INFINITY, 0x1p-127, 0x1p128,
                Math.nextUp(2.0)}) {
            assertFalse(LoraKernels.scalesExactly(s), "scaling " + s);
        }
    }

    private static float[] gaussian(Random rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        return v;
    }

    private static float[] masks(LoraLinear l, NDArray x, long seed) {
        Torch.engine().setRandomSeed((int) seed);
        float[] v = new float[32];
        for (int i = 0; i < v.length; i++) {
            v[i] = l.forward(x).toFloatArray()[0];
        }
        return v;
    }

    @Test
    void rejectsMismatchedShapes() {
        try (NDManager m = Torch.newManager()) {
            var base = new DenseLinear(m.zeros(new Shape(4, 6)));
            var e = assertThrows(IllegalArgumentException.class,
                    () -> new LoraLinear(base, m.zeros(new Shape(2, 5)), m.zeros(new Shape(4, 2)), 1, 0));
            assertTrue(e.getMessage().contains("[r, in]"), e.getMessage());
        }
    }

    static double[] reference(double[] x, float[] w, float[] a, float[] b, double s, int n, int in, int out, int r) {
        double[] base = DoubleMath.linear(x, w, n, in, out);
        double[] h = DoubleMath.linear(x, a, n, in, r);
        double[] d = DoubleMath.linear(h, b, n, r, out);
        for (int i = 0; i < base.length; i++) {
            base[i] += s * d[i];
        }
        return base;
    }

    private static double loss(float[] w, float[] a, float[] b, float[] x, float[] g, double s, int n, int in,
            int out, int r) {
        double[] y = reference(DoubleMath.toDouble(x), w, a, b, s, n, in, out, r);
        double sum = 0;
        for (int i = 0; i < y.length; i++) {
            sum += y[i] * g[i];
        }
        return sum;
    }

    private static float[] bump(float[] v, int i, double h) {
        float[] c = v.clone();
        c[i] = (float) (v[i] + h);
        return c;
    }
}
