package dev.jtune.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.ConfigException;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsWriter;
import dev.jtune.testkit.TinyLlama;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link Nf4Checkpoint}: a bitsandbytes 4-bit directory loads as the same model jtune quantizes itself. */
class Nf4CheckpointTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long[] IDS = {1, 5, 9, 33, 2, 60, 7, 7, 12, 40, 3, 0};

    @TempDir
    Path dir;

    /** Saves as transformers does after from_pretrained(load_in_4bit=True, nf4, double quant): lm_head dense. */
    private static void save(Path dir, LlamaConfig config, Map<String, float[]> w, ObjectNode quantization)
            throws IOException {
        Map<String, long[]> shapes = TinyLlama.shapes(config);
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        for (var e : w.entrySet()) {
            String name = e.getKey();
            String module = name.substring(0, name.length() - ".weight".length());
            long[] shape = shapes.get(name);
            if (shape.length == 2 && Nf4.isBaseLinear(module)) {
                entries.addAll(Bnb4bitLayout.entries(module, Nf4Quantizer.quantize(e.getValue(), shape, Dtype.FP32)));
            } else {
                entries.add(SafetensorsWriter.Entry.ofFloats(name, shape, e.getValue(), SafetensorsDtype.F32));
            }
        }
        SafetensorsWriter.write(dir.resolve("model.safetensors"), entries, Map.of("format", "pt"));
        ObjectNode json = config.toJson();
        if (quantization != null) {
            json.set("quantization_config", quantization);
        }
        Files.writeString(dir.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json));
    }

    /** transformers' BitsAndBytesConfig.to_dict() for QLoRA. */
    private static ObjectNode bnbConfig() {
        ObjectNode q = JSON.createObjectNode();
        q.put("_load_in_4bit", true);
        q.put("_load_in_8bit", false);
        q.put("bnb_4bit_compute_dtype", "float32");
        q.put("bnb_4bit_quant_storage", "uint8");
        q.put("bnb_4bit_quant_type", "nf4");
        q.put("bnb_4bit_use_double_quant", true);
        q.put("llm_int8_enable_fp32_cpu_offload", false);
        q.put("llm_int8_has_fp16_weight", false);
        q.putNull("llm_int8_skip_modules");
        q.put("llm_int8_threshold", 6.0);
        q.put("load_in_4bit", true);
        q.put("load_in_8bit", false);
        q.put("quant_method", "bitsandbytes");
        return q;
    }

    private static float[] logits(LlamaModel model) {
        try (NDManager m = Torch.newManager()) {
            NDArray ids = m.create(IDS, new Shape(2, IDS.length / 2));
            return model.forward(ids, LlamaModel.defaultPositions(ids), null).toFloatArray();
        }
    }

    @Test
    void storedNf4EqualsQuantizingTheDenseModel() throws IOException {
        LlamaConfig config = TinyLlama.preset();
        Map<String, float[]> w = TinyLlama.values(config, 7);
        save(dir, config, w, bnbConfig());
        float[] expected;
        try (NDManager m = Torch.newManager();
                LlamaModel dense = LlamaModel.load(config, TinyLlama.source(config, w), Dtype.FP32, m,
                        Nf4.linearFactory())) {
            expected = logits(dense);
        }
        try (Nf4Checkpoint ckpt = Nf4Checkpoint.open(dir); NDManager m = Torch.newManager()) {
            assertEquals(7 * config.numHiddenLayers(), ckpt.quantizedModules().size());
            // createStored must be used: make the dense path fail if LlamaModel asks for it.
            LlamaModel.LinearFactory factory = ckpt.linearFactory();
            LlamaModel.LinearFactory strict = new LlamaModel.LinearFactory() {
                public dev.jtune.model.llama.Linear create(String name, NDArray weight) {
                    assertTrue(!ckpt.quantizedModules().contains(name), name + " was dequantized at load");
                    return factory.create(name, weight);
                }

                public dev.jtune.model.llama.Linear createStored(String name, long out, long in, NDManager mm) {
                    return factory.createStored(name, out, in, mm);
                }
            };
            try (LlamaModel model = LlamaModel.load(ckpt.config(), ckpt, Dtype.FP32, m, strict)) {
                assertInstanceOf(Nf4Linear.class, model.layers().get(0).attention().q());
                assertInstanceOf(DenseLinear.class, model.lmHead());
                assertArrayEquals(expected, logits(model));
            }
        }
    }

    @Test
    void wrappingFactoryGetsTheStoredTensorToo() throws IOException {
        LlamaConfig config = TinyLlama.preset();
        Map<String, float[]> w = TinyLlama.values(config, 7);
        save(dir, config, w, bnbConfig());
        float[] expected;
        try (NDManager m = Torch.newManager();
                LlamaModel dense = LlamaModel.load(config, TinyLlama.source(config, w), Dtype.FP32, m,
                        Nf4.linearFactory())) {
            expected = logits(dense);
        }
        try (Nf4Checkpoint ckpt = Nf4Checkpoint.open(dir); NDManager m = Torch.newManager()) {
            LlamaModel.LinearFactory factory = ckpt.linearFactory();
            // Only create(): the dense (dequantized) weight arrives and is replaced by the stored NF4 tensor.
            LlamaModel.LinearFactory wrapping = factory::create;
            try (LlamaModel model = LlamaModel.load(ckpt.config(), ckpt, Dtype.FP32, m, wrapping)) {
                assertArrayEquals(expected, logits(model));
            }
        }
    }

    @Test
    void denseLoadSeesDequantizedWeights() throws IOException {
        LlamaConfig config = TinyLlama.preset();
        Map<String, float[]> w = TinyLlama.values(config, 7);
        save(dir, config, w, bnbConfig());
        try (Nf4Checkpoint ckpt = Nf4Checkpoint.open(dir)) {
            String module = "model.layers.1.mlp.down_proj";
            long[] shape = {config.hiddenSize(), config.intermediateSize()};
            assertArrayEquals(shape, ckpt.shape(module + ".weight"));
            float[] expected = Nf4Quantizer.dequantize(Nf4Quantizer.quantize(w.get(module + ".weight"), shape, Dtype.FP32));
            assertArrayEquals(expected, ckpt.floats(module + ".weight"));
            assertArrayEquals(w.get("lm_head.weight"), ckpt.floats("lm_head.weight"));
            try (NDManager m = Torch.newManager(); LlamaModel model = LlamaModel.load(ckpt.config(), ckpt, Dtype.FP32, m)) {
                assertEquals(IDS.length * TinyLlama.VOCAB, logits(model).length);
            }
        }
    }

    @Test
    void refusesOtherQuantizationConfigs() throws IOException {
        LlamaConfig config = TinyLlama.preset();
        Map<String, float[]> w = TinyLlama.values(config, 7);
        save(dir, config, w, null);
        ConfigException none = assertThrows(ConfigException.class, () -> Nf4Checkpoint.open(dir));
        assertTrue(none.getMessage().contains("quantization_config"), none.getMessage());
        ObjectNode fp4 = bnbConfig();
        fp4.put("bnb_4bit_quant_type", "fp4");
        save(dir, config, w, fp4);
        ConfigException e = assertThrows(ConfigException.class, () -> Nf4Checkpoint.open(dir));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("bnb_4bit_quant_type"),
                e.getMessage());
        ObjectNode single = bnbConfig();
        single.put("bnb_4bit_use_double_quant", false);
        save(dir, config, w, single);
        e = assertThrows(ConfigException.class, () -> Nf4Checkpoint.open(dir));
        assertTrue(e.getMessage().contains("bnb_4bit_use_double_quant"), e.getMessage());
    }
}
