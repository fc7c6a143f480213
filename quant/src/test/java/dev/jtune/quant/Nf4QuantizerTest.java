package dev.jtune.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.model.engine.Dtype;
import java.util.Random;
import org.junit.jupiter.api.Test;

class Nf4QuantizerTest {
    private static final float[] NF4 = Nf4.nf4Table();
    private static final float[] DYN = Nf4.dynamicMap();

    /** Quantizes with both implementations and demands identical bits everywhere. */
    private static Nf4Tensor agree(String what, float[] x, Dtype dtype) {
        Nf4Tensor q = Nf4Quantizer.quantize(x, new long[] {x.length}, dtype);
        Nf4Reference.Result r = Nf4Reference.quantize(x, 64, NF4, DYN);
        assertArrayEquals(Nf4Reference.pack(r.codes()), q.packed(), what + ": packed codes");
        assertEquals(Float.floatToRawIntBits(r.offset()), Float.floatToRawIntBits(q.offset()), what + ": offset");
        int[] codes = new int[q.blocks()];
        for (int b = 0; b < codes.length; b++) {
            codes[b] = q.absmaxCodes()[b] & 0xFF;
        }
        assertArrayEquals(r.absmaxCodes(), codes, what + ": absmax codes");
        assertBits(what + ": nested absmax", r.nested(), q.nestedAbsmax());
        float[] ref = Nf4Reference.dequantize(r.codes(), r.absmaxCodes(), r.nested(), r.offset(), 64, NF4, DYN);
        assertBits(what + ": dequantized fp32", ref, Nf4Quantizer.dequantizeFp32(q));
        return q;
    }

    static void assertBits(String what, float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                throw new AssertionError(what + ": element " + i + " expected " + expected[i] + " got " + actual[i]);
            }
        }
    }

    private static float[] gaussian(Random r, int n, double scale, Dtype dtype) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = Nf4Quantizer.roundTo(dtype, (float) (r.nextGaussian() * scale));
        }
        return x;
    }

    @Test
    void agreesWithReferenceOnRandomSizesAndDtypes() {
        Random r = new Random(7);
        int[] sizes = {1, 2, 3, 63, 64, 65, 127, 128, 1000, 64 * 256, 64 * 257 + 3, 64 * 600 + 33};
        for (int n : sizes) {
            for (Dtype d : Dtype.values()) {
                agree("n=" + n + " " + d, gaussian(r, n, 0.02 * (1 + r.nextInt(50)), d), d);
            }
        }
    }

    /** Above 1M values the blocks are quantized in parallel runs: the result must not depend on it. */
    @Test
    void largeTensorsQuantizedOnEveryCoreAgreeWithReference() {
        Random r = new Random(11);
        int n = 3 * (1 << 20) + 64 * 5 + 17; // several runs, a short last run and a partial last block
        agree("n=" + n + " bf16", gaussian(r, n, 0.05, Dtype.BF16), Dtype.BF16);
    }

    @Test
    void agreesWithReferenceOnAdversarialBlocks() {
        float[] mids = Nf4Quantizer.midpoints(NF4);
        float[] x = new float[64 * 6 + 5];
        // Block 0: absmax 1, every fp32 midpoint and its neighbours one ulp away, both signs.
        x[0] = 1f;
        int k = 1;
        for (float m : mids) {
            x[k++] = m;
            x[k++] = Math.nextUp(m);
            x[k++] = Math.nextDown(m);
            x[k++] = -m;
        }
        // Block 1 stays all zero (absmax 0). Block 2 negative only. Block 3 tiny and subnormal values.
        Random r = new Random(3);
        for (int i = 128; i < 192; i++) {
            x[i] = -r.nextFloat() * 4;
        }
        for (int i = 192; i < 256; i++) {
            x[i] = Float.MIN_VALUE * (i - 200);
        }
        // Block 4: signed zeros and a single nonzero. Block 5: midpoints scaled by a non-power-of-two absmax.
        x[256] = -0f;
        x[300] = 0.75f;
        x[320] = 3f;
        for (int i = 0; i < mids.length; i++) {
            x[321 + i] = mids[i] * 3f;
        }
        // The 5-element tail: x / am differs from x * (1 / am) for some of these.
        x[384] = 0.7f;
        x[385] = -0.1f;
        x[386] = 0.33f;
        x[387] = 0.2f;
        x[388] = -0.3f;
        Nf4Tensor q = agree("adversarial", x, Dtype.FP32);
        // The all-zero block: absmax 0, code 7 (the NF4 zero) everywhere, dequantized to a zero (signed like the
        // block's dequantized scale, which double quantization may leave slightly negative).
        float[] deq = Nf4Quantizer.dequantizeFp32(q);
        for (int i = 64; i < 128; i++) {
            assertEquals((byte) 0x77, q.packed()[i / 2], "zero block byte " + i / 2);
            assertEquals(0f, Math.abs(deq[i]));
        }
        agree("all zero", new float[200], Dtype.FP32);
        agree("one negative", new float[] {-2.5f}, Dtype.FP32);
        float[] constant = new float[64 * 300];
        java.util.Arrays.fill(constant, 0.125f);
        agree("constant (nested values all zero)", constant, Dtype.BF16);
    }

    @Test
    void nearestByExactDistanceAgreesAwayFromRoundedMidpoints() {
        // The reference's fp32-midpoint rule is "nearest table value" except exactly on a rounded midpoint.
        float[] mids = Nf4Quantizer.midpoints(DYN);
        Random r = new Random(11);
        for (int t = 0; t < 200_000; t++) {
            float s = t % 2 == 0 ? r.nextFloat() * 2 - 1 : (float) (r.nextGaussian() * 1e-4);
            boolean onMid = false;
            for (float m : mids) {
                onMid |= s == m;
            }
            if (onMid) {
                continue;
            }
            int best = 0;
            for (int j = 1; j < DYN.length; j++) {
                if (Math.abs((double) s - DYN[j]) < Math.abs((double) s - DYN[best])) {
                    best = j;
                }
            }
            assertEquals(best, Nf4Reference.nearest(DYN, s), "s=" + s);
        }
    }

    @Test
    void handComputedTinyTensor() {
        // x = [0.5, -1, 0, 0.25]: one partial block, so am = max|x| = 1 (clamped at 1e-38) and s = x / 1 = x.
        // NF4 midpoints around: 0.5 lies between 0.38931 (codes 11|12) and 0.50166 (12|13) -> code 12 (0.4407);
        // -1 -> code 0; 0 -> code 7; 0.25 lies between 0.20352 (9|10) and 0.29201 (10|11) -> code 10 (0.2461).
        // Packed high nibble first: 0xC0 = (12<<4)|0, 0x7A = (7<<4)|10.
        // Nested: absmax list [1]; offset = mean = 1; centred [0]; its (partial) nested block stores
        // am = clamp(0, min=1e-38) = 1e-38f and codes 0 / 1e-38 = 0 -> dynamic-map index 127 (0.0).
        // Dequantized scale = 0.0 * 1e-38 + 1 = 1, values = table values.
        Nf4Tensor q = Nf4Quantizer.quantize(new float[] {0.5f, -1f, 0f, 0.25f}, new long[] {2, 2}, Dtype.FP32);
        assertArrayEquals(new byte[] {(byte) 0xC0, 0x7A}, q.packed());
        assertEquals(1f, q.offset());
        assertArrayEquals(new byte[] {127}, q.absmaxCodes());
        assertArrayEquals(new float[] {(float) 1e-38}, q.nestedAbsmax());
        assertArrayEquals(new float[] {1f}, Nf4Quantizer.absmax(q));
        assertArrayEquals(new float[] {0.44070982933044434f, -1f, 0f, 0.24611230194568634f},
                Nf4Quantizer.dequantize(q));
        // Odd count: the padding nibble is code 7. x = [-1, 1, 0.07]: s = x / 1; 0.07 < 0.03979? no ->
        // between 0.03979 (7|8) and 0.12026 (8|9) -> code 8. Bytes: (0<<4)|15 = 0x0F, (8<<4)|7 = 0x87.
        Nf4Tensor odd = Nf4Quantizer.quantize(new float[] {-1f, 1f, 0.07f}, new long[] {3}, Dtype.FP32);
        assertArrayEquals(new byte[] {0x0F, (byte) 0x87}, odd.packed());
    }

    @Test
    void cudaDecisionTreeThresholdsAreTheFp32Midpoints() {
        // csrc/kernels.cu dQuantizeNF4's literals, in ascending order; as floats they equal torch's fp32 midpoints,
        // so the CUDA tree and bucketize agree on every scaled value (both send ties to the lower code).
        double[] cuda = {-0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544,
            -0.23460740596055984, -0.13791173323988914, -0.045525018125772476, 0.03979014977812767,
            0.1202552504837513, 0.2035212516784668, 0.2920137718319893, 0.3893125355243683, 0.5016634166240692,
            0.6427869200706482, 0.8614784181118011};
        float[] mids = Nf4Quantizer.midpoints(NF4);
        for (int i = 0; i < cuda.length; i++) {
            assertEquals(Float.floatToRawIntBits((float) cuda[i]), Float.floatToRawIntBits(mids[i]), "threshold " + i);
        }
    }

    @Test
    void dynamicMapMatchesItsDefinition() {
        // create_dynamic_map(signed=True, 7, 8): 127 negatives, 0, 127 positives, 1. The positives are
        // 10^(i-6) * mean of adjacent linspace(0.1, 1, 2^i + 1) points; checked to 1e-6 relative here (the exact
        // float rounding of torch.linspace is taken from torch and pinned by Nf4FixtureTest).
        assertEquals(0f, DYN[127]);
        assertEquals(1f, DYN[255]);
        java.util.List<Double> expected = new java.util.ArrayList<>();
        for (int i = 0; i < 7; i++) {
            int k = (1 << i) + 1;
            for (int j = 0; j + 1 < k; j++) {
                double a = 0.1 + 0.9 * j / (k - 1);
                double b = 0.1 + 0.9 * (j + 1) / (k - 1);
                expected.add(Math.pow(10, i - 6) * (a + b) / 2);
            }
        }
        java.util.Collections.sort(expected);
        for (int j = 0; j < 127; j++) {
            double e = expected.get(j);
            assertEquals(e, DYN[128 + j], e * 1e-6, "positive " + j);
            assertEquals(-e, DYN[126 - j], e * 1e-6, "negative " + j);
        }
    }

    @Test
    void rejectsNonFiniteAndForeignValues() {
        float[] x = new float[130];
        x[129] = Float.NaN;
        var e = assertThrows(IllegalArgumentException.class,
                () -> Nf4Quantizer.quantize(x, new long[] {2, 65}, Dtype.FP32));
        assertTrue(e.getMessage().contains("element 129 (row 1, column 64) is NaN"), e.getMessage());
        x[129] = Float.NEGATIVE_INFINITY;
        e = assertThrows(IllegalArgumentException.class,
                () -> Nf4Quantizer.quantize(x, new long[] {130}, Dtype.FP32));
        assertTrue(e.getMessage().contains("-Infinity"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Nf4Quantizer.quantize(new float[] {0.1f}, new long[] {1}, Dtype.BF16));
        assertTrue(e.getMessage().contains("not a bf16 value"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Nf4Quantizer.quantize(new float[] {0.1f}, new long[] {2}, Dtype.FP32));
        assertTrue(e.getMessage().contains("1 values for shape [2]"), e.getMessage());
    }
}
