package dev.jtune.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.DenseLinear;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import org.junit.jupiter.api.Test;

/**
 * PEFT's LoftQ ({@link Loftq}) against PEFT's loftq_init run on fixed matrices (tools/reference/loftq_expected.py:
 * PEFT's own code and SVD, bitsandbytes' NF4 from nf4_reference.py): the base weight left behind bit for bit (the NF4
 * round trip, no double quantization), and the factors: B·A to 1e-5 of its largest value, and A's rows / B's columns
 * up to the sign an SVD may flip (a singular vector and its negation are both right; B·A is not affected).
 */
class LoftqTest {
    private static float[] f32(JsonNode n) {
        ByteBuffer b = ByteBuffer.wrap(Base64.getDecoder().decode(n.asText())).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        for (int i = 0; i < out.length; i++) out[i] = b.getFloat();
        return out;
    }

    @Test
    void matchesPeftsLoftqInit() throws IOException {
        JsonNode fx;
        try (InputStream in = getClass().getResourceAsStream("loftq_expected.json")) {
            fx = new ObjectMapper().readTree(in);
        }
        for (JsonNode c : fx.get("cases")) {
            int out = c.get("out").asInt();
            int inp = c.get("inp").asInt();
            int r = c.get("r").asInt();
            String what = out + "x" + inp + " r=" + r + " iter=" + c.get("iters").asInt();
            try (NDManager m = Torch.newManager()) {
                DenseLinear base = new DenseLinear(m.create(f32(c.get("weight")), new Shape(out, inp)));
                LoraLinear l = LoraLinear.initialise(base, "m", r, 0.5, 0.0, 1, m);
                Loftq.apply(l, "m", 4, c.get("iters").asInt());
                assertArrayEquals(f32(c.get("base")), base.weight().toFloatArray(), what + ": base weight");
                float[] product = l.loraB().matMul(l.loraA()).toFloatArray();
                float[] expected = f32(c.get("product"));
                double max = 0;
                double diff = 0;
                for (int i = 0; i < expected.length; i++) {
                    max = Math.max(max, Math.abs(expected[i]));
                    diff = Math.max(diff, Math.abs(expected[i] - product[i]));
                }
                assertTrue(max > 0 && diff <= 1e-5 * max, what + ": B·A differs by " + diff + " of " + max);
                float[] a = l.loraA().toFloatArray();
                float[] wantA = f32(c.get("lora_A"));
                float[] b = l.loraB().toFloatArray();
                float[] wantB = f32(c.get("lora_B"));
                for (int k = 0; k < r; k++) {
                    double dot = 0;
                    for (int i = 0; i < inp; i++) dot += (double) a[k * inp + i] * wantA[k * inp + i];
                    double sign = Math.signum(dot);
                    for (int i = 0; i < inp; i++) {
                        assertEquals(wantA[k * inp + i], sign * a[k * inp + i], 1e-4, what + ": A row " + k);
                    }
                    for (int o = 0; o < out; o++) {
                        assertEquals(wantB[o * r + k], sign * b[o * r + k], 1e-4, what + ": B column " + k);
                    }
                }
            }
        }
    }

    @Test
    void onlyFourBitsOnADenseBase() {
        try (NDManager m = Torch.newManager()) {
            LoraLinear l = LoraLinear.initialise(new DenseLinear(m.zeros(new Shape(8, 64))), "m", 2, 1, 0, 1, m);
            var e = assertThrows(IllegalArgumentException.class, () -> Loftq.apply(l, "m", 8, 1));
            assertTrue(e.getMessage().startsWith("peft.loftq_config.loftq_bits: 8 is not supported"), e.getMessage());
        }
    }
}
