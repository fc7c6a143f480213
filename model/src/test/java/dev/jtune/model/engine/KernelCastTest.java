package dev.jtune.model.engine;

import static dev.jtune.model.engine.KernelTestSupport.bf16;
import static dev.jtune.model.engine.KernelTestSupport.bf16Bits;
import static dev.jtune.model.engine.KernelTestSupport.uniform;
import static dev.jtune.model.engine.KernelTestSupport.values;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link Kernels#cast} and {@link Kernels#dtypeOf} against bit-level pure-Java references. */
class KernelCastTest {
    private final Kernels k = Kernels.get();

    /** Casts fp32 {@code v} to {@code dtype} and back to fp32 through the kernel. */
    private float[] roundTrip(float[] v, Dtype dtype) {
        try (NDManager m = Torch.newManager()) {
            NDArray x = m.create(v);
            NDArray y = k.cast(x, dtype);
            assertEquals(dtype, k.dtypeOf(y));
            NDArray back = k.cast(y, Dtype.FP32);
            assertEquals(DataType.FLOAT32, back.getDataType());
            return back.toFloatArray();
        }
    }

    private static void assertSameBits(String what, float[] input, int[] expectedBits, float[] actual) {
        assertEquals(expectedBits.length, actual.length);
        for (int i = 0; i < actual.length; i++) {
            int got = Float.floatToRawIntBits(actual[i]);
            if (got != expectedBits[i]) {
                fail(String.format("%s: input %s (0x%08x) gave %s (0x%08x), expected %s (0x%08x)", what, input[i],
                        Float.floatToRawIntBits(input[i]), actual[i], got, Float.intBitsToFloat(expectedBits[i]),
                        expectedBits[i]));
            }
        }
    }

    @Test
    void bf16RoundTripIsExactForBf16RepresentableValues() {
        Random r = new Random(11);
        int n = 5000;
        float[] v = new float[n];
        int i = 0;
        int[] specials = {0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x3F800000, 0xBF800000,
            0x00010000 /* smallest bf16 subnormal */, 0x807F0000 /* largest negative bf16 subnormal */,
            0x7F7F0000 /* largest finite bf16 */, 0x00800000 /* smallest normal */};
        for (int s : specials) {
            v[i++] = Float.intBitsToFloat(s);
        }
        while (i < n) {
            float f = Float.intBitsToFloat(r.nextInt() & 0xFFFF0000);
            if (!Float.isNaN(f)) {
                v[i++] = f;
            }
        }
        int[] expected = new int[n];
        for (int j = 0; j < n; j++) {
            expected[j] = Float.floatToRawIntBits(v[j]);
        }
        assertSameBits("bf16 round trip", v, expected, roundTrip(v, Dtype.BF16));
    }

    @Test
    void fp32ToBf16RoundsToNearestEven() {
        Random r = new Random(12);
        int n = 20000;
        float[] v = new float[n];
        int i = 0;
        // Exact ties with an even and an odd kept half, just below and above a tie, carries into the
        // exponent, overflow to infinity, subnormals, zeros.
        int[] specials = {0x3F808000, 0x3F818000, 0xBF808000, 0xBF818000, 0x3F807FFF, 0x3F808001, 0x3FFF8000,
            0x3FFFFFFF, 0x7F7F8000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F7FFF, 0x00008000, 0x00018000, 0x00000001,
            0x807FFFFF, 0x007F8000, 0x00000000, 0x80000000, 0x7F800000, 0xFF800000};
        for (int s : specials) {
            v[i++] = Float.intBitsToFloat(s);
        }
        while (i < n) {
            int bits = r.nextInt();
            switch (i % 4) {
                case 0 -> bits = (bits & 0xFFFF0000) | 0x8000; // tie
                case 1 -> bits = bits & 0x807FFFFF; // subnormal
                default -> { }
            }
            float f = Float.intBitsToFloat(bits);
            if (!Float.isNaN(f)) {
                v[i++] = f;
            }
        }
        int[] expected = new int[n];
        for (int j = 0; j < n; j++) {
            expected[j] = bf16Bits(Float.floatToRawIntBits(v[j]));
        }
        assertSameBits("fp32 -> bf16", v, expected, roundTrip(v, Dtype.BF16));
    }

    @Test
    void bf16ReferenceRoundingSelfCheck() {
        // The reference itself, on hand-worked cases, so that a wrong reference cannot hide a wrong kernel.
        assertEquals(1.0f, bf16(Float.intBitsToFloat(0x3F808000))); // tie, kept half even: down
        assertEquals(Float.intBitsToFloat(0x3F820000), bf16(Float.intBitsToFloat(0x3F818000))); // tie, odd: up
        assertEquals(1.0f, bf16(Float.intBitsToFloat(0x3F807FFF)));
        assertEquals(Float.intBitsToFloat(0x3F810000), bf16(Float.intBitsToFloat(0x3F808001)));
        assertEquals(2.0f, bf16(Float.intBitsToFloat(0x3FFFFFFF))); // carry into the exponent
        assertEquals(Float.POSITIVE_INFINITY, bf16(Float.MAX_VALUE));
        assertEquals(-3.0f, bf16(-3.0f));
        assertTrue(Float.isNaN(bf16(Float.NaN)));
    }

    @Test
    void nanStaysNanThroughBf16AndFp16() {
        float[] v = {Float.NaN, Float.intBitsToFloat(0x7F800001), Float.intBitsToFloat(0xFFC00000), 1.5f};
        for (Dtype d : new Dtype[] {Dtype.BF16, Dtype.FP16}) {
            float[] got = roundTrip(v, d);
            for (int i = 0; i < 3; i++) {
                assertTrue(Float.isNaN(got[i]), d + ": NaN input " + i + " gave " + got[i]);
            }
            assertEquals(1.5f, got[3]);
        }
    }

    @Test
    void fp32ToFp16RoundsToNearestEven() {
        Random r = new Random(13);
        int n = 20000;
        float[] v = new float[n];
        int[] expected = new int[n];
        for (int i = 0; i < n; i++) {
            if (i % 2 == 0) {
                // An exact midpoint between two adjacent finite fp16 values (normal or subnormal): the even
                // one wins. The midpoint is exact in fp32 (fp16 has 10 mantissa bits).
                short h = (short) (r.nextInt(0x7BFF) | (r.nextBoolean() ? 0x8000 : 0)); // below max finite
                float a = Float.float16ToFloat(h);
                float b = Float.float16ToFloat((short) (h + 1));
                v[i] = (a + b) / 2;
                short even = (h & 1) == 0 ? h : (short) (h + 1);
                expected[i] = Float.floatToRawIntBits(Float.float16ToFloat(even));
            } else {
                // Random values across and beyond the fp16 range (overflow to infinity, underflow to zero).
                float f = (float) (Math.scalb(1.0 + r.nextDouble(), r.nextInt(50) - 30) * (r.nextBoolean() ? 1 : -1));
                v[i] = f;
                expected[i] = Float.floatToRawIntBits(Float.float16ToFloat(Float.floatToFloat16(f)));
            }
        }
        assertSameBits("fp32 -> fp16", v, expected, roundTrip(v, Dtype.FP16));
    }

    @Test
    void fp16RoundTripIsExactForEveryFp16Value() {
        float[] v = new float[65536];
        int n = 0;
        for (int h = 0; h < 65536; h++) {
            float f = Float.float16ToFloat((short) h);
            if (!Float.isNaN(f)) {
                v[n++] = f;
            }
        }
        float[] all = java.util.Arrays.copyOf(v, n);
        int[] expected = new int[n];
        for (int i = 0; i < n; i++) {
            expected[i] = Float.floatToRawIntBits(all[i]);
        }
        assertSameBits("fp16 round trip", all, expected, roundTrip(all, Dtype.FP16));
    }

    @Test
    void bf16AndFp16ConvertIntoEachOther() {
        Random r = new Random(14);
        int n = 4000;
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (Math.scalb(1.0 + r.nextDouble(), r.nextInt(40) - 26) * (r.nextBoolean() ? 1 : -1));
        }
        try (NDManager m = Torch.newManager()) {
            NDArray x = m.create(v);
            // bf16 -> fp16: the bf16 value, rounded to nearest even fp16.
            NDArray b = k.cast(x, Dtype.BF16);
            NDArray bh = k.cast(b, Dtype.FP16);
            assertEquals(Dtype.FP16, k.dtypeOf(bh));
            float[] got = values(bh);
            // fp16 -> bf16: the fp16 value, rounded to nearest even bf16.
            NDArray h = k.cast(x, Dtype.FP16);
            NDArray hb = k.cast(h, Dtype.BF16);
            assertEquals(Dtype.BF16, k.dtypeOf(hb));
            float[] got2 = values(hb);
            int[] e1 = new int[n];
            int[] e2 = new int[n];
            for (int i = 0; i < n; i++) {
                e1[i] = Float.floatToRawIntBits(KernelTestSupport.fp16(bf16(v[i])));
                e2[i] = Float.floatToRawIntBits(bf16(KernelTestSupport.fp16(v[i])));
            }
            assertSameBits("bf16 -> fp16", v, e1, got);
            assertSameBits("fp16 -> bf16", v, e2, got2);
        }
    }

    @Test
    void castKeepsShapeAndFp32ToFp32IsIdentity() {
        float[] v = uniform(new Random(15), 24, -5, 5);
        try (NDManager m = Torch.newManager()) {
            NDArray x = m.create(v, new Shape(2, 3, 4));
            for (Dtype d : Dtype.values()) {
                NDArray y = k.cast(x, d);
                KernelTestSupport.assertShape(y, 2, 3, 4);
            }
            NDArray same = k.cast(x, Dtype.FP32);
            assertEquals(DataType.FLOAT32, same.getDataType());
            float[] got = same.toFloatArray();
            for (int i = 0; i < v.length; i++) {
                assertEquals(Float.floatToRawIntBits(v[i]), Float.floatToRawIntBits(got[i]));
            }
        }
    }

    @Test
    void castGradientIsTheUpstreamGradientRoundedToTheNarrowDtype() {
        // loss = sum(fp32(cast(x, d)) * R): d loss/dx = R rounded to d (backward of the fp32 cast makes R a d
        // tensor) then widened back to fp32. Exact, so compared bit for bit.
        Random r = new Random(16);
        int n = 64;
        float[] x = KernelTestSupport.normal(r, n, 3);
        float[] proj = KernelTestSupport.normal(r, n, 1.7);
        for (Dtype d : Dtype.values()) {
            try (NDManager m = Torch.newManager()) {
                NDArray xa = m.create(x);
                xa.setRequiresGradient(true);
                try (GradientCollector gc = Torch.engine().newGradientCollector()) {
                    NDArray y = k.cast(k.cast(xa, d), Dtype.FP32);
                    gc.backward(y.mul(m.create(proj)).sum());
                    float[] g = xa.getGradient().toFloatArray();
                    int[] expected = new int[n];
                    for (int i = 0; i < n; i++) {
                        expected[i] = Float.floatToRawIntBits(KernelTestSupport.round(proj[i], d));
                    }
                    assertSameBits("gradient through " + d, proj, expected, g);
                }
            }
        }
    }

    @Test
    void dtypeOfNamesFloatDtypesAndNothingElse() {
        try (NDManager m = Torch.newManager()) {
            NDArray f32 = m.create(new float[] {1, 2, 3});
            assertEquals(Dtype.FP32, k.dtypeOf(f32));
            NDArray bf = k.cast(f32, Dtype.BF16);
            assertEquals(Dtype.BF16, k.dtypeOf(bf));
            assertEquals(DataType.UNKNOWN, bf.getDataType(), "DJL cannot name bf16");
            assertEquals(Dtype.FP16, k.dtypeOf(k.cast(f32, Dtype.FP16)));
            assertEquals(Dtype.FP16, k.dtypeOf(f32.toType(DataType.FLOAT16, false)));
            assertEquals(Dtype.FP32, k.dtypeOf(k.cast(bf, Dtype.FP32)));
            assertNull(k.dtypeOf(m.create(new double[] {1, 2})), "float64");
            assertNull(k.dtypeOf(m.create(new long[] {1, 2})), "int64");
            assertNull(k.dtypeOf(m.create(new int[] {1, 2})), "int32");
            assertNull(k.dtypeOf(m.create(new boolean[] {true})), "bool");
            assertNull(k.dtypeOf(m.create(new byte[] {1})), "int8");
        }
    }

    @Test
    void dtypeCodesAreLibtorchScalarTypes() {
        // The codes cast() sends; checked against the widths libtorch gives the cast results.
        assertEquals(6, Dtype.FP32.torchCode());
        assertEquals(5, Dtype.FP16.torchCode());
        assertEquals(15, Dtype.BF16.torchCode());
        try (NDManager m = Torch.newManager()) {
            NDArray x = m.create(new float[] {1f / 3});
            // 1/3 survives differently in each dtype: fp16 keeps 11 significant bits, bf16 8.
            assertEquals(KernelTestSupport.fp16(1f / 3), values(k.cast(x, Dtype.FP16))[0]);
            assertEquals(bf16(1f / 3), values(k.cast(x, Dtype.BF16))[0]);
            assertEquals(1f / 3, values(k.cast(x, Dtype.FP32))[0]);
        }
    }
}
