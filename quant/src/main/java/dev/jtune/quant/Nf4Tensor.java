package dev.jtune.quant;

import dev.jtune.model.engine.Dtype;
import java.util.Arrays;

/**
 * A tensor quantized to NF4 with double quantization, in bitsandbytes' storage layout
 * ({@code Params4bit} data plus {@code QuantState} with {@code nested=True}).
 *
 * <p>Element {@code i} of the row-major flattened tensor is the 4-bit code in byte {@code packed[i/2]}, in the HIGH
 * nibble for even {@code i} and the LOW nibble for odd {@code i}; an odd element count pads the last low nibble.
 * Its scale is {@code absmax(b) = nestedQuantMap[absmaxCodes[b]] * nestedAbsmax[b / nestedBlocksize] + offset}
 * (fp32, two roundings) for block {@code b = i / blocksize}, and its value {@code quantMap[code] * absmax(b)}
 * (fp32), rounded to {@link #dtype()}.
 *
 * @param shape the original shape (bitsandbytes' {@code quant_state.shape}), e.g. [out, in]
 * @param dtype the original dtype, which is also the dequantized dtype ({@code quant_state.dtype})
 * @param blocksize elements per absmax block (64 for QLoRA)
 * @param packed {@code (numel + 1) / 2} bytes of code pairs (bitsandbytes stores them as uint8 [(numel+1)/2, 1])
 * @param absmaxCodes one 8-bit code per block: the block's absmax minus {@code offset}, blockwise-quantized
 * @param nestedBlocksize absmax blocks per nested block (256)
 * @param nestedAbsmax one fp32 scale per nested block
 * @param offset the mean of the fp32 block absmaxes, subtracted before the nested quantization
 * @param quantMap the 16 NF4 values ({@code quant_map})
 * @param nestedQuantMap the 256 values of the signed 8-bit dynamic map ({@code nested_quant_map})
 */
public record Nf4Tensor(long[] shape, Dtype dtype, int blocksize, byte[] packed, byte[] absmaxCodes,
        int nestedBlocksize, float[] nestedAbsmax, float offset, float[] quantMap, float[] nestedQuantMap) {

    public Nf4Tensor {
        shape = shape.clone();
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        if (blocksize <= 0 || nestedBlocksize <= 0) {
            throw new IllegalArgumentException("blocksizes must be positive, got " + blocksize + " and "
                    + nestedBlocksize);
        }
        long blocks = ceilDiv(n, blocksize);
        check("packed", packed.length, (n + 1) / 2);
        check("absmax codes", absmaxCodes.length, blocks);
        check("nested absmax", nestedAbsmax.length, ceilDiv(blocks, nestedBlocksize));
        check("quant_map", quantMap.length, 16);
        check("nested_quant_map", nestedQuantMap.length, 256);
    }

    private static void check(String what, long got, long expected) {
        if (got != expected) {
            throw new IllegalArgumentException(what + " has " + got + " entries, expected " + expected);
        }
    }

    static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    /** Number of elements. */
    public long numel() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** Number of absmax blocks. */
    public int blocks() {
        return absmaxCodes.length;
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** The native bytes this representation needs: packed codes, absmax codes, nested scales, offset, both maps. */
    public long byteSize() {
        return packed.length + absmaxCodes.length + 4L * nestedAbsmax.length + 4 + 4L * 16 + 4L * 256;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Nf4Tensor t
                && Arrays.equals(shape, t.shape)
                && dtype == t.dtype
                && blocksize == t.blocksize
                && nestedBlocksize == t.nestedBlocksize
                && Arrays.equals(packed, t.packed)
                && Arrays.equals(absmaxCodes, t.absmaxCodes)
                && Arrays.equals(nestedAbsmax, t.nestedAbsmax)
                && Float.floatToRawIntBits(offset) == Float.floatToRawIntBits(t.offset)
                && Arrays.equals(quantMap, t.quantMap)
                && Arrays.equals(nestedQuantMap, t.nestedQuantMap);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(packed) * 31 + Arrays.hashCode(absmaxCodes);
    }

    @Override
    public String toString() {
        return "Nf4Tensor[shape=" + Arrays.toString(shape) + ", dtype=" + dtype.label() + ", blocksize=" + blocksize
                + ", nestedBlocksize=" + nestedBlocksize + ", offset=" + offset + "]";
    }
}
