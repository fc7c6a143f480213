package dev.jtune.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.safetensors.HalfFloats;
import dev.jtune.model.safetensors.SafetensorsCheckpoint;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LoraMergeTest {
    @TempDir
    Path tmp;

    private static final LoraSettings S = new LoraSettings(LoraSettings.Adapter.LORA, 3, 5, 0.0,
            List.of("q_proj", "o_proj", "up_proj"), false, List.of("lm_head"));

    private record Base(Path dir, Map<String, float[]> w, Map<String, long[]> shapes) {}

    private Base writeBase(SafetensorsDtype dtype) throws IOException {
        LlamaConfig c = Tiny.config(false);
        Map<String, long[]> shapes = new HashMap<>();
        Map<String, float[]> w = Tiny.weights(c, 6, shapes);
        Path dir = tmp.resolve("base-" + dtype);
        Files.createDirectories(dir);
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        w.forEach((n, v) -> entries.add(SafetensorsWriter.Entry.ofFloats(n, shapes.get(n), v, dtype)));
        SafetensorsWriter.write(dir.resolve("model.safetensors"), entries, Map.of());
        Files.writeString(dir.resolve("config.json"), c.toJson().toString());
        Files.writeString(dir.resolve("tokenizer.json"), "{\"tok\": 1}");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{}");
        return new Base(dir, w, shapes);
    }

    @Test
    void fp32MergeIsWPlusScaledBA() throws IOException {
        Base base = writeBase(SafetensorsDtype.F32);
        PeftAdapter adapter = LoraModelTest.randomAdapter(S, base.w(), base.shapes(), 2);
        Path out = tmp.resolve("merged");
        LoraMerge.Summary summary = LoraMerge.merge(base.dir(), adapter, out);
        assertEquals(2 * 3, summary.mergedModules());
        assertEquals(1, summary.replacedModules());
        assertEquals("{\"tok\": 1}", Files.readString(out.resolve("tokenizer.json")));
        assertTrue(Files.exists(out.resolve("config.json")) && Files.exists(out.resolve("tokenizer_config.json")));
        try (SafetensorsCheckpoint merged = SafetensorsCheckpoint.open(out);
                SafetensorsCheckpoint orig = SafetensorsCheckpoint.open(base.dir())) {
            assertEquals(orig.names(), merged.names());
            for (String name : merged.names()) {
                String module = name.substring(0, name.length() - ".weight".length());
                float[] got = merged.floats(name);
                assertEquals(SafetensorsDtype.F32, merged.info(name).dtype());
                if (adapter.tensors().containsKey(PeftAdapter.loraAKey(module))) {
                    float[] exp = LoraModelTest.mergeInDouble(base.w().get(name), adapter, module, S.scaling());
                    assertTrue(LoraModelTest.maxAbsDiff(exp, got) <= 1e-6, name);
                    assertTrue(LoraModelTest.maxAbsDiff(base.w().get(name), got) > 1e-3, name + " changed");
                } else if (name.equals("lm_head.weight")) {
                    assertArrayEquals(adapter.tensors().get("base_model.model.lm_head.weight").values(), got);
                } else {
                    assertArrayEquals(orig.floats(name), got, name + " is copied unchanged");
                }
            }
        }
    }

    @Test
    void bf16MergeRoundsOnceToNearestEven() throws IOException {
        Base base = writeBase(SafetensorsDtype.BF16);
        PeftAdapter adapter = LoraModelTest.randomAdapter(S, base.w(), base.shapes(), 3);
        Path out = tmp.resolve("merged16");
        LoraMerge.merge(base.dir(), adapter, out);
        try (SafetensorsCheckpoint merged = SafetensorsCheckpoint.open(out);
                SafetensorsCheckpoint orig = SafetensorsCheckpoint.open(base.dir())) {
            String name = "model.layers.1.mlp.up_proj.weight";
            assertEquals(SafetensorsDtype.BF16, merged.info(name).dtype());
            float[] w = orig.floats(name); // the bf16 values, widened
            float[] exact = LoraModelTest.mergeInDouble(w, adapter, "model.layers.1.mlp.up_proj", S.scaling());
            float[] got = merged.floats(name);
            int differ = 0;
            for (int i = 0; i < got.length; i++) {
                float rounded = HalfFloats.bfloat16ToFloat(HalfFloats.floatToBFloat16(exact[i]));
                // Equal to the bf16 rounding of the exact sum, except where the float sum sits within a float
                // rounding of a bf16 tie; then one bf16 step away at most.
                if (rounded != got[i]) {
                    differ++;
                    assertTrue(Math.abs(rounded - got[i]) <= Math.ulp(rounded) * 65536, "element " + i);
                }
            }
            assertTrue(differ <= got.length / 100, differ + " elements off the exact rounding");
            assertArrayEquals(orig.floats("model.norm.weight"), merged.floats("model.norm.weight"));
        }
    }

    @Test
    void refusesNf4StoredBasesAndForeignAdapters() throws IOException {
        Base base = writeBase(SafetensorsDtype.F32);
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        try (SafetensorsCheckpoint orig = SafetensorsCheckpoint.open(base.dir())) {
            for (String n : orig.names()) {
                entries.add(SafetensorsWriter.Entry.ofFloats(n, orig.info(n).shape(), orig.floats(n), SafetensorsDtype.F32));
            }
        }
        entries.add(SafetensorsWriter.Entry.ofBytes("model.layers.0.self_attn.q_proj.weight.absmax", SafetensorsDtype.F32,
                new long[] {1}, new byte[4]));
        Path nf4 = tmp.resolve("nf4");
        Files.createDirectories(nf4);
        SafetensorsWriter.write(nf4.resolve("model.safetensors"), entries, Map.of());
        PeftAdapter adapter = LoraModelTest.randomAdapter(S, base.w(), base.shapes(), 2);
        var e = assertThrows(AdapterException.class, () -> LoraMerge.merge(nf4, adapter, tmp.resolve("x")));
        assertTrue(e.getMessage().contains("bitsandbytes 4-bit layout"), e.getMessage());

        var extra = new java.util.LinkedHashMap<>(adapter.tensors());
        extra.put(PeftAdapter.loraAKey("model.layers.9.self_attn.q_proj"), new PeftAdapter.Tensor(new long[] {3, 16},
                new float[48]));
        e = assertThrows(AdapterException.class,
                () -> LoraMerge.merge(base.dir(), new PeftAdapter(S, null, extra), tmp.resolve("y")));
        assertTrue(e.getMessage().contains("model.layers.9.self_attn.q_proj.lora_A.weight"), e.getMessage());
        assertTrue(Files.notExists(tmp.resolve("y")), "nothing written on failure");
    }
}
