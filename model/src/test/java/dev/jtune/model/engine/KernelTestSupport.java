package dev.jtune.model.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.Arrays;
import java.util.Random;

/**
 * Shared machinery of the kernel tests: seeded inputs, pure-Java bf16/fp16 rounding, tolerance checks, and a
 * harness that checks a kernel's forward values against a pure-Java double reference and its autograd
 * gradients against central finite differences of that reference.
 *
 * <p>Never create or cast to bf16 through DJL here: only {@link Kernels#cast} may make or leave bf16.
 */
final class KernelTestSupport {
    private KernelTestSupport() {}

    static Kernels kernels() {
        return Kernels.get();
    }

    // ---- kernel and reference shapes ----

    /** The kernel call under test: tensors in (in {@link Arg} order), one tensor out. */
    @FunctionalInterface
    interface KernelFn {
        NDArray apply(NDArray[] in);
    }

    /** The pure-Java double-precision reference: the arguments' values in, the flattened output out. */
    @FunctionalInterface
    interface RefFn {
        double[] apply(double[][] in);
    }

    /** One tensor argument: its values (row-major), shape, integer or float, and whether to check its gradient. */
    record Arg(String name, double[] values, long[] shape, boolean integer, boolean differentiable) {
        Arg {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            if (n != values.length) {
                throw new IllegalArgumentException(name + ": " + values.length + " values for shape "
                        + Arrays.toString(shape));
            }
        }

        /** A float argument whose gradient is checked. */
        static Arg grad(String name, float[] v, long... shape) {
            return new Arg(name, toDouble(v), shape, false, true);
        }

        /** A float argument taken as a constant. */
        static Arg fixed(String name, float[] v, long... shape) {
            return new Arg(name, toDouble(v), shape, false, false);
        }

        /** An int64 argument. */
        static Arg ids(String name, long[] v, long... shape) {
            double[] d = new double[v.length];
            for (int i = 0; i < v.length; i++) {
                d[i] = v[i];
            }
            return new Arg(name, d, shape, true, false);
        }

        NDArray create(NDManager m) {
            Shape s = new Shape(shape);
            if (integer) {
                long[] l = new long[values.length];
                for (int i = 0; i < l.length; i++) {
                    l[i] = (long) values[i];
                }
                return m.create(l, s);
            }
            float[] f = new float[values.length];
            for (int i = 0; i < f.length; i++) {
                f[i] = (float) values[i];
            }
            return m.create(f, s);
        }

        /** This argument with float values rounded to {@code dtype} (integers untouched). */
        Arg roundedTo(Dtype dtype) {
            if (integer || dtype == Dtype.FP32) {
                return this;
            }
            double[] r = new double[values.length];
            for (int i = 0; i < r.length; i++) {
                r[i] = round((float) values[i], dtype);
            }
            return new Arg(name, r, shape, integer, differentiable);
        }
    }

    // ---- random inputs ----

    static float[] normal(Random r, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextGaussian() * scale);
        }
        return v;
    }

    static float[] uniform(Random r, int n, double lo, double hi) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (lo + (hi - lo) * r.nextDouble());
        }
        return v;
    }

    static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    static double maxAbs(double[] v) {
        double m = 0;
        for (double x : v) {
            m = Math.max(m, Math.abs(x));
        }
        return m;
    }

    // ---- reading tensors ----

    /** The values of a float tensor of any dtype (bf16 and fp16 are cast to fp32 by the kernel first). */
    static float[] values(NDArray x) {
        if (x.getDataType() == DataType.FLOAT32) {
            return x.toFloatArray();
        }
        try (NDArray f = kernels().cast(x, Dtype.FP32)) {
            return f.toFloatArray();
        }
    }

    /** The tensor as fp32 (the same tensor if it already is), differentiably. */
    static NDArray fp32(NDArray x) {
        return x.getDataType() == DataType.FLOAT32 ? x : kernels().cast(x, Dtype.FP32);
    }

    // ---- pure-Java reduced-precision rounding ----

    /** fp32 -> bf16 -> fp32 by bits: round to nearest, ties to even; NaN stays NaN. */
    static float bf16(float f) {
        if (Float.isNaN(f)) {
            return Float.NaN;
        }
        return Float.intBitsToFloat(bf16Bits(Float.floatToRawIntBits(f)));
    }

    /** The fp32 bit pattern of the bf16 nearest to the (non-NaN) fp32 pattern {@code bits}, ties to even. */
    static int bf16Bits(int bits) {
        int kept = bits & 0xFFFF0000;
        int dropped = bits & 0xFFFF;
        boolean keptOdd = (kept & 0x10000) != 0;
        if (dropped > 0x8000 || (dropped == 0x8000 && keptOdd)) {
            kept += 0x10000; // carries into the exponent as it should (up to infinity)
        }
        return kept;
    }

    /** fp32 -> fp16 -> fp32 (round to nearest even, the JDK's IEEE conversion). */
    static float fp16(float f) {
        return Float.float16ToFloat(Float.floatToFloat16(f));
    }

    static float round(float f, Dtype dtype) {
        return switch (dtype) {
            case FP32 -> f;
            case BF16 -> bf16(f);
            case FP16 -> fp16(f);
        };
    }

    static float[] round(float[] v, Dtype dtype) {
        float[] r = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            r[i] = round(v[i], dtype);
        }
        return r;
    }

    // ---- assertions ----

    /** Element-wise {@code |actual - expected| <= atol + rtol * |expected|}. */
    static void assertClose(String what, double[] expected, float[] actual, double atol, double rtol) {
        assertEquals(expected.length, actual.length, what + ": element count");
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i];
            double a = actual[i];
            double tol = atol + rtol * Math.abs(e);
            if (!(Math.abs(a - e) <= tol)) {
                fail(what + ": element " + i + " is " + a + ", expected " + e + " (|diff| " + Math.abs(a - e)
                        + " > " + tol + ")");
            }
        }
    }

    static void assertClose(String what, float[] expected, float[] actual, double atol, double rtol) {
        assertClose(what, toDouble(expected), actual, atol, rtol);
    }

    /** Gradients: {@code |actual - expected| <= rtol * (|expected| + max|expected|)} (rtol relative to the tensor's scale). */
    static void assertGradientClose(String what, double[] expected, float[] actual, double rtol) {
        double scale = Math.max(maxAbs(expected), 1e-6);
        assertClose(what, expected, actual, rtol * scale, rtol);
        if (maxAbs(expected) > 1e-6) {
            // The check above is meaningless if the gradient is identically zero on both sides.
            double m = 0;
            for (float a : actual) {
                m = Math.max(m, Math.abs(a));
            }
            if (m == 0) {
                fail(what + ": gradient is all zero, expected max |g| " + maxAbs(expected));
            }
        }
    }

    static void assertAllZero(String what, float[] v) {
        for (int i = 0; i < v.length; i++) {
            if (v[i] != 0f) {
                fail(what + ": element " + i + " is " + v[i] + ", expected exactly 0");
            }
        }
    }

    static void assertShape(NDArray x, long... shape) {
        assertArrayEquals(shape, x.getShape().getShape(), "shape");
    }

    // ---- forward + gradient harness ----

    /**
     * Runs {@code kernel} in fp32 with autograd, checks its output against {@code ref} (element-wise
     * {@code fwdTol * (1 + |expected|)}), then the gradient of {@code sum(out * R)} (R a fixed random
     * projection) for every differentiable argument against central finite differences of {@code ref}.
     */
    static void checkForwardAndGradients(KernelFn kernel, RefFn ref, double fwdTol, double gradTol, long seed,
            Arg... args) {
        double[][] base = new double[args.length][];
        for (int i = 0; i < args.length; i++) {
            base[i] = args[i].values().clone();
        }
        double[] expected = ref.apply(base);
        float[] proj = uniform(new Random(seed), expected.length, -1, 1);
        try (NDManager m = Torch.newManager()) {
            NDArray[] in = new NDArray[args.length];
            for (int i = 0; i < args.length; i++) {
                in[i] = args[i].create(m);
                if (args[i].differentiable()) {
                    in[i].setRequiresGradient(true);
                }
            }
            try (GradientCollector gc = Torch.engine().newGradientCollector()) {
                NDArray out = fp32(kernel.apply(in));
                assertClose("forward", expected, out.toFloatArray(), fwdTol, fwdTol);
                NDArray loss = out.mul(m.create(proj, out.getShape())).sum();
                gc.backward(loss);
                for (int i = 0; i < args.length; i++) {
                    if (!args[i].differentiable()) {
                        continue;
                    }
                    float[] g = in[i].getGradient().toFloatArray();
                    double[] fd = finiteDifference(ref, base, i, proj);
                    assertGradientClose("gradient of " + args[i].name(), fd, g, gradTol);
                }
            }
        }
    }

    /** d/d(in[which]) of {@code sum(ref(in) * proj)}, by central differences in double. */
    static double[] finiteDifference(RefFn ref, double[][] base, int which, float[] proj) {
        double[][] x = new double[base.length][];
        for (int i = 0; i < base.length; i++) {
            x[i] = base[i].clone();
        }
        double[] g = new double[x[which].length];
        for (int j = 0; j < g.length; j++) {
            double orig = x[which][j];
            double h = 1e-6 * Math.max(1.0, Math.abs(orig));
            x[which][j] = orig + h;
            double up = dot(ref.apply(x), proj);
            x[which][j] = orig - h;
            double down = dot(ref.apply(x), proj);
            x[which][j] = orig;
            g[j] = (up - down) / (2 * h);
        }
        return g;
    }

    private static double dot(double[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    /**
     * Runs {@code kernel} with every float argument cast to {@code dtype} by the kernel library, and returns
     * its output as fp32 values.
     */
    static float[] runIn(Dtype dtype, KernelFn kernel, Arg... args) {
        try (NDManager m = Torch.newManager()) {
            NDArray[] in = new NDArray[args.length];
            for (int i = 0; i < args.length; i++) {
                NDArray a = args[i].create(m);
                in[i] = args[i].integer() ? a : kernels().cast(a, dtype);
            }
            NDArray out = kernel.apply(in);
            return values(out);
        }
    }

    /** The arguments' values rounded to {@code dtype}, as a reference takes them. */
    static double[][] valuesIn(Dtype dtype, Arg... args) {
        double[][] v = new double[args.length][];
        for (int i = 0; i < args.length; i++) {
            v[i] = args[i].roundedTo(dtype).values();
        }
        return v;
    }
}
