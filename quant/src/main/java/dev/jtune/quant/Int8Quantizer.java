package dev.jtune.quant;

import dev.jtune.model.engine.Dtype;
import dev.jtune.model.safetensors.HalfFloats;

/**
 * bitsandbytes' LLM.int8() weight quantization in pure Java, bit for bit with its torch backend
 * ({@code Int8Params._quantize} → {@code int8_vectorwise_quant}, backends/default/ops.py at 95f9af3): the weight as
 * fp16, each row's absmax ({@code SCB}, fp32), {@code CB = round(w · (127 / absmax))}, where torch evaluates
 * {@code 127.0 / absmax} as {@code absmax.reciprocal() * 127.0} ({@code Tensor.__rtruediv__}): the reciprocal, the
 * scale and the product are each one fp32 rounding, and the round is half to even ({@code torch.round}). A row of zeros gets codes 0.
 */
public final class Int8Quantizer {
    private Int8Quantizer() {}

    /**
     * Quantizes {@code values} [out, in] row-major, as the model's dtype holds them (transformers hands bitsandbytes
     * the weight in {@code torch_dtype}; {@code _quantize} then casts it to fp16).
     *
     * @throws IllegalArgumentException if the shape is not 2-d or does not fit, or a value is not finite in fp16
     */
    public static Int8Tensor quantize(float[] values, long[] shape) {
        if (shape.length != 2 || shape[0] * shape[1] != values.length) {
            throw new IllegalArgumentException("an int8 weight must be 2-d with " + values.length + " values, got shape "
                    + java.util.Arrays.toString(shape));
        }
        int rows = (int) shape[0];
        int cols = (int) shape[1];
        byte[] codes = new byte[values.length];
        float[] absmax = new float[rows];
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            float max = 0;
            for (int c = 0; c < cols; c++) {
                float h = Float.float16ToFloat(Float.floatToFloat16(values[r * cols + c]));
                if (!Float.isFinite(h)) {
                    throw new IllegalArgumentException("weight row " + r + " column " + c + " is " + values[r * cols + c]
                            + ", not finite in fp16: bitsandbytes quantizes the weight from fp16");
                }
                row[c] = h;
                max = Math.max(max, Math.abs(h));
            }
            absmax[r] = max;
            // torch's `127.0 / row_stats` is `row_stats.reciprocal() * 127.0` (Tensor.__rtruediv__): two roundings.
            float scale = max > 0 ? (1.0f / max) * 127.0f : 0f;
            for (int c = 0; c < cols; c++) {
                codes[r * cols + c] = (byte) Math.rint(row[c] * scale);
            }
        }
        return new Int8Tensor(shape.clone(), codes, absmax);
    }

    /** {@code 1/127} as the fp32 scalar torch multiplies an fp32 tensor by ({@code SCB.mul(1.0 / 127.0)}). */
    static final float INV_127 = (float) (1.0 / 127.0);

    /**
     * The weight bitsandbytes' backward multiplies by ({@code MatMul8bitLt.backward}:
     * {@code CB.to(dtype).mul_(SCB.unsqueeze(1).mul(1.0 / 127.0))}): {@code code · fp32(absmax · fp32(1/127))}, one
     * fp32 rounding, then rounded to {@code dtype}; row-major [out, in], as floats.
     */
    public static float[] dequantize(Int8Tensor q, Dtype dtype) {
        int rows = q.rows();
        int cols = q.columns();
        float[] out = new float[q.codes().length];
        for (int r = 0; r < rows; r++) {
            float s = q.rowAbsmax()[r] * INV_127;
            for (int c = 0; c < cols; c++) {
                out[r * cols + c] = round(q.codes()[r * cols + c] * s, dtype);
            }
        }
        return out;
    }

    /** {@code v} rounded to {@code dtype} (to nearest even), as a float. */
    static float round(float v, Dtype dtype) {
        return switch (dtype) {
            case FP32 -> v;
            case FP16 -> Float.float16ToFloat(Float.floatToFloat16(v));
            case BF16 -> HalfFloats.bfloat16ToFloat(HalfFloats.floatToBFloat16(v));
        };
    }
}
