package dev.jtune.quant;

import java.util.Arrays;

/**
 * An independent pure-Java model of bitsandbytes' NF4 double quantization, written differently from
 * {@link Nf4Quantizer}: the block absmax by sorting magnitudes, the scaled value's code by a linear scan that keeps the
 * nearest table value among neighbours decided against the fp32 midpoint (ties to the lower code, as
 * {@code torch.bucketize(right=False)}), the nibbles by an explicit per-element loop, and dequantization by
 * per-element arithmetic on unpacked codes.
 *
 * <p>Why fp32 midpoints and not exact distances: bitsandbytes compares against {@code (code[j] + code[j+1]) / 2}
 * computed in fp32; when that rounds, a value exactly on the rounded midpoint goes to the lower code even though it is
 * (by a hair) nearer the upper one. {@link Nf4QuantizerTest} checks that exact-distance nearest agrees everywhere else.
 */
final class Nf4Reference {
    private Nf4Reference() {}

    record Result(int[] codes, float[] absmax, float offset, int[] absmaxCodes, float[] nested) {}

    static Result quantize(float[] x, int blocksize, float[] nf4, float[] dyn) {
        int[] codes = new int[x.length];
        float[] absmax = scaleAndCode(x, blocksize, nf4, codes);
        double s = 0;
        for (float a : absmax) {
            s += a;
        }
        float offset = (float) s / (float) absmax.length;
        return nested(codes, absmax, offset, dyn);
    }

    static Result nested(int[] codes, float[] absmax, float offset, float[] dyn) {
        float[] centred = new float[absmax.length];
        for (int i = 0; i < absmax.length; i++) {
            centred[i] = absmax[i] - offset;
        }
        int[] absmaxCodes = new int[absmax.length];
        float[] nested = scaleAndCode(centred, 256, dyn, absmaxCodes);
        return new Result(codes, absmax, offset, absmaxCodes, nested);
    }

    /** Per element: which block, that block's scale (full blocks multiply by the reciprocal, the tail divides). */
    private static float[] scaleAndCode(float[] x, int blocksize, float[] table, int[] codesOut) {
        int blocks = (x.length + blocksize - 1) / blocksize;
        float[] absmax = new float[blocks];
        int lastFull = x.length / blocksize; // blocks at index >= lastFull are partial
        for (int b = 0; b < blocks; b++) {
            float[] mags = new float[Math.min(blocksize, x.length - b * blocksize)];
            for (int j = 0; j < mags.length; j++) {
                mags[j] = Math.abs(x[b * blocksize + j]);
            }
            Arrays.sort(mags);
            float max = mags[mags.length - 1];
            absmax[b] = b < lastFull ? max : (max < (float) 1e-38 ? (float) 1e-38 : max);
        }
        for (int i = 0; i < x.length; i++) {
            int b = i / blocksize;
            float s;
            if (b < lastFull) {
                float denom = absmax[b] < (float) 1e-38 ? (float) 1e-38 : absmax[b];
                float recip = 1.0f / denom;
                s = x[i] * recip;
            } else {
                s = x[i] / absmax[b];
            }
            if (s > 1f) {
                s = 1f;
            }
            if (s < -1f) {
                s = -1f;
            }
            codesOut[i] = nearest(table, s);
        }
        return absmax;
    }

    /** Walks the sorted table upwards while the value lies strictly above the fp32 midpoint to the next entry. */
    static int nearest(float[] table, float s) {
        int best = 0;
        for (int j = 0; j + 1 < table.length; j++) {
            float mid = (table[j] + table[j + 1]) / 2f;
            if (s > mid) {
                best = j + 1;
            }
        }
        return best;
    }

    /** Bytes with element 2k in bits 7..4 and element 2k+1 in bits 3..0; the missing last element counts as code 7. */
    static byte[] pack(int[] codes) {
        byte[] out = new byte[(codes.length + 1) / 2];
        for (int i = 0; i < codes.length + (codes.length % 2); i++) {
            int c = i < codes.length ? codes[i] : 7;
            if (i % 2 == 0) {
                out[i / 2] = (byte) (c * 16);
            } else {
                out[i / 2] = (byte) (out[i / 2] + c);
            }
        }
        return out;
    }

    /** fp32 dequantization from unpacked codes. */
    static float[] dequantize(int[] codes, int[] absmaxCodes, float[] nested, float offset, int blocksize,
            float[] nf4, float[] dyn) {
        float[] out = new float[codes.length];
        for (int i = 0; i < codes.length; i++) {
            int b = i / blocksize;
            float scale = dyn[absmaxCodes[b]] * nested[b / 256];
            scale = scale + offset;
            out[i] = nf4[codes[i]] * scale;
        }
        return out;
    }
}
