package dev.jtune.lora;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link DropoutMask#fill} on the JDK's vector API: {@link #PAIRS} SplitMix64 outputs at once (64-bit lane products),
 * read as twice as many 32-bit halves, compared unsigned with the threshold, narrowed to bytes. The same bits as the
 * scalar loop. Only loaded when the {@code jdk.incubator.vector} module is present ({@link DropoutMask#VECTOR}).
 */
final class DropoutMaskVector {
    private static final VectorSpecies<Long> LONGS = LongVector.SPECIES_PREFERRED;
    /** Value pairs per iteration: 8 with 512-bit vectors, 4 with 256-bit ones. */
    static final int PAIRS = LONGS.length();
    private static final VectorSpecies<Integer> INTS = IntVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Byte> BYTES = ByteVector.SPECIES_PREFERRED.withShape(
            VectorShape.forBitSize(Math.max(64, 2 * PAIRS * 8)));

    private DropoutMaskVector() {}

    static boolean usable() {
        return PAIRS >= 4 && INTS.length() == 2 * PAIRS && BYTES.length() == 2 * PAIRS;
    }

    /**
     * Writes values {@code from} (even) onwards while a whole iteration fits before {@code to}; returns the first
     * value not written.
     */
    static long fill(MemorySegment out, int threshold, long seed, long from, long to) {
        long[] offsets = new long[PAIRS];
        for (int k = 0; k < PAIRS; k++) {
            offsets[k] = (k + 1) * DropoutMask.GOLDEN_GAMMA;
        }
        LongVector lane = LongVector.fromArray(LONGS, offsets, 0);
        long i = from;
        for (; i + 2L * PAIRS <= to; i += 2L * PAIRS) {
            LongVector z = lane.add(seed + (i / 2) * DropoutMask.GOLDEN_GAMMA);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 30)).mul(0xbf58476d1ce4e5b9L);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 27)).mul(0x94d049bb133111ebL);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 31));
            // Little-endian: each long's low half is the earlier value of its pair.
            IntVector halves = z.reinterpretAsInts();
            IntVector keep = (IntVector) halves.compare(VectorOperators.ULT, threshold).toVector();
            ByteVector bytes = (ByteVector) keep.neg().convertShape(VectorOperators.I2B, BYTES, 0);
            bytes.intoMemorySegment(out, i, ByteOrder.LITTLE_ENDIAN);
        }
        return i;
    }
}
