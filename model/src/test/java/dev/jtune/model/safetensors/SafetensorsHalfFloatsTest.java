package dev.jtune.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Bit-exact float32 to bfloat16 / float16 conversions, checked against hand-computed patterns. */
class SafetensorsHalfFloatsTest {

    private static void assertBits(int expected, short actual) {
        assertEquals(String.format("0x%04X", expected), String.format("0x%04X", actual & 0xFFFF));
    }

    private static float bits(int b) {
        return Float.intBitsToFloat(b);
    }

    @Test
    void bfloat16OfExactValues() {
        assertBits(0x3F80, HalfFloats.floatToBFloat16(1.0f));
        assertBits(0xBF80, HalfFloats.floatToBFloat16(-1.0f));
        assertBits(0x4000, HalfFloats.floatToBFloat16(2.0f));
        assertBits(0x0000, HalfFloats.floatToBFloat16(0.0f));
        assertBits(0x8000, HalfFloats.floatToBFloat16(-0.0f));
        assertBits(0x0080, HalfFloats.floatToBFloat16(Float.MIN_NORMAL));
    }

    @Test
    void bfloat16RoundsToNearestEven() {
        // 1.00390625 = 0x3F808000 lies exactly between 0x3F80 (even) and 0x3F81: ties go to even.
        assertBits(0x3F80, HalfFloats.floatToBFloat16(1.00390625f));
        // 0x3F818000 lies between 0x3F81 (odd) and 0x3F82 (even): ties go to even, i.e. up.
        assertBits(0x3F82, HalfFloats.floatToBFloat16(bits(0x3F818000)));
        // One float ulp either side of a tie is no longer a tie.
        assertBits(0x3F81, HalfFloats.floatToBFloat16(bits(0x3F808001)));
        assertBits(0x3F80, HalfFloats.floatToBFloat16(bits(0x3F807FFF)));
        assertBits(0x3F81, HalfFloats.floatToBFloat16(bits(0x3F817FFF)));
        // Negative values round by magnitude.
        assertBits(0xBF80, HalfFloats.floatToBFloat16(-1.00390625f));
        assertBits(0xBF81, HalfFloats.floatToBFloat16(bits(0xBF808001)));
        // A carry out of the mantissa bumps the exponent: 0x3FFFFFFF -> 2.0.
        assertBits(0x4000, HalfFloats.floatToBFloat16(bits(0x3FFFFFFF)));
    }

    @Test
    void bfloat16SpecialValues() {
        assertBits(0x7F80, HalfFloats.floatToBFloat16(Float.POSITIVE_INFINITY));
        assertBits(0xFF80, HalfFloats.floatToBFloat16(Float.NEGATIVE_INFINITY));
        // Rounding Float.MAX_VALUE (0x7F7FFFFF) up overflows to infinity, as round-to-nearest must.
        assertBits(0x7F80, HalfFloats.floatToBFloat16(Float.MAX_VALUE));
        assertBits(0x7FC0, HalfFloats.floatToBFloat16(Float.NaN));
        // A NaN whose payload would round into the infinity pattern must stay NaN.
        assertBits(0x7FC0, HalfFloats.floatToBFloat16(bits(0x7F800001)));
        assertBits(0x7FC0, HalfFloats.floatToBFloat16(bits(0xFFFFFFFF)));
        assertTrue(Float.isNaN(HalfFloats.bfloat16ToFloat(HalfFloats.floatToBFloat16(bits(0x7FBFFFFF)))));
        assertEquals(Float.POSITIVE_INFINITY, HalfFloats.bfloat16ToFloat((short) 0x7F80));
    }

    @Test
    void bfloat16Subnormals() {
        // Float subnormals keep their top 7 mantissa bits: 0x00010000 is bfloat16 0x0001.
        assertBits(0x0001, HalfFloats.floatToBFloat16(bits(0x00010000)));
        assertEquals(bits(0x00010000), HalfFloats.bfloat16ToFloat((short) 0x0001));
        // Float.MIN_VALUE is far below half of bfloat16's smallest subnormal: rounds to zero.
        assertBits(0x0000, HalfFloats.floatToBFloat16(Float.MIN_VALUE));
        // Exactly half of 0x0001 is a tie between 0x0000 (even) and 0x0001.
        assertBits(0x0000, HalfFloats.floatToBFloat16(bits(0x00008000)));
        assertBits(0x0001, HalfFloats.floatToBFloat16(bits(0x00008001)));
    }

    @Test
    void float16OfExactValues() {
        assertBits(0x3C00, HalfFloats.floatToFloat16(1.0f));
        assertBits(0xC000, HalfFloats.floatToFloat16(-2.0f));
        assertBits(0x3800, HalfFloats.floatToFloat16(0.5f));
        assertBits(0x7BFF, HalfFloats.floatToFloat16(65504f));
        assertBits(0x8000, HalfFloats.floatToFloat16(-0.0f));
        assertBits(0x0400, HalfFloats.floatToFloat16(0x1p-14f));
    }

    @Test
    void float16RoundsToNearestEven() {
        // 1 + 2^-11 is half-way between 0x3C00 (even) and 0x3C01.
        assertBits(0x3C00, HalfFloats.floatToFloat16(1.00048828125f));
        // 1 + 3 * 2^-11 is half-way between 0x3C01 and 0x3C02 (even).
        assertBits(0x3C02, HalfFloats.floatToFloat16(1.00146484375f));
        // Just above the first tie rounds up.
        assertBits(0x3C01, HalfFloats.floatToFloat16(Math.nextUp(1.00048828125f)));
        assertBits(0x3C00, HalfFloats.floatToFloat16(Math.nextDown(1.00048828125f)));
        // 65520 is half-way between the largest half (65504) and the next step (65536 = inf): ties to even = inf.
        assertBits(0x7C00, HalfFloats.floatToFloat16(65520f));
        assertBits(0x7BFF, HalfFloats.floatToFloat16(Math.nextDown(65520f)));
    }

    @Test
    void float16SpecialValuesAndSubnormals() {
        assertBits(0x7C00, HalfFloats.floatToFloat16(Float.POSITIVE_INFINITY));
        assertBits(0xFC00, HalfFloats.floatToFloat16(Float.NEGATIVE_INFINITY));
        assertBits(0x7E00, HalfFloats.floatToFloat16(Float.NaN));
        assertTrue(Float.isNaN(HalfFloats.float16ToFloat(HalfFloats.floatToFloat16(bits(0x7F800001)))));
        // Smallest subnormal 2^-24 is 0x0001; 2^-25 is a tie between 0x0000 (even) and 0x0001; 3 * 2^-26 rounds up.
        assertBits(0x0001, HalfFloats.floatToFloat16(0x1p-24f));
        assertBits(0x0000, HalfFloats.floatToFloat16(0x1p-25f));
        assertBits(0x0001, HalfFloats.floatToFloat16(0x1.8p-25f));
        // 3 * 2^-25 is a tie between 0x0001 and 0x0002 (even).
        assertBits(0x0002, HalfFloats.floatToFloat16(0x1.8p-24f));
        assertEquals(0x1p-24f, HalfFloats.float16ToFloat((short) 0x0001));
        assertEquals(0x1.ff8p-15f, HalfFloats.float16ToFloat((short) 0x03FF));
    }

    @Test
    void everyHalfPatternSurvivesARoundTrip() {
        for (int b = 0; b <= 0xFFFF; b++) {
            short s = (short) b;
            float bf = HalfFloats.bfloat16ToFloat(s);
            if (!Float.isNaN(bf)) {
                assertBits(b, HalfFloats.floatToBFloat16(bf));
            }
            float h = HalfFloats.float16ToFloat(s);
            if (!Float.isNaN(h)) {
                assertBits(b, HalfFloats.floatToFloat16(h));
            }
        }
    }

    @Test
    void bfloat16IsTheNearestRepresentableValue() {
        // An independent reference: pick the nearer of the two bfloat16 neighbours in exact double arithmetic.
        SplittableRandom random = new SplittableRandom(42);
        for (int i = 0; i < 200_000; i++) {
            float x = bits(random.nextInt());
            if (!Float.isFinite(x)) {
                continue;
            }
            int lowBits = Float.floatToRawIntBits(x) >>> 16;
            double low = HalfFloats.bfloat16ToFloat((short) lowBits);
            double high = HalfFloats.bfloat16ToFloat((short) (lowBits + 1)); // may be an infinity: still ordered
            double dLow = Math.abs(x - low);
            double dHigh = Double.isInfinite(high) ? Math.abs(x - Math.scalb(1.0, 128) * Math.signum(x)) : Math.abs(x - high);
            int expected = dLow < dHigh || (dLow == dHigh && (lowBits & 1) == 0) ? lowBits : lowBits + 1;
            assertBits(expected & 0xFFFF, HalfFloats.floatToBFloat16(x));
        }
    }
}
