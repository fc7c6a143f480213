package dev.jtune.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.model.safetensors.SafetensorsFile;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fixtures under {@code fixtures/peft-0.21/} were written by PEFT 0.21.0's {@code PeftModel.save_pretrained}
 * (tools/reference/peft_adapter_config.py; target_modules re-sorted there, since PEFT writes a Python set).
 */
class PeftAdapterTest {
    @TempDir
    Path tmp;

    private static Path fixture(String name) throws URISyntaxException {
        return Path.of(PeftAdapterTest.class.getResource("/fixtures/peft-0.21/" + name + "/adapter_config.json").toURI())
                .getParent();
    }

    @Test
    void configJsonIsWhatPeftWrites() throws Exception {
        var all = new LoraSettings(LoraSettings.Adapter.LORA, 8, 16, 0.05, LoraSettings.LINEAR_MODULES, false, List.of());
        assertEquals(Files.readString(fixture("default").resolve("adapter_config.json")),
                PeftAdapter.configJson(all, "NousResearch/Llama-3.2-1B"));
        var rs = new LoraSettings(LoraSettings.Adapter.LORA, 4, 8, 0.0, List.of("v_proj", "q_proj"), true,
                List.of("embed_tokens", "lm_head"));
        assertEquals(Files.readString(fixture("rslora-saved").resolve("adapter_config.json")),
                PeftAdapter.configJson(rs, "NousResearch/Llama-3.2-1B"));
    }

    @Test
    void pythonFloatRepr() {
        // Python 3: repr(0.05), repr(1e-05), repr(0.0001), repr(1e16), repr(1e15), repr(0.1 + 0.2), repr(2.0),
        // repr(123.456), repr(1.5e-07), repr(-0.0).
        assertEquals("0.05", PythonJson.floatRepr(0.05));
        assertEquals("1e-05", PythonJson.floatRepr(1e-5));
        assertEquals("0.0001", PythonJson.floatRepr(1e-4));
        assertEquals("1e+16", PythonJson.floatRepr(1e16));
        assertEquals("1000000000000000.0", PythonJson.floatRepr(1e15));
        assertEquals("0.30000000000000004", PythonJson.floatRepr(0.1 + 0.2));
        assertEquals("2.0", PythonJson.floatRepr(2.0));
        assertEquals("123.456", PythonJson.floatRepr(123.456));
        assertEquals("1.5e-07", PythonJson.floatRepr(1.5e-7));
        assertEquals("-0.0", PythonJson.floatRepr(-0.0));
    }

    @Test
    void loadsAnAdapterWrittenByPeft() throws Exception {
        PeftAdapter a = PeftAdapter.load(fixture("rslora-saved"));
        assertEquals(4, a.settings().r());
        assertEquals(8, a.settings().alpha());
        assertEquals(8 / 2.0, a.settings().scaling());
        assertEquals(List.of("q_proj", "v_proj"), a.settings().targetModules());
        assertEquals(List.of("embed_tokens", "lm_head"), a.settings().modulesToSave());
        assertEquals("NousResearch/Llama-3.2-1B", a.baseModelNameOrPath());
        assertEquals(List.of("base_model.model.lm_head.weight", "base_model.model.model.embed_tokens.weight",
                "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight",
                "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"),
                a.tensors().keySet().stream().sorted().toList());
        assertArrayEquals(new long[] {4, 16}, a.tensors().get(PeftAdapter.loraAKey("model.layers.0.self_attn.q_proj")).shape());
        assertArrayEquals(new long[] {8, 4}, a.tensors().get(PeftAdapter.loraBKey("model.layers.0.self_attn.v_proj")).shape());
        assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"), a.adaptedModules());
    }

    @Test
    void aRegexTargetRoundTripsAsPeftWritesIt() throws IOException {
        var s = new LoraSettings(LoraSettings.Adapter.LORA, 2, 4, 0.0, List.of(), false, List.of(), false,
                java.util.Optional.of("model\\.layers\\.\\d+\\.self_attn\\.q_proj"));
        Random r = new Random(6);
        Map<String, PeftAdapter.Tensor> t = new LinkedHashMap<>();
        t.put(PeftAdapter.loraAKey("model.layers.0.self_attn.q_proj"), new PeftAdapter.Tensor(new long[] {2, 3},
                DoubleMath.gaussian(r, 6, 1)));
        t.put(PeftAdapter.loraBKey("model.layers.0.self_attn.q_proj"), new PeftAdapter.Tensor(new long[] {5, 2},
                DoubleMath.gaussian(r, 10, 1)));
        new PeftAdapter(s, "/models/base", t).save(tmp);
        // PEFT's LoraConfig keeps a str target_modules as that string.
        assertTrue(Files.readString(tmp.resolve("adapter_config.json"))
                .contains("\"target_modules\": \"model\\\\.layers\\\\.\\\\d+\\\\.self_attn\\\\.q_proj\""),
                Files.readString(tmp.resolve("adapter_config.json")));
        assertEquals(s, PeftAdapter.load(tmp).settings());
    }

    @Test
    void roundTrip() throws IOException {
        var s = new LoraSettings(LoraSettings.Adapter.LORA, 2, 4, 0.1, List.of("q_proj"), false, List.of("lm_head"));
        Random r = new Random(5);
        Map<String, PeftAdapter.Tensor> t = new LinkedHashMap<>();
        t.put(PeftAdapter.loraAKey("model.layers.0.self_attn.q_proj"), new PeftAdapter.Tensor(new long[] {2, 3},
                DoubleMath.gaussian(r, 6, 1)));
        t.put(PeftAdapter.loraBKey("model.layers.0.self_attn.q_proj"), new PeftAdapter.Tensor(new long[] {5, 2},
                DoubleMath.gaussian(r, 10, 1)));
        t.put(PeftAdapter.savedKey("lm_head"),
                new PeftAdapter.Tensor(new long[] {7, 3}, DoubleMath.gaussian(r, 21, 1)));
        new PeftAdapter(s, "/models/base", t).save(tmp);
        try (var f = SafetensorsFile.open(tmp.resolve(PeftAdapter.WEIGHTS_FILE))) {
            assertEquals(Map.of("format", "pt"), f.metadata());
            assertEquals("F32", f.info("base_model.model.lm_head.weight").dtype().name());
        }
        PeftAdapter back = PeftAdapter.load(tmp);
        assertEquals(s, back.settings());
        assertEquals("/models/base", back.baseModelNameOrPath());
        assertEquals(t.keySet(), back.tensors().keySet());
        t.forEach((k, v) -> assertArrayEquals(v.values(), back.tensors().get(k).values(), k));
        try (var files = Files.list(tmp)) {
            assertEquals(List.of("adapter_config.json", "adapter_model.safetensors"),
                    files.map(p -> p.getFileName().toString()).sorted().toList(), "no temporary files left");
        }
    }

    @Test
    void clearLoadErrors() throws Exception {
        var e = assertThrows(AdapterException.class, () -> PeftAdapter.load(tmp));
        assertTrue(e.getMessage().contains("no adapter_config.json"), e.getMessage());

        Path src = fixture("rslora-saved");
        Files.copy(src.resolve(PeftAdapter.WEIGHTS_FILE), tmp.resolve(PeftAdapter.WEIGHTS_FILE));
        String config = Files.readString(src.resolve(PeftAdapter.CONFIG_FILE));
        Files.writeString(tmp.resolve(PeftAdapter.CONFIG_FILE), config.replace("\"r\": 4", "\"r\": 8"));
        e = assertThrows(AdapterException.class, () -> PeftAdapter.load(tmp));
        assertTrue(e.getMessage().contains("adapter_config.json has r = 8"), e.getMessage());

        Files.writeString(tmp.resolve(PeftAdapter.CONFIG_FILE), config.replace("\"use_dora\": false", "\"use_dora\": true"));
        e = assertThrows(AdapterException.class, () -> PeftAdapter.load(tmp));
        assertTrue(e.getMessage().contains("DoRA is not supported"), e.getMessage());

        Files.writeString(tmp.resolve(PeftAdapter.CONFIG_FILE), config.replace("\"lm_head\"\n", "\"norm\"\n"));
        e = assertThrows(AdapterException.class, () -> PeftAdapter.load(tmp));
        assertTrue(e.getMessage().contains("base_model.model.lm_head.weight is neither a LoRA weight nor one of"),
                e.getMessage());

        Files.writeString(tmp.resolve(PeftAdapter.CONFIG_FILE), config.replace("\"v_proj\"\n", "\"k_proj\"\n"));
        e = assertThrows(AdapterException.class, () -> PeftAdapter.load(tmp));
        assertTrue(e.getMessage().contains("which target_modules [k_proj, q_proj] does not name"), e.getMessage());
    }
}
