package dev.jtune.quant;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The table lookup of {@link Nf4CpuDequantizer} for 16-bit buffers with the JDK's vector API: one short vector of the
 * block's 16 table entries, and per {@link #LANES} values one permutation of it by the codes ({@code vpermw} on
 * AVX-512). 2-3 times the scalar loop's rate on this machine (bench/README, "NF4 dequantization"); the same bits.
 *
 * <p>Only loaded when the {@code jdk.incubator.vector} module is in the boot layer ({@code launch.sh} and the tests
 * add it; {@link Nf4CpuDequantizer#VECTOR} checks first), so a JVM without it never resolves these classes.
 */
final class Nf4VectorLookup {
    private static final VectorSpecies<Short> OUT = ShortVector.SPECIES_PREFERRED;
    /** Values per permutation: 32 with 512-bit vectors, 16 with 256-bit ones. */
    static final int LANES = OUT.length();
    /** LANES/2 shorts: one per packed byte. */
    private static final VectorSpecies<Short> PAIRS = ShortVector.SPECIES_PREFERRED.withShape(
            VectorShape.forBitSize(Math.max(64, LANES * 8)));
    /** LANES/2 bytes: the packed codes of LANES values. */
    private static final VectorSpecies<Byte> PACKED = ByteVector.SPECIES_PREFERRED.withShape(
            VectorShape.forBitSize(Math.max(64, LANES * 4)));

    /** 16 floats: the NF4 map times one absmax, at once (512-bit vectors; else 256-bit twice). */
    private static final VectorSpecies<Float> MAP = FloatVector.SPECIES_PREFERRED.length() >= 16
            ? FloatVector.SPECIES_512 : FloatVector.SPECIES_256;
    private static final VectorSpecies<Short> MAP_SHORTS = ShortVector.SPECIES_PREFERRED.withShape(
            VectorShape.forBitSize(MAP.length() * 16));

    /** 16 ints: an fp32 buffer's table in one 512-bit vector (AVX-512), 16 values per permutation. */
    private static final VectorSpecies<Integer> WORDS = IntVector.SPECIES_512;
    /** 8 bytes: the packed codes of 16 values; as 8 shorts, one per packed byte. */
    private static final VectorSpecies<Byte> PACKED_WORDS = ByteVector.SPECIES_64;
    private static final VectorSpecies<Short> PAIRS_WORDS = ShortVector.SPECIES_128;

    private Nf4VectorLookup() {
    }

    /**
     * The bf16 table of one block: {@code quantMap[k] * absmax} rounded to nearest even, as the scalar form computes
     * it (finite products; a NaN absmax takes the scalar path), in the lanes 0-15 of a lookup vector.
     */
    static ShortVector bf16Entries(float[] quantMap, float absmax) {
        if (MAP.length() < 16) {
            short[] table = new short[Math.max(16, LANES)];
            for (int k = 0; k < 16; k += MAP.length()) {
                rounded(quantMap, k, absmax).convertShape(VectorOperators.I2S, MAP_SHORTS, 0).reinterpretAsShorts()
                        .intoArray(table, k);
            }
            return entries(table);
        }
        return (ShortVector) rounded(quantMap, 0, absmax).convertShape(VectorOperators.I2S, OUT, 0);
    }

    private static IntVector rounded(float[] quantMap, int k, float absmax) {
        IntVector bits = FloatVector.fromArray(MAP, quantMap, k).mul(absmax).reinterpretAsInts();
        return bits.add(0x7FFF).add(bits.lanewise(VectorOperators.LSHR, 16).and(1)).lanewise(VectorOperators.LSHR, 16);
    }

    /** A lookup vector of {@code table}'s 16 encoded entries, through {@code scratch} ({@link #LANES} long at least). */
    static ShortVector entries(long[] table, short[] scratch) {
        for (int k = 0; k < 16; k++) {
            scratch[k] = (short) table[k];
        }
        return entries(scratch);
    }

    private static ShortVector entries(short[] table) {
        return ShortVector.fromArray(OUT, table, 0);
    }

    /** Whether the preferred vectors hold the 16-entry table and the shapes above exist on this CPU. */
    static boolean usable() {
        return LANES >= 16 && PAIRS.length() == LANES / 2 && PACKED.length() == LANES / 2;
    }

    /** Whether an fp32 buffer's 16-entry table fits one preferred int vector (512-bit): else its lookup stays scalar. */
    static boolean usableForFp32() {
        return IntVector.SPECIES_PREFERRED.length() >= WORDS.length();
    }

    /** A lookup vector of {@code table}'s 16 fp32 entries (raw bits), through {@code scratch} (16 ints). */
    static IntVector fp32Entries(long[] table, int[] scratch) {
        for (int k = 0; k < 16; k++) {
            scratch[k] = (int) table[k];
        }
        return IntVector.fromArray(WORDS, scratch, 0);
    }

    /**
     * As {@link #write} for an fp32 buffer, 16 values a step: {@code vpermd} of the 16 table entries by the codes,
     * ordered as {@link #write} orders them.
     */
    static long writeFp32(MemorySegment packed, MemorySegment out, IntVector entries, long first, long last) {
        long i = first;
        for (; i + 16 <= last; i += 16) {
            IntVector index = (IntVector) codes(packed, i, PACKED_WORDS, PAIRS_WORDS)
                    .convertShape(VectorOperators.B2I, WORDS, 0);
            index.selectFrom(entries).intoMemorySegment(out, 4 * i, ByteOrder.LITTLE_ENDIAN);
        }
        return i;
    }

    /**
     * The codes of the values from {@code i} (even), one byte each in element order, from {@code bytes.length()} packed
     * bytes: each packed byte's high nibble is the earlier value, so as a little-endian short (high << 0 | low << 8)
     * its two bytes are the two indices in order; widened, they index the table.
     */
    private static ByteVector codes(MemorySegment packed, long i, VectorSpecies<Byte> bytes, VectorSpecies<Short> pairs) {
        ByteVector p = ByteVector.fromMemorySegment(bytes, packed, i >> 1, ByteOrder.LITTLE_ENDIAN);
        ShortVector u = ((ShortVector) p.convertShape(VectorOperators.B2S, pairs, 0)).and((short) 0xFF);
        return u.lanewise(VectorOperators.LSHR, 4).or(u.and((short) 0xF).lanewise(VectorOperators.LSHL, 8))
                .reinterpretAsBytes();
    }

    /**
     * Writes values {@code first ..} in steps of {@link #LANES} while a whole step fits before {@code last}
     * ({@code first} even); returns the first value not written. {@code entries} holds the 16 encoded table entries
     * in its lanes 0-15.
     */
    static long write(MemorySegment packed, MemorySegment out, ShortVector entries, long first, long last) {
        long i = first;
        for (; i + LANES <= last; i += LANES) {
            ShortVector index = (ShortVector) codes(packed, i, PACKED, PAIRS).convertShape(VectorOperators.B2S, OUT, 0);
            index.selectFrom(entries).intoMemorySegment(out, 2 * i, ByteOrder.LITTLE_ENDIAN);
        }
        return i;
    }
}
