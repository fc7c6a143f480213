package dev.jtune.model.safetensors;

/**
 * Exact conversions between float32 and the two 16-bit float formats safetensors stores.
 *
 * <p>Narrowing rounds to nearest, ties to even, as torch does; values too large become infinities and values too small
 * become (signed) zeros or subnormals. Widening is exact.
 */
public final class HalfFloats {

    /** The NaN {@code c10::BFloat16} produces for every float NaN. */
    public static final short BFLOAT16_NAN = 0x7FC0;

    private HalfFloats() {}

    /**
     * float32 to bfloat16 bits, round to nearest even. Any NaN becomes {@link #BFLOAT16_NAN}, as in torch's scalar
     * conversion (rounding a NaN's bits could otherwise carry it into infinity).
     */
    public static short floatToBFloat16(float value) {
        if (Float.isNaN(value)) {
            return BFLOAT16_NAN;
        }
        int bits = Float.floatToRawIntBits(value);
        // Adding 0x7FFF plus the lowest kept bit rounds half-way cases towards the even result.
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }

    /** bfloat16 bits to float32: bfloat16 is the top half of a float32, so this is exact. */
    public static float bfloat16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /**
     * float32 to IEEE binary16 bits, round to nearest even (the JDK's {@link Float#floatToFloat16}); NaN stays NaN,
     * and the canonical float NaN becomes {@code 0x7E00} as in torch.
     */
    public static short floatToFloat16(float value) {
        return Float.floatToFloat16(value);
    }

    /** IEEE binary16 bits to float32, exact. */
    public static float float16ToFloat(short bits) {
        return Float.float16ToFloat(bits);
    }
}
