package dev.jtune.quant;

import static dev.jtune.quant.Nf4QuantizerTest.assertBits;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.engine.Dtype;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/**
 * Compares the Java quantizer bit for bit with {@code nf4_fixture.json}, written by
 * {@code tools/reference/nf4_reference.py}: a transcription of bitsandbytes' torch reference backend run on torch 1.13.
 */
class Nf4FixtureTest {
    private static float[] floats(String hex) {
        ByteBuffer b = ByteBuffer.wrap(HexFormat.of().parseHex(hex)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    private static JsonNode fixture() throws Exception {
        try (InputStream in = Nf4FixtureTest.class.getResourceAsStream("nf4_fixture.json")) {
            return new ObjectMapper().readTree(in);
        }
    }

    @Test
    void tablesMatchTorch() throws Exception {
        JsonNode f = fixture();
        assertBits("nf4 table", floats(f.get("nf4").textValue()), Nf4.nf4Table());
        assertBits("dynamic map", floats(f.get("dynamic_map").textValue()), Nf4.dynamicMap());
    }

    @Test
    void quantizationMatchesTheTorchTranscription() throws Exception {
        int offsetsEqual = 0;
        int cases = 0;
        for (JsonNode c : fixture().get("cases")) {
            String name = c.get("name").textValue();
            long[] shape = new long[c.get("shape").size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = c.get("shape").get(i).longValue();
            }
            Dtype dtype = Dtype.parse(c.get("dtype").textValue());
            float[] x = floats(c.get("values").textValue());

            // First stage: packed codes and fp32 absmax.
            Nf4Tensor q = Nf4Quantizer.quantize(x, shape, dtype);
            assertArrayEquals(HexFormat.of().parseHex(c.get("packed").textValue()), q.packed(), name + ": packed");
            float[] absmax = new float[q.blocks()];
            Nf4Quantizer.blockwise(x, 64, Nf4Quantizer.midpoints(Nf4.nf4Table()), absmax);
            assertBits(name + ": absmax", floats(c.get("absmax").textValue()), absmax);

            // torch's mean sums in its own vectorised order; ours rounds a double sum. Allow one ulp, count agreement.
            float torchOffset = floats(c.get("offset").textValue())[0];
            assertTrue(Math.abs(torchOffset - q.offset()) <= Math.ulp(torchOffset),
                    name + ": offset " + q.offset() + " vs torch " + torchOffset);
            offsetsEqual += torchOffset == q.offset() ? 1 : 0;
            cases++;

            // Given torch's offset, everything downstream is bit-identical.
            Nf4Tensor t = Nf4Quantizer.nest(shape, dtype, 64, q.packed(), absmax, torchOffset);
            assertArrayEquals(HexFormat.of().parseHex(c.get("absmax_codes").textValue()), t.absmaxCodes(),
                    name + ": absmax codes");
            assertBits(name + ": nested absmax", floats(c.get("nested_absmax").textValue()), t.nestedAbsmax());
            assertBits(name + ": dequantized absmax", floats(c.get("dequantized_absmax").textValue()),
                    Nf4Quantizer.absmax(t));
            if (!c.get("dequantized_fp32").isNull()) {
                assertBits(name + ": dequantized", floats(c.get("dequantized_fp32").textValue()),
                        Nf4Quantizer.dequantizeFp32(t));
            }
        }
        assertEquals(6, cases);
        System.out.println("nf4 fixture: offset equal to torch's mean in " + offsetsEqual + " of " + cases + " cases");
    }
}
