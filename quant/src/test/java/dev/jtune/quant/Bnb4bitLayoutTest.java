package dev.jtune.quant;

import static dev.jtune.quant.Nf4QuantizerTest.assertBits;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.model.engine.Dtype;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsFile;
import dev.jtune.model.safetensors.SafetensorsWriter;
import dev.jtune.model.safetensors.SafetensorsWriter.Entry;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class Bnb4bitLayoutTest {
    @TempDir
    Path dir;

    private static Nf4Tensor sample(long rows, long cols, Dtype d, long seed) {
        Random r = new Random(seed);
        float[] x = new float[(int) (rows * cols)];
        for (int i = 0; i < x.length; i++) {
            x[i] = Nf4Quantizer.roundTo(d, (float) (r.nextGaussian() * 0.03));
        }
        return Nf4Quantizer.quantize(x, new long[] {rows, cols}, d);
    }

    @Test
    void roundTripsThroughSafetensors() {
        Nf4Tensor a = sample(96, 200, Dtype.BF16, 1);
        Nf4Tensor b = sample(7, 9, Dtype.FP16, 2);
        List<Entry> entries = new ArrayList<>(Bnb4bitLayout.entries("model.layers.0.mlp.up_proj", a));
        entries.addAll(Bnb4bitLayout.entries("model.layers.0.self_attn.q_proj", b));
        Path file = dir.resolve("model.safetensors");
        SafetensorsWriter.write(file, entries, Map.of("format", "pt"));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertTrue(Bnb4bitLayout.isNf4(f, "model.layers.0.mlp.up_proj"));
            assertEquals(List.of(9600L, 1L), List.of(f.info("model.layers.0.mlp.up_proj.weight").shape()[0],
                    f.info("model.layers.0.mlp.up_proj.weight").shape()[1]));
            Nf4Tensor a2 = Bnb4bitLayout.read(f, "model.layers.0.mlp.up_proj");
            Nf4Tensor b2 = Bnb4bitLayout.read(f, "model.layers.0.self_attn.q_proj");
            assertEquals(a, a2);
            assertEquals(b, b2);
            assertBits("dequantized", Nf4Quantizer.dequantize(a), Nf4Quantizer.dequantize(a2));
            String json = new String(f.bytes("model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4"),
                    StandardCharsets.UTF_8);
            assertEquals("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [7, 9], "
                    + "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": "
                    + Bnb4bitLayout.pythonRepr(b.offset()) + "}", json);
            assertEquals(b.offset(), Float.parseFloat(Bnb4bitLayout.pythonRepr(b.offset())));
        }
    }

    @Test
    void pythonReprOfFloats() {
        // Expected strings are Python 3's repr(float(numpy.float32(v))).
        assertEquals("0.0", Bnb4bitLayout.pythonRepr(0f));
        assertEquals("1.0", Bnb4bitLayout.pythonRepr(1f));
        assertEquals("0.10000000149011612", Bnb4bitLayout.pythonRepr(0.1f));
        assertEquals("9.999999747378752e-06", Bnb4bitLayout.pythonRepr(1e-5f));
        assertEquals("0.0010000000474974513", Bnb4bitLayout.pythonRepr(1e-3f));
        assertEquals("1.0000000272564224e+16", Bnb4bitLayout.pythonRepr(1e16f));
        assertEquals("1.152921504606847e+18", Bnb4bitLayout.pythonRepr(0x1p60f));
        assertEquals("6.103515625e-05", Bnb4bitLayout.pythonRepr(0x1p-14f));
        assertEquals("0.0003662109375", Bnb4bitLayout.pythonRepr(0x3p-13f));
        assertEquals("-2.5", Bnb4bitLayout.pythonRepr(-2.5f));
        assertEquals("123456.0", Bnb4bitLayout.pythonRepr(123456f));
    }

    @Test
    void badQuantStateNamesFileAndKey() {
        Nf4Tensor a = sample(4, 64, Dtype.FP32, 3);
        List<Entry> entries = new ArrayList<>(Bnb4bitLayout.entries("lin", a));
        entries.removeIf(e -> e.name().endsWith("quant_state.bitsandbytes__nf4"));
        byte[] fp4 = "{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [4, 64]}"
                .getBytes(StandardCharsets.UTF_8);
        entries.add(Entry.ofBytes("lin.weight.quant_state.bitsandbytes__nf4", SafetensorsDtype.U8,
                new long[] {fp4.length}, fp4));
        Path file = dir.resolve("bad.safetensors");
        SafetensorsWriter.write(file, entries, Map.of());
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            var e = assertThrows(Bnb4bitFormatException.class, () -> Bnb4bitLayout.read(f, "lin"));
            assertTrue(e.getMessage().contains("bad.safetensors: tensor 'lin.weight.quant_state.bitsandbytes__nf4'"
                    + " quant_type is 'fp4'"), e.getMessage());
            e = assertThrows(Bnb4bitFormatException.class, () -> Bnb4bitLayout.read(f, "other"));
            assertTrue(e.getMessage().contains("'other.weight.quant_state.bitsandbytes__nf4' missing"),
                    e.getMessage());
        }
    }
}
