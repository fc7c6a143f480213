package dev.jtune.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.model.engine.Dtype;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The vector forms of the quantizer's loops against the scalar ones (the reference, itself checked against
 * bitsandbytes): the same codes and absmax bit for bit — values drawn at random and values exactly on the bounds
 * between two codes — and the same input errors.
 */
class Nf4VectorQuantizerTest {
    private static final float[] BOUNDS = Nf4Quantizer.midpoints(Nf4.nf4Table());

    @Test
    void theBuildRunsTheVectorForms() {
        assertTrue(Nf4Quantizer.VECTOR && Nf4VectorQuantizer.usable(64), "jdk.incubator.vector missing or unusable");
    }

    @Test
    void codesAndAbsmaxAreTheScalarOnes() {
        for (int blocksize : new int[] {64, 128, 32}) {
            int blocks = 300;
            Random r = new Random(blocksize);
            float[] x = new float[blocks * blocksize];
            for (int i = 0; i < x.length; i++) {
                x[i] = Nf4Quantizer.roundTo(Dtype.BF16, (float) (r.nextGaussian() * (i % 89 == 0 ? 2.0 : 0.02)));
            }
            // Blocks whose absmax is 1 and whose values sit exactly on a bound, just above or just below it: ties
            // decide the same way in both forms.
            for (int b = 0; b < 20; b++) {
                int start = b * blocksize;
                x[start] = 1f;
                for (int i = 1; i < blocksize; i++) {
                    float bound = BOUNDS[(b + i) % BOUNDS.length];
                    x[start + i] = switch (i % 3) {
                        case 0 -> bound;
                        case 1 -> Math.nextUp(bound);
                        default -> -Math.nextDown(bound);
                    };
                }
            }
            byte[] want = new byte[x.length];
            float[] wantAbsmax = new float[blocks];
            Nf4Quantizer.scalarBlocks(x, blocksize, BOUNDS, wantAbsmax, want, 0, blocks);
            byte[] got = new byte[x.length];
            float[] gotAbsmax = new float[blocks];
            Nf4VectorQuantizer.fullBlocks(x, blocksize, BOUNDS, gotAbsmax, got, 0, blocks);
            assertArrayEquals(want, got, "codes, blocksize " + blocksize);
            for (int b = 0; b < blocks; b++) {
                assertEquals(Float.floatToRawIntBits(wantAbsmax[b]), Float.floatToRawIntBits(gotAbsmax[b]), "absmax " + b);
            }
        }
    }

    @Test
    void theInputCheckFindsWhatTheScalarOneFinds() {
        float[] ok = new float[1024]; // whole vectors: no tail left to the scalar check
        for (int i = 0; i < ok.length; i++) {
            ok[i] = Nf4Quantizer.roundTo(Dtype.BF16, i * 0.001f - 0.5f);
        }
        assertEquals(-1, Nf4VectorQuantizer.firstSuspect(ok, true));
        for (int at : new int[] {0, 17, 500, 1023}) {
            for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, 0.1f}) { // 0.1f is not a bf16 value
                float[] v = ok.clone();
                v[at] = bad;
                int from = Nf4VectorQuantizer.firstSuspect(v, true);
                assertTrue(from >= 0 && from <= at, "suspect from " + from + " for element " + at);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> Nf4Quantizer.quantize(v, new long[] {16, 64}, Dtype.BF16));
                assertTrue(e.getMessage().startsWith("element " + at + " "), e.getMessage());
            }
        }
        float[] fp32 = ok.clone();
        fp32[3] = 0.1f; // any finite float is an fp32 value
        assertEquals(-1, Nf4VectorQuantizer.firstSuspect(fp32, false));
        int tail = Nf4VectorQuantizer.firstSuspect(java.util.Arrays.copyOf(ok, 1003), true);
        assertTrue(tail > 960 && tail <= 1000, "a tail shorter than a vector is left to the scalar check: " + tail);
    }
}
