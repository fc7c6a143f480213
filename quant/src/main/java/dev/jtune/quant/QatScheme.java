package dev.jtune.quant;

/**
 * What Axolotl's {@code qat:} block asks torchao to fake-quantize, as jtune runs it.
 *
 * @param activation how each projection's input is fake-quantized
 * @param weight how each projection's weight is fake-quantized
 * @param groupSize input features sharing one scale (int4's {@code group_size})
 */
public record QatScheme(Activation activation, Weight weight, int groupSize) {
    /** Activation fake quantization. */
    public enum Activation {
        /** None ({@code activation_dtype} unset). */
        NONE,
        /** int8, asymmetric, one scale and zero point per token: {@code IntxFakeQuantizeConfig(int8, per_token)}. */
        INT8
    }

    /** Weight fake quantization. */
    public enum Weight {
        /** int4, asymmetric per group, centred on 8: {@code Int4WeightFakeQuantizeConfig(group_size, bfloat16)}. */
        INT4
    }

    public QatScheme {
        if (groupSize <= 0) {
            throw new IllegalArgumentException("group_size must be positive, got " + groupSize);
        }
    }

    @Override
    public String toString() {
        return (activation == Activation.NONE ? "" : activation.name().toLowerCase(java.util.Locale.ROOT) + " activations, ")
                + weight.name().toLowerCase(java.util.Locale.ROOT) + " weights in groups of " + groupSize;
    }
}
