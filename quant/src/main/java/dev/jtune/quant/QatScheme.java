package dev.jtune.quant;

/**
 * What Axolotl's {@code qat:} block asks torchao to fake-quantize, as jtune runs it.
 *
 * @param activation how each projection's input is fake-quantized
 * @param weight how each projection's weight is fake-quantized
 * @param groupSize input features sharing one scale (int4's {@code group_size})
 */
public record QatScheme(Activation activation, Weight weight, int groupSize) {
    /** MX's block: 32 elements share one E8M0 scale (Axolotl refuses any other group_size for mxfp4). */
    public static final int MX_BLOCK = 32;
    /** NVFP4's block: 16 elements share one float8 e4m3 scale (Axolotl refuses any other group_size for nvfp4). */
    public static final int NV_BLOCK = 16;

    /** Activation fake quantization. */
    public enum Activation {
        /** None ({@code activation_dtype} unset). */
        NONE,
        /** int8, asymmetric, one scale and zero point per token: {@code IntxFakeQuantizeConfig(int8, per_token)}. */
        INT8,
        /** MXFP4: {@code MXFakeQuantizeConfig(float4_e2m1fn_x2, 32)}, e2m1 values, an E8M0 scale per 32. */
        MXFP4,
        /**
         * NVFP4: {@code NVFP4FakeQuantizeConfig(use_per_tensor_scale=True)}, e2m1 values, a float8 e4m3 scale per 16
         * under one fp32 scale for the whole input.
         */
        NVFP4
    }

    /** Weight fake quantization. */
    public enum Weight {
        /** int4, asymmetric per group, centred on 8: {@code Int4WeightFakeQuantizeConfig(group_size, bfloat16)}. */
        INT4,
        /** MXFP4, as the activations' (torchao's MXFakeQuantizedLinear quantizes both or neither). */
        MXFP4,
        /** NVFP4, as the activations' (torchao's NVFP4FakeQuantizedLinear has no weight-only form). */
        NVFP4
    }

    public QatScheme {
        if (groupSize <= 0) {
            throw new IllegalArgumentException("group_size must be positive, got " + groupSize);
        }
        if ((activation == Activation.MXFP4) != (weight == Weight.MXFP4) || weight == Weight.MXFP4 && groupSize != MX_BLOCK) {
            throw new IllegalArgumentException("MXFP4 fake quantization covers activations and weights, in blocks of "
                    + MX_BLOCK + ", got " + activation + "/" + weight + " group " + groupSize);
        }
        if ((activation == Activation.NVFP4) != (weight == Weight.NVFP4) || weight == Weight.NVFP4 && groupSize != NV_BLOCK) {
            throw new IllegalArgumentException("NVFP4 fake quantization covers activations and weights, in blocks of "
                    + NV_BLOCK + ", got " + activation + "/" + weight + " group " + groupSize);
        }
    }

    @Override
    public String toString() {
        return (activation == Activation.NONE ? "" : activation.name().toLowerCase(java.util.Locale.ROOT) + " activations, ")
                + weight.name().toLowerCase(java.util.Locale.ROOT) + " weights in groups of " + groupSize;
    }
}
