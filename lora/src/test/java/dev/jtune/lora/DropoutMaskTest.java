package dev.jtune.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Torch;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class DropoutMaskTest {

    /** The definition, from the JDK's own SplitMix64: pair j is the j-th nextLong of SplittableRandom(seed). */
    private static boolean[] reference(long n, double p, long seed) {
        long threshold = Math.min(0xFFFF_FFFFL, Math.round((1 - p) * 0x1_0000_0000L));
        SplittableRandom random = new SplittableRandom(seed);
        boolean[] keep = new boolean[(int) n];
        for (int i = 0; i < n; i += 2) {
            long r = random.nextLong();
            keep[i] = (r & 0xFFFF_FFFFL) < threshold;
            if (i + 1 < n) {
                keep[i + 1] = (r >>> 32) < threshold;
            }
        }
        return keep;
    }

    private static boolean[] mask(NDManager m, long n, double p, long seed, boolean vector) {
        try (NDArray k = DropoutMask.keep(m, new Shape(n), p, seed, vector)) {
            assertEquals(DataType.BOOLEAN, k.getDataType());
            return k.toBooleanArray();
        }
    }

    @Test
    void scalarAndVectorFormsAreSplittableRandomsDrawsBitForBit() {
        // The tests run with jdk.incubator.vector: the vector form is in use wherever this CPU's vectors fit it.
        assertEquals(DropoutMaskVector.usable(), DropoutMask.VECTOR);
        try (NDManager m = Torch.newManager()) {
            // odd sizes, smaller than one vector step, and across several parallel tasks (2^18 values each)
            for (long n : new long[] {1, 2, 7, 15, 16, 17, 33, 1000, 4097, (1 << 19) + 37}) {
                for (double p : new double[] {0.05, 0.5}) {
                    long seed = n * 31 + (long) (p * 100);
                    boolean[] want = reference(n, p, seed);
                    assertArrayEquals(want, mask(m, n, p, seed, false), "scalar, n=" + n + " p=" + p);
                    if (DropoutMask.VECTOR) {
                        assertArrayEquals(want, mask(m, n, p, seed, true), "vector, n=" + n + " p=" + p);
                    }
                }
            }
        }
    }

    @Test
    void keepRateAndPairsAreThoseOfIndependentDraws() {
        int n = 1 << 20;
        try (NDManager m = Torch.newManager()) {
            for (double p : new double[] {0.05, 0.1, 0.25, 0.5}) {
                boolean[] k = mask(m, n, p, 12345, DropoutMask.VECTOR);
                int kept = 0;
                int both = 0; // neighbours: the two halves of one draw (i even), and across draws (i odd)
                int bothAcross = 0;
                for (int i = 0; i < n; i++) {
                    kept += k[i] ? 1 : 0;
                    if (i + 1 < n && k[i] && k[i + 1]) {
                        if (i % 2 == 0) {
                            both++;
                        } else {
                            bothAcross++;
                        }
                    }
                }
                double q = 1 - p;
                double sigma = Math.sqrt(n * q * p);
                assertEquals(n * q, kept, 6 * sigma, "kept of " + n + " at p=" + p);
                double pairs = n / 2.0;
                double sigmaPairs = Math.sqrt(pairs * q * q * (1 - q * q));
                assertEquals(pairs * q * q, both, 6 * sigmaPairs, "both halves of a draw kept, p=" + p);
                assertEquals(pairs * q * q, bothAcross, 6 * sigmaPairs, "neighbours across draws kept, p=" + p);
            }
        }
    }

    @Test
    void theSeedDecides() {
        try (NDManager m = Torch.newManager()) {
            boolean[] a = mask(m, 4096, 0.3, 1, DropoutMask.VECTOR);
            assertArrayEquals(a, mask(m, 4096, 0.3, 1, DropoutMask.VECTOR));
            assertFalse(java.util.Arrays.equals(a, mask(m, 4096, 0.3, 2, DropoutMask.VECTOR)));
        }
    }

    @Test
    void thresholdIsTheKeepProbabilityIn32Bits() {
        assertEquals(0x8000_0000, DropoutMask.threshold(0.5));
        assertEquals(0xC000_0000, DropoutMask.threshold(0.25));
        assertEquals(0xFFFF_FFFF, DropoutMask.threshold(1e-12), "capped below 2^32");
        for (double bad : new double[] {0, 1, -0.1, Double.NaN}) {
            assertThrows(IllegalArgumentException.class, () -> DropoutMask.threshold(bad));
        }
    }
}
