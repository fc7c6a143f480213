package dev.jtune.quant;

import ai.djl.ndarray.NDArray;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.safetensors.HalfFloats;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.stream.IntStream;

/**
 * NF4 dequantization on the CPU, written straight into a native buffer: per 64-value block, the 16 possible values
 * ({@code quant_map[code] * absmax} in fp32, rounded to the stored dtype, encoded in the buffer's) make a table, and
 * each packed byte becomes two table entries. One pass over the codes, no intermediate tensors — the TorchScript
 * form ({@code nf4.torchscript.py}) makes five full-size ones; on two cores this is about ten times faster (bench/README,
 * "NF4 dequantization"). The arithmetic is the same single fp32 rounding per product and per absmax, so the
 * result is bit for bit the kernel's (and bitsandbytes').
 *
 * <p>Reads the packed and absmax codes in place (contiguous CPU uint8 tensors) and writes raw memory: the buffer's
 * autograd version is not bumped, as with the kernel's {@code writer} alias (see {@link Nf4Linear}).
 */
final class Nf4CpuDequantizer {
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /**
     * Whether the 16-bit lookup runs on the JDK's vector API ({@link Nf4VectorLookup}): where {@link Nf4Quantizer#VECTOR}
     * says the module is there (launch.sh adds it) and the CPU's vectors hold the table.
     */
    static final boolean VECTOR = Nf4Quantizer.VECTOR && Nf4VectorLookup.usable();
    /**
     * Blocks per parallel task: 4K blocks = 256K values (~0.1-0.3 ms), far above a fork's cost and small enough that a
     * small model's projections (under 1M values) use every core too.
     */
    private static final int BLOCKS_PER_TASK = 4096;

    private final float[] nestedAbsmax;
    private final float[] quantMap;
    private final float[] nestedMap;
    private final float offset;
    private final int blocksize;
    private final int nestedBlocksize;
    private final long numel;
    private final Dtype stored;

    Nf4CpuDequantizer(Nf4Linear.Weights w) {
        this.nestedAbsmax = w.nestedAbsmax().toFloatArray();
        this.quantMap = w.quantMap().toFloatArray();
        this.nestedMap = w.nestedMap().toFloatArray();
        this.offset = w.offset().toFloatArray()[0];
        this.blocksize = w.blocksize();
        this.nestedBlocksize = w.nestedBlocksize();
        long n = 1;
        for (long d : w.shape()) {
            n *= d;
        }
        this.numel = n;
        this.stored = w.dtype();
    }

    /** Whether {@code into} can serve this weight and buffer: CPU tensors, an even block size. */
    static boolean applies(NDArray buffer, Nf4Linear.Weights w) {
        return !buffer.getDevice().isGpu() && !w.packed().getDevice().isGpu() && w.blocksize() % 2 == 0;
    }

    /**
     * Writes the weight into {@code buffer} ([out, in], contiguous, of {@code bufferDtype}) from the packed and
     * absmax codes of {@code w}.
     */
    void into(NDArray buffer, Dtype bufferDtype, Nf4Linear.Weights w) {
        into(buffer, bufferDtype, w, VECTOR);
    }

    /** As {@link #into(NDArray, Dtype, Nf4Linear.Weights)}, the 16-bit lookup vectorised or not (tests run both). */
    void into(NDArray buffer, Dtype bufferDtype, Nf4Linear.Weights w, boolean useVector) {
        MemorySegment packed = MemorySegment.ofAddress(Torch.dataAddress(w.packed())).reinterpret((numel + 1) / 2);
        long blocks = w.codes().getShape().size();
        MemorySegment codes = MemorySegment.ofAddress(Torch.dataAddress(w.codes())).reinterpret(blocks);
        MemorySegment out = MemorySegment.ofAddress(Torch.dataAddress(buffer)).reinterpret(numel * bufferDtype.bytes());
        int tasks = (int) ((blocks + BLOCKS_PER_TASK - 1) / BLOCKS_PER_TASK);
        IntStream.range(0, tasks).parallel().forEach(t -> {
            long from = (long) t * BLOCKS_PER_TASK;
            long to = Math.min(blocks, from + BLOCKS_PER_TASK);
            long[] table = new long[16];
            boolean bf16 = stored == Dtype.BF16 && bufferDtype == Dtype.BF16;
            boolean vector = useVector && bufferDtype != Dtype.FP32;
            short[] entries = vector ? new short[Math.max(16, Nf4VectorLookup.LANES)] : null;
            int[] words = useVector && bufferDtype == Dtype.FP32 && Nf4VectorLookup.usableForFp32() ? new int[16] : null;
            for (long b = from; b < to; b++) {
                float absmax = nestedMap[codes.get(ValueLayout.JAVA_BYTE, b) & 0xFF]
                        * nestedAbsmax[(int) (b / nestedBlocksize)] + offset;
                // The common case: a bf16 weight into a bf16 buffer, the quantizer's finite weights (a NaN absmax
                // takes the general path).
                boolean plainBf16 = bf16 && !Float.isNaN(absmax);
                long first = b * blocksize;
                long last = Math.min(numel, first + blocksize);
                if (vector && plainBf16) {
                    first = Nf4VectorLookup.write(packed, out, Nf4VectorLookup.bf16Entries(quantMap, absmax), first,
                            last);
                }
                if (first < last) { // everything else, and a short last block's tail
                    fillTable(table, absmax, plainBf16, bufferDtype);
                    if (vector && !plainBf16) {
                        first = Nf4VectorLookup.write(packed, out, Nf4VectorLookup.entries(table, entries), first,
                                last);
                    } else if (words != null) {
                        first = Nf4VectorLookup.writeFp32(packed, out, Nf4VectorLookup.fp32Entries(table, words), first,
                                last);
                    }
                    write(packed, out, table, first, last, bufferDtype);
                }
            }
        });
    }

    /** The block's 16 values ({@code quantMap[k] * absmax}, rounded to the stored dtype) as the buffer encodes them. */
    private void fillTable(long[] table, float absmax, boolean plainBf16, Dtype bufferDtype) {
        if (plainBf16) {
            // Branch-free so that the JIT can vectorise it: HalfFloats.floatToBFloat16's round-to-nearest-even for
            // non-NaN products.
            for (int k = 0; k < 16; k++) {
                int bits = Float.floatToRawIntBits(quantMap[k] * absmax);
                table[k] = ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16) & 0xFFFFL;
            }
        } else {
            for (int k = 0; k < 16; k++) {
                table[k] = encode(Nf4Quantizer.roundTo(stored, quantMap[k] * absmax), bufferDtype) & 0xFFFFFFFFL;
            }
        }
    }

    /** Values {@code first .. last-1} (first even) from their packed bytes through the block's table. */
    private static void write(MemorySegment packed, MemorySegment out, long[] table, long first, long last,
            Dtype dtype) {
        long i = first;
        switch (dtype) {
            case BF16, FP16 -> {
                // Eight values at a time: four packed bytes read as one little-endian int (its lowest byte first,
                // each byte's high nibble the earlier element), two longs written.
                for (; i + 7 < last; i += 8) {
                    int w = packed.get(INT, i >> 1);
                    out.set(LONG, 2 * i, table[(w >>> 4) & 0xF] | table[w & 0xF] << 16
                            | table[(w >>> 12) & 0xF] << 32 | table[(w >>> 8) & 0xF] << 48);
                    out.set(LONG, 2 * i + 8, table[(w >>> 20) & 0xF] | table[(w >>> 16) & 0xF] << 16
                            | table[(w >>> 28) & 0xF] << 32 | table[(w >>> 24) & 0xF] << 48);
                }
                for (; i + 1 < last; i += 2) {
                    int b = packed.get(ValueLayout.JAVA_BYTE, i >> 1) & 0xFF;
                    out.set(INT, 2 * i, (int) (table[b >>> 4] | table[b & 0xF] << 16));
                }
                if (i < last) {
                    out.set(SHORT, 2 * i, (short) table[(packed.get(ValueLayout.JAVA_BYTE, i >> 1) & 0xFF) >>> 4]);
                }
            }
            case FP32 -> {
                // Two values (one packed byte) per long written.
                for (; i + 1 < last; i += 2) {
                    int b = packed.get(ValueLayout.JAVA_BYTE, i >> 1) & 0xFF;
                    out.set(LONG, 4 * i, table[b >>> 4] | table[b & 0xF] << 32);
                }
                for (; i < last; i++) {
                    int b = packed.get(ValueLayout.JAVA_BYTE, i >> 1) & 0xFF;
                    out.set(INT, 4 * i, (int) table[(i & 1) == 0 ? b >>> 4 : b & 0xF]);
                }
            }
        }
    }

    /** A value already in the stored dtype, as the buffer's dtype holds it (torch's casts: exact or nearest even). */
    private static int encode(float v, Dtype dtype) {
        return switch (dtype) {
            case FP32 -> Float.floatToRawIntBits(v);
            case BF16 -> HalfFloats.floatToBFloat16(v) & 0xFFFF;
            case FP16 -> HalfFloats.floatToFloat16(v) & 0xFFFF;
        };
    }
}
