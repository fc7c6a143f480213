package dev.jtune.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.model.engine.Dtype;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.quant.Bnb4bitLayout;
import dev.jtune.quant.Int8Checkpoint;
import dev.jtune.quant.Int8Quantizer;
import dev.jtune.quant.Int8Tensor;
import dev.jtune.quant.Nf4;
import dev.jtune.quant.Nf4Quantizer;
import dev.jtune.quant.Nf4Tensor;
import dev.jtune.model.safetensors.HalfFloats;
import dev.jtune.model.safetensors.SafetensorsCheckpoint;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsWriter;
import dev.jtune.testkit.TinyLlama;
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
        LlamaConfig c = TinyLlama.micro(false);
        Map<String, float[]> w = TinyLlama.values(c, 6);
        Map<String, long[]> shapes = TinyLlama.shapes(c);
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
    void nf4StoredBaseIsDequantizedThenMerged() throws IOException {
        Base base = writeBase(SafetensorsDtype.F32);
        // The same weights saved as transformers saves a load_in_4bit model: base linears in bitsandbytes layout.
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        Map<String, float[]> dequantized = new HashMap<>();
        for (var e : base.w().entrySet()) {
            String name = e.getKey();
            String module = name.substring(0, name.length() - ".weight".length());
            long[] shape = base.shapes().get(name);
            if (shape.length == 2 && Nf4.isBaseLinear(module)) {
                Nf4Tensor q = Nf4Quantizer.quantize(e.getValue(), shape, Dtype.FP32);
                entries.addAll(Bnb4bitLayout.entries(module, q));
                dequantized.put(name, Nf4Quantizer.dequantize(q));
            } else {
                entries.add(SafetensorsWriter.Entry.ofFloats(name, shape, e.getValue(), SafetensorsDtype.F32));
            }
        }
        Path nf4 = tmp.resolve("nf4");
        Files.createDirectories(nf4);
        SafetensorsWriter.write(nf4.resolve("model.safetensors"), entries, Map.of());
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var config = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(
                Files.readString(base.dir().resolve("config.json")));
        var q = config.putObject("quantization_config");
        q.put("quant_method", "bitsandbytes");
        q.put("load_in_4bit", true);
        q.put("bnb_4bit_quant_type", "nf4");
        q.put("bnb_4bit_use_double_quant", true);
        Files.writeString(nf4.resolve("config.json"), config.toString());
        assertTrue(dequantized.size() >= 7, "the base linears are quantized");

        PeftAdapter adapter = LoraModelTest.randomAdapter(S, base.w(), base.shapes(), 2);
        Path out = tmp.resolve("merged-nf4");
        LoraMerge.merge(nf4, adapter, out);
        assertTrue(json.readTree(Files.readString(out.resolve("config.json"))).path("quantization_config").isMissingNode(),
                "the merged model is dense");
        try (SafetensorsCheckpoint merged = SafetensorsCheckpoint.open(out)) {
            assertEquals(base.w().keySet(), new java.util.HashSet<>(merged.names()), "no quantization statistics left");
            for (String name : merged.names()) {
                String module = name.substring(0, name.length() - ".weight".length());
                float[] got = merged.floats(name);
                float[] w = dequantized.getOrDefault(name, base.w().get(name));
                if (adapter.tensors().containsKey(PeftAdapter.loraAKey(module))) {
                    float[] exp = LoraModelTest.mergeInDouble(w, adapter, module, S.scaling());
                    assertTrue(LoraModelTest.maxAbsDiff(exp, got) <= 1e-6, name + ": W_nf4 + s*B*A");
                } else if (!name.equals("lm_head.weight")) {
                    assertArrayEquals(w, got, name + " as dequantized (or copied)");
                }
            }
        }
    }

    @Test
    void int8StoredBaseIsDequantizedThenMerged() throws IOException {
        Base base = writeBase(SafetensorsDtype.BF16);
        // The same weights saved as transformers saves a load_in_8bit model (Linear8bitLt._save_to_state_dict):
        // X.weight int8 CB, X.SCB fp32, X.weight_format uint8 0; bf16 everything else.
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        Map<String, float[]> dequantized = new HashMap<>();
        for (var e : base.w().entrySet()) {
            String name = e.getKey();
            String module = name.substring(0, name.length() - ".weight".length());
            long[] shape = base.shapes().get(name);
            float[] bf16 = e.getValue().clone();
            for (int i = 0; i < bf16.length; i++) {
                bf16[i] = HalfFloats.bfloat16ToFloat(HalfFloats.floatToBFloat16(bf16[i]));
            }
            if (shape.length == 2 && Nf4.isBaseLinear(module)) {
                Int8Tensor q = Int8Quantizer.quantize(bf16, shape);
                entries.add(SafetensorsWriter.Entry.ofBytes(name, SafetensorsDtype.I8, shape, q.codes()));
                entries.add(SafetensorsWriter.Entry.ofFloats(module + ".SCB", new long[] {shape[0]}, q.rowAbsmax(),
                        SafetensorsDtype.F32));
                entries.add(SafetensorsWriter.Entry.ofBytes(module + ".weight_format", SafetensorsDtype.U8,
                        new long[0], new byte[] {0}));
                float[] d = Int8Checkpoint.dequantize(q);
                for (int i = 0; i < d.length; i++) {
                    d[i] = HalfFloats.bfloat16ToFloat(HalfFloats.floatToBFloat16(d[i])); // transformers' .to(bf16)
                }
                dequantized.put(name, d);
            } else {
                entries.add(SafetensorsWriter.Entry.ofFloats(name, shape, bf16, SafetensorsDtype.BF16));
            }
        }
        Path int8 = tmp.resolve("int8");
        Files.createDirectories(int8);
        SafetensorsWriter.write(int8.resolve("model.safetensors"), entries, Map.of());
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var config = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(
                Files.readString(base.dir().resolve("config.json")));
        var q = config.putObject("quantization_config");
        q.put("quant_method", "bitsandbytes");
        q.put("load_in_8bit", true);
        q.put("llm_int8_threshold", 6.0);
        q.put("llm_int8_has_fp16_weight", false);
        Files.writeString(int8.resolve("config.json"), config.toString());
        assertTrue(dequantized.size() >= 7, "the base linears are quantized");

        PeftAdapter adapter = LoraModelTest.randomAdapter(S, base.w(), base.shapes(), 2);
        Path out = tmp.resolve("merged-int8");
        LoraMerge.merge(int8, adapter, out);
        assertTrue(json.readTree(Files.readString(out.resolve("config.json"))).path("quantization_config").isMissingNode(),
                "the merged model is dense");
        try (SafetensorsCheckpoint merged = SafetensorsCheckpoint.open(out)) {
            assertEquals(base.w().keySet(), new java.util.HashSet<>(merged.names()), "no SCB or weight_format left");
            int adapted = 0;
            for (String name : merged.names()) {
                assertEquals(SafetensorsDtype.BF16, merged.info(name).dtype(), name + " in the checkpoint's dtype");
                String module = name.substring(0, name.length() - ".weight".length());
                float[] got = merged.floats(name);
                if (!dequantized.containsKey(name)) {
                    continue;
                }
                if (adapter.tensors().containsKey(PeftAdapter.loraAKey(module))) {
                    adapted++;
                    float[] exp = LoraModelTest.mergeInDouble(dequantized.get(name), adapter, module, S.scaling());
                    for (int i = 0; i < got.length; i++) {
                        float rounded = HalfFloats.bfloat16ToFloat(HalfFloats.floatToBFloat16(exp[i]));
                        // W (bf16, as transformers dequantizes) + s·B·A, rounded once to bf16 (a tie may go either way).
                        assertEquals(rounded, got[i], Math.ulp(rounded) * 65536 + 1e-30,
                                name + ": W_int8 + s*B*A [" + i + "]");
                    }
                } else {
                    assertArrayEquals(dequantized.get(name), got, name + " dequantized as transformers does");
                }
            }
            assertTrue(adapted > 0, "some adapted module is 8-bit-stored");
        }
    }

    @Test
    void multimodalGemma3LegacyNamesAreTransformersModules() {
        // save_pretrained's layout (tools/reference/FAMILIES.md) against the module names PEFT saves adapters under.
        assertEquals("model.language_model.layers.0.self_attn.q_proj",
                LoraMerge.moduleOf("language_model.model.layers.0.self_attn.q_proj.weight"));
        assertEquals("model.vision_tower.encoder.layers.0.self_attn.q_proj",
                LoraMerge.moduleOf("vision_tower.encoder.layers.0.self_attn.q_proj.weight"));
        assertEquals("model.multi_modal_projector.mm_soft_emb_norm",
                LoraMerge.moduleOf("multi_modal_projector.mm_soft_emb_norm.weight"));
        assertEquals("lm_head", LoraMerge.moduleOf("language_model.lm_head.weight"));
        assertEquals("model.vision_tower.encoder.layers.0.self_attn.q_proj",
                LoraMerge.moduleOf("model.vision_tower.encoder.layers.0.self_attn.q_proj.weight"), "new layout kept");
        assertEquals("model.layers.0.mlp.up_proj", LoraMerge.moduleOf("model.layers.0.mlp.up_proj.weight"));
        assertEquals(null, LoraMerge.moduleOf("vision_tower.encoder.layers.0.self_attn.q_proj.bias"));
    }

    @Test
    void refusesForeignAdapters() throws IOException {
        Base base = writeBase(SafetensorsDtype.F32);
        PeftAdapter adapter = LoraModelTest.randomAdapter(S, base.w(), base.shapes(), 2);
        var extra = new java.util.LinkedHashMap<>(adapter.tensors());
        extra.put(PeftAdapter.loraAKey("model.layers.9.self_attn.q_proj"), new PeftAdapter.Tensor(new long[] {3, 16},
                new float[48]));
        var e = assertThrows(AdapterException.class,
                () -> LoraMerge.merge(base.dir(), new PeftAdapter(S, null, extra), tmp.resolve("y")));
        assertTrue(e.getMessage().contains("model.layers.9.self_attn.q_proj.lora_A.weight"), e.getMessage());
        assertTrue(Files.notExists(tmp.resolve("y")), "nothing written on failure");
    }
}
