package dev.jtune.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Nf4Quantizer}'s two hot loops on the JDK's vector API, bit for bit the scalar ones: the NF4 code of each value
 * of full blocks (absmax, the product by its reciprocal, the clamp, and the code as the count of bounds below the
 * value — what the scalar form's search tree computes), and the check that the input is finite and of its dtype.
 * Loading a 7B checkpoint quantizes 6.5B values with them (bench/README, "QLoRA at scale").
 *
 * <p>Only loaded when the {@code jdk.incubator.vector} module is in the boot layer ({@link Nf4Quantizer#VECTOR}).
 */
final class Nf4VectorQuantizer {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_PREFERRED.withShape(
            VectorShape.forBitSize(Math.max(64, F.length() * 8)));

    private Nf4VectorQuantizer() {
    }

    /** Whether the shapes above exist here and a block of {@code blocksize} is a whole number of vectors. */
    static boolean usable(int blocksize) {
        return F.length() >= 8 && I.length() == F.length() && B.length() == F.length() && blocksize % F.length() == 0;
    }

    /**
     * Codes and absmax of the full blocks {@code from .. to-1} (each {@code blocksize} values inside {@code x}),
     * against the 15 NF4 {@code bounds}.
     */
    static void fullBlocks(float[] x, int blocksize, float[] bounds, float[] absmaxOut, byte[] codes, int from,
            int to) {
        int lanes = F.length();
        for (int b = from; b < to; b++) {
            int start = b * blocksize;
            int end = start + blocksize;
            FloatVector m = FloatVector.zero(F);
            for (int i = start; i < end; i += lanes) {
                m = m.max(FloatVector.fromArray(F, x, i).abs());
            }
            float amax = m.reduceLanes(VectorOperators.MAX);
            absmaxOut[b] = amax;
            float inv = 1f / Math.max(amax, Nf4Quantizer.TINY);
            for (int i = start; i < end; i += lanes) {
                FloatVector s = FloatVector.fromArray(F, x, i).mul(inv).max(-1f).min(1f);
                FloatVector code = FloatVector.zero(F); // counts up to 15: exact in float
                for (float bound : bounds) {
                    code = code.add(FloatVector.zero(F).blend(1f, s.compare(VectorOperators.GT, bound)));
                }
                code.convertShape(VectorOperators.F2B, B, 0).reinterpretAsBytes().intoArray(codes, i);
            }
        }
    }

    /**
     * The first index from which the scalar check must look again, or -1 when every value is finite and (for
     * {@code bf16}) a bf16 value: a float whose low 16 bits are zero. Chunks of a vector at a time.
     */
    static int firstSuspect(float[] v, boolean bf16) {
        int lanes = F.length();
        int i = 0;
        for (; i + lanes <= v.length; i += lanes) {
            IntVector bits = FloatVector.fromArray(F, v, i).reinterpretAsInts();
            VectorMask<Integer> bad = bits.and(0x7F800000).compare(VectorOperators.EQ, 0x7F800000);
            if (bf16) {
                bad = bad.or(bits.and(0xFFFF).compare(VectorOperators.NE, 0));
            }
            if (bad.anyTrue()) {
                return i;
            }
        }
        return i < v.length ? i : -1;
    }
}
