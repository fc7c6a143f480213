package dev.jtune.quant;

import dev.jtune.model.engine.Dtype;

/**
 * An independent pure-Java transcription of bitsandbytes' MatMul8bitLt forward and backward for a frozen weight
 * (the sources named in {@code tools/reference/int8_reference.py}): int32 products as exact long sums, every fp32
 * step in Java float arithmetic in bitsandbytes' order.
 */
final class Int8Reference {
    private Int8Reference() {}

    /** Row-quantized activations: codes, row absmax, outlier columns. */
    record Rows(byte[] codes, float[] absmax, boolean[] outlierColumns) {
        boolean anyOutlier() {
            for (boolean b : outlierColumns) {
                if (b) {
                    return true;
                }
            }
            return false;
        }
    }

    /** int8_vectorwise_quant(a.to(fp16), threshold). */
    static Rows quantizeRows(float[] a, int rows, int cols, double threshold) {
        float[] h = new float[a.length];
        boolean[] outlier = new boolean[a.length];
        boolean[] outCols = new boolean[cols];
        for (int i = 0; i < a.length; i++) {
            h[i] = Float.float16ToFloat(Float.floatToFloat16(a[i]));
            outlier[i] = threshold > 0 && Math.abs(h[i]) >= threshold;
            if (outlier[i]) {
                outCols[i % cols] = true;
            }
        }
        byte[] codes = new byte[a.length];
        float[] absmax = new float[rows];
        for (int r = 0; r < rows; r++) {
            float max = 0;
            for (int c = 0; c < cols; c++) {
                if (!outlier[r * cols + c]) {
                    max = Math.max(max, Math.abs(h[r * cols + c]));
                }
            }
            absmax[r] = max;
            float scale = max > 0 ? (1f / max) * 127f : 0f; // torch: 127.0 / t is t.reciprocal() * 127.0
            for (int c = 0; c < cols; c++) {
                codes[r * cols + c] = outCols[c] ? 0 : (byte) Math.rint(h[r * cols + c] * scale);
            }
        }
        return new Rows(codes, absmax, outCols);
    }

    /** MatMul8bitLt.forward: x [rows, in] as held in {@code dtype} → [rows, out] as floats held in dtype. */
    static float[] forward(float[] x, int rows, Int8Tensor w, double threshold, Dtype dtype) {
        int in = w.columns();
        int out = w.rows();
        Rows q = quantizeRows(x, rows, in, threshold);
        float[] y = new float[rows * out];
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < out; o++) {
                long c = 0;
                for (int j = 0; j < in; j++) {
                    c += q.codes()[r * in + j] * w.codes()[o * in + j];
                }
                float v = (float) c * q.absmax()[r] * w.rowAbsmax()[o] * 6.200012e-05f;
                y[r * out + o] = Int8Quantizer.round(Float.float16ToFloat(Float.floatToFloat16(v)), dtype);
            }
        }
        if (q.anyOutlier()) {
            for (int r = 0; r < rows; r++) {
                for (int o = 0; o < out; o++) {
                    float s = 0;
                    for (int j = 0; j < in; j++) {
                        if (q.outlierColumns()[j]) {
                            float b = Int8Quantizer.round(w.codes()[o * in + j] * w.rowAbsmax()[o]
                                    * (float) 7.874015718698502e-3, dtype);
                            s = Math.fma(x[r * in + j], b, s); // the fp32 GEMM fuses multiply and add
                        }
                    }
                    y[r * out + o] = Int8Quantizer.round(y[r * out + o] + s, dtype);
                }
            }
        }
        return y;
    }

    /** MatMul8bitLt.backward's grad_A = g @ W (W dequantized in dtype), summed in double and rounded to dtype. */
    static float[] inputGradient(float[] g, int rows, Int8Tensor w, Dtype dtype) {
        int in = w.columns();
        int out = w.rows();
        float[] wd = Int8Quantizer.dequantize(w, dtype);
        float[] dx = new float[rows * in];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < in; j++) {
                double s = 0;
                for (int o = 0; o < out; o++) {
                    s += (double) g[r * out + o] * wd[o * in + j];
                }
                dx[r * in + j] = Int8Quantizer.round((float) s, dtype);
            }
        }
        return dx;
    }
}
