package dev.jtune.quant;

import dev.jtune.model.engine.Dtype;
import dev.jtune.model.safetensors.HalfFloats;
import java.util.Arrays;

/**
 * NF4 quantization with double quantization in pure Java, bit for bit as bitsandbytes' torch reference backend.
 *
 * <p>Transcribed from bitsandbytes-foundation/bitsandbytes (main at 95f9af3):
 * <ul>
 *   <li>{@code bitsandbytes/functional.py} {@code quantize_4bit(compress_statistics=True, quant_type="nf4")}:
 *       {@code offset = absmax.mean(); quantize_blockwise(absmax - offset, blocksize=256)} with the default
 *       {@code create_dynamic_map()} code;
 *   <li>{@code bitsandbytes/backends/default/ops.py} kernels {@code quantize_4bit}, {@code quantize_blockwise},
 *       {@code _dequantize_4bit_compute}, {@code _dequantize_blockwise_compute}: values in fp32
 *       ({@code A.reshape(-1).float()}); per full block {@code absmax = max|x|} and
 *       {@code scaled = clamp(x * (1 / clamp(absmax, min=1e-38)), -1, 1)}; the last partial block instead stores
 *       {@code am = clamp(max|x|, min=1e-38)} and divides, {@code clamp(x / am, -1, 1)}; the code is
 *       {@code bucketize(scaled, midpoints)}, the number of fp32 midpoints {@code (code[j] + code[j+1]) / 2} strictly
 *       below {@code scaled} (a value exactly on a midpoint takes the lower code); an odd count is padded with a
 *       0 (NF4 code 7) and codes are packed {@code (q[0::2] << 4) | q[1::2]}.
 *   <li>{@code csrc/kernels.cu} {@code dQuantizeNF4}: the CUDA decision tree whose thresholds, as float literals, are
 *       exactly these fp32 midpoints and which also sends ties to the lower code; the tree below is its shape.
 * </ul>
 * Everything is computed in fp32 from the input values widened exactly from their dtype, as bitsandbytes does
 * ({@code .float()}); the dtype is only recorded and used to round the dequantized values.
 */
public final class Nf4Quantizer {
    /** {@code clamp(min=1e-38)} on an fp32 tensor: the scalar rounded to float (a subnormal). */
    static final float TINY = (float) 1e-38;

    private static final float[] NF4_BOUNDS = midpoints(Nf4.nf4Table());
    /**
     * Whether the NF4 loops use the JDK's vector API ({@link Nf4VectorQuantizer}, and the dequantizer's
     * {@link Nf4VectorLookup}): {@link dev.jtune.model.engine.VectorApi#ENABLED}.
     */
    static final boolean VECTOR = dev.jtune.model.engine.VectorApi.ENABLED;
    private static final float[] DYNAMIC_BOUNDS = midpoints(Nf4.dynamicMap());

    private Nf4Quantizer() {}

    /**
     * Quantizes {@code values} (row-major, of {@code shape}) to NF4 with blocksize 64 and double quantization.
     *
     * @param dtype the dtype the values come from (every value must be exactly representable in it)
     * @throws IllegalArgumentException naming the first element that is NaN, infinite or not a {@code dtype} value
     */
    public static Nf4Tensor quantize(float[] values, long[] shape, Dtype dtype) {
        return quantize(values, shape, dtype, Nf4.BLOCKSIZE);
    }

    /** As {@link #quantize(float[], long[], Dtype)} with another block size (bitsandbytes allows 32 to 4096). */
    public static Nf4Tensor quantize(float[] values, long[] shape, Dtype dtype, int blocksize) {
        checkInput(values, shape, dtype, blocksize);
        float[] absmax = new float[(int) Nf4Tensor.ceilDiv(values.length, blocksize)];
        byte[] codes = blockwise(values, blocksize, NF4_BOUNDS, absmax);
        return nest(shape, dtype, blocksize, pack(codes), absmax, mean(absmax));
    }

    /**
     * NF4 without double quantization ({@code Params4bit(..., compress_statistics=False, quant_type="nf4")}, as PEFT's
     * LoftQ quantizes) and back: {@code nf4[code] * absmax[block]} in fp32, with fp32 absmax per block of
     * {@code blocksize}.
     */
    public static float[] roundTripPlain(float[] values, int blocksize) {
        checkInput(values, new long[] {values.length}, Dtype.FP32, blocksize);
        float[] absmax = new float[(int) Nf4Tensor.ceilDiv(values.length, blocksize)];
        byte[] codes = blockwise(values, blocksize, NF4_BOUNDS, absmax);
        float[] table = Nf4.nf4Table();
        float[] out = new float[values.length];
        for (int i = 0; i < out.length; i++) out[i] = table[codes[i]] * absmax[i / blocksize];
        return out;
    }

    /** The double-quantization step with a given offset (tests feed torch's own mean here). */
    static Nf4Tensor nest(long[] shape, Dtype dtype, int blocksize, byte[] packed, float[] absmax, float offset) {
        float[] centred = new float[absmax.length];
        for (int i = 0; i < absmax.length; i++) {
            centred[i] = absmax[i] - offset; // `_absmax - offset`, an fp32 tensor op
        }
        float[] nested = new float[(int) Nf4Tensor.ceilDiv(absmax.length, Nf4.NESTED_BLOCKSIZE)];
        byte[] absmaxCodes = blockwise(centred, Nf4.NESTED_BLOCKSIZE, DYNAMIC_BOUNDS, nested);
        return new Nf4Tensor(shape, dtype, blocksize, packed, absmaxCodes, Nf4.NESTED_BLOCKSIZE, nested, offset,
                Nf4.nf4Table(), Nf4.dynamicMap());
    }

    /**
     * {@code absmax.mean()} as fp32: the sum rounded to float, divided by the count in float, as torch's
     * {@code mean} (= {@code sum / n}). torch sums in its own vectorised order; here the sum is accumulated in
     * double first, so the offset can differ from torch's in the last bit (see package doc).
     */
    static float mean(float[] absmax) {
        double sum = 0;
        for (float a : absmax) {
            sum += a;
        }
        return (float) sum / (float) absmax.length;
    }

    /**
     * bitsandbytes' default-backend blockwise quantizer: codes (one per value) and per-block scales into
     * {@code absmaxOut}.
     */
    static byte[] blockwise(float[] x, int blocksize, float[] bounds, float[] absmaxOut) {
        byte[] codes = new byte[x.length];
        int blocks = absmaxOut.length;
        // Blocks are independent and each writes its own slice: large tensors are cut into runs of blocks quantized
        // on every core (the same result in any order); small ones stay on the calling thread.
        int run = Math.max(1, PARALLEL_RUN / blocksize);
        if (blocks <= run) {
            blocks(x, blocksize, bounds, absmaxOut, codes, 0, blocks);
        } else {
            java.util.stream.IntStream.range(0, (blocks + run - 1) / run).parallel()
                    .forEach(r -> blocks(x, blocksize, bounds, absmaxOut, codes, r * run, Math.min(blocks, (r + 1) * run)));
        }
        return codes;
    }

    /** Values per parallel run of blocks (1M: far above a fork's cost, small enough to spread a layer's weights). */
    private static final int PARALLEL_RUN = 1 << 20;

    /** Blocks {@code from .. to-1} of {@link #blockwise}. */
    private static void blocks(float[] x, int blocksize, float[] bounds, float[] absmaxOut, byte[] codes, int from,
            int to) {
        if (VECTOR && bounds.length == 15 && Nf4VectorQuantizer.usable(blocksize)) {
            int full = Math.min(to, x.length / blocksize); // blocks before a partial last one
            if (full > from) {
                Nf4VectorQuantizer.fullBlocks(x, blocksize, bounds, absmaxOut, codes, from, full);
                from = full;
            }
        }
        scalarBlocks(x, blocksize, bounds, absmaxOut, codes, from, to);
    }

    /** {@link #blocks} one value at a time (the reference; the dynamic map's 255 bounds; the partial last block). */
    static void scalarBlocks(float[] x, int blocksize, float[] bounds, float[] absmaxOut, byte[] codes, int from,
            int to) {
        for (int b = from; b < to; b++) {
            int start = b * blocksize;
            int end = Math.min(start + blocksize, x.length);
            float amax = 0f;
            for (int i = start; i < end; i++) {
                amax = Math.max(amax, Math.abs(x[i]));
            }
            boolean partial = end - start < blocksize;
            if (!partial) {
                absmaxOut[b] = amax;
                float inv = 1f / Math.max(amax, TINY); // `1.0 / t` is torch's reciprocal(t) * 1.0
                for (int i = start; i < end; i++) {
                    codes[i] = (byte) search(bounds, clamp(x[i] * inv));
                }
            } else {
                float am = Math.max(amax, TINY); // the tail stores the clamped value
                absmaxOut[b] = am;
                for (int i = start; i < end; i++) {
                    codes[i] = (byte) search(bounds, clamp(x[i] / am));
                }
            }
        }
    }

    private static float clamp(float s) {
        return Math.min(Math.max(s, -1f), 1f);
    }

    /** torch.bucketize(right=False): how many bounds lie strictly below {@code s}. */
    private static int search(float[] bounds, float s) {
        if (bounds.length == 15) {
            // dQuantizeNF4's tree: bounds[j] separates codes j and j+1.
            int c = s > bounds[7] ? 8 : 0;
            c += s > bounds[c + 3] ? 4 : 0;
            c += s > bounds[c + 1] ? 2 : 0;
            return c + (s > bounds[c] ? 1 : 0);
        }
        int lo = 0;
        int hi = bounds.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (bounds[mid] < s) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /** {@code (code[:-1] + code[1:]) / 2} in fp32. */
    static float[] midpoints(float[] code) {
        float[] m = new float[code.length - 1];
        for (int i = 0; i < m.length; i++) {
            m[i] = (code[i] + code[i + 1]) / 2f;
        }
        return m;
    }

    /** Two codes a byte, the first in the high nibble; an odd count pads with code 7 (the quantized 0). */
    static byte[] pack(byte[] codes) {
        byte[] out = new byte[(codes.length + 1) / 2];
        for (int i = 0; i < out.length; i++) {
            int hi = codes[2 * i];
            int lo = 2 * i + 1 < codes.length ? codes[2 * i + 1] : 7;
            out[i] = (byte) ((hi << 4) | lo);
        }
        return out;
    }

    // ---- dequantization (the reference for the libtorch kernel) ----

    /**
     * The dequantized block scales, fp32: {@code nested_quant_map[code] * nested_absmax[b / 256] + offset}, as
     * bitsandbytes' {@code dequantize_blockwise(...) ; absmax += offset}.
     */
    public static float[] absmax(Nf4Tensor t) {
        float[] map = t.nestedQuantMap();
        float[] nested = t.nestedAbsmax();
        byte[] codes = t.absmaxCodes();
        float[] out = new float[codes.length];
        for (int b = 0; b < codes.length; b++) {
            float scaled = map[codes[b] & 0xFF] * nested[b / t.nestedBlocksize()];
            out[b] = scaled + t.offset();
        }
        return out;
    }

    /** The dequantized values in fp32, before the cast to the tensor's dtype ({@code _dequantize_4bit_compute}). */
    public static float[] dequantizeFp32(Nf4Tensor t) {
        float[] absmax = absmax(t);
        float[] map = t.quantMap();
        byte[] packed = t.packed();
        int n = Math.toIntExact(t.numel());
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            int b = packed[i >> 1] & 0xFF;
            int code = (i & 1) == 0 ? b >>> 4 : b & 0xF;
            out[i] = map[code] * absmax[i / t.blocksize()];
        }
        return out;
    }

    /** The dequantized values rounded to the tensor's dtype (nearest even), widened back to float. */
    public static float[] dequantize(Nf4Tensor t) {
        float[] out = dequantizeFp32(t);
        for (int i = 0; i < out.length; i++) {
            out[i] = roundTo(t.dtype(), out[i]);
        }
        return out;
    }

    /** Rounds an fp32 value to {@code dtype} as torch's {@code .to(dtype)} does, widened back exactly. */
    static float roundTo(Dtype dtype, float v) {
        return switch (dtype) {
            case FP32 -> v;
            case FP16 -> HalfFloats.float16ToFloat(HalfFloats.floatToFloat16(v));
            case BF16 -> HalfFloats.bfloat16ToFloat(HalfFloats.floatToBFloat16(v));
        };
    }

    private static void checkInput(float[] values, long[] shape, Dtype dtype, int blocksize) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (n != values.length) {
            throw new IllegalArgumentException(values.length + " values for shape " + Arrays.toString(shape));
        }
        if (blocksize < 32 || blocksize > 4096 || Integer.bitCount(blocksize) != 1) {
            throw new IllegalArgumentException("blocksize must be a power of two from 32 to 4096, got " + blocksize);
        }
        int first = 0;
        if (VECTOR && (dtype == Dtype.BF16 || dtype == Dtype.FP32)) {
            first = Nf4VectorQuantizer.firstSuspect(values, dtype == Dtype.BF16);
            if (first < 0) {
                return;
            }
        }
        for (int i = first; i < values.length; i++) {
            float v = values[i];
            if (!Float.isFinite(v)) {
                throw new IllegalArgumentException("element " + i + " " + where(i, shape) + "is " + v
                        + "; NF4 quantization needs finite weights");
            }
            if (roundTo(dtype, v) != v) {
                throw new IllegalArgumentException("element " + i + " " + where(i, shape) + "is " + v
                        + ", which is not a " + dtype.label() + " value; pass the tensor's own dtype");
            }
        }
    }

    private static String where(int i, long[] shape) {
        if (shape.length != 2) {
            return "";
        }
        return "(row " + i / shape[1] + ", column " + i % shape[1] + ") ";
    }
}
