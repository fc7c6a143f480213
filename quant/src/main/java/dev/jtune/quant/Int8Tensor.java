package dev.jtune.quant;

/**
 * A weight [out, in] in bitsandbytes' LLM.int8() form ({@code Int8Params} after {@code _quantize}): one int8 code a
 * weight, row-major ({@code CB}), and one fp32 absmax a row ({@code SCB}); the weight is {@code CB · SCB / 127}.
 *
 * @param shape [out, in]
 * @param codes {@code CB}, out · in codes
 * @param rowAbsmax {@code SCB}, out values: the absmax of each row of the weight rounded to fp16
 */
public record Int8Tensor(long[] shape, byte[] codes, float[] rowAbsmax) {
    public Int8Tensor {
        if (shape.length != 2 || (long) codes.length != shape[0] * shape[1] || rowAbsmax.length != shape[0]) {
            throw new IllegalArgumentException("an int8 weight needs shape [out, in] with out·in codes and out row"
                    + " scales, got shape " + java.util.Arrays.toString(shape) + ", " + codes.length + " codes, "
                    + rowAbsmax.length + " scales");
        }
    }

    /** Equal shapes, codes and scales (by content, not array identity). */
    @Override
    public boolean equals(Object o) {
        return o instanceof Int8Tensor t && java.util.Arrays.equals(shape, t.shape)
                && java.util.Arrays.equals(codes, t.codes) && java.util.Arrays.equals(rowAbsmax, t.rowAbsmax);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * java.util.Arrays.hashCode(shape) + java.util.Arrays.hashCode(codes))
                + java.util.Arrays.hashCode(rowAbsmax);
    }

    /** Output features (rows). */
    public int rows() {
        return (int) shape[0];
    }

    /** Input features (columns). */
    public int columns() {
        return (int) shape[1];
    }
}
