package dev.jtune.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.llama.WeightSource;
import dev.jtune.testkit.TinyLlama;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class LoraModelTest {
    private static final LoraSettings ALL_LINEAR = new LoraSettings(LoraSettings.Adapter.LORA, 4, 8, 0.0,
            LoraSettings.LINEAR_MODULES, false, List.of());

    private static NDArray logits(LlamaModel model, NDManager m) {
        NDArray ids = m.create(new long[] {1, 5, 9, 17, 33, 2, 40, 7}, new Shape(2, 4));
        return model.forward(ids, LlamaModel.defaultPositions(ids), null);
    }

    @Test
    void freshAdapterStartsAtTheBaseModelAndNamesParametersAsPeft() {
        LlamaConfig c = TinyLlama.micro(false);
        WeightSource src = TinyLlama.weights(c, 3);
        try (NDManager m = Torch.newManager();
                LlamaModel base = LlamaModel.load(c, src, Dtype.FP32, m)) {
            LoraModel lora = LoraModel.fresh(ALL_LINEAR, 42, LoraModel.dense());
            try (LlamaModel model = LlamaModel.load(c, src, Dtype.FP32, m, lora)) {
                lora.attach(model);
                assertArrayEquals(logits(base, m).toFloatArray(), logits(model, m).toFloatArray(),
                        "B = 0: the adapted model computes the base model exactly");
                Map<String, NDArray> p = lora.trainableParameters();
                assertEquals(2 * 7 * 2, p.size());
                List<String> names = new ArrayList<>(p.keySet());
                assertEquals("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", names.get(0));
                assertEquals("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", names.get(1));
                assertEquals("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight", names.get(27));
                assertEquals(new Shape(4, 16), p.get(names.get(0)).getShape());
                assertEquals(new Shape(16, 4), p.get(names.get(1)).getShape());
                assertEquals(new Shape(4, 24), p.get("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight")
                        .getShape());
                p.values().forEach(a -> assertEquals(DataType.FLOAT32, a.getDataType()));

                // With B = 0, dL/dA = 0 exactly and dL/dB is not: the LoRA training start.
                lora.setTraining(true);
                try (GradientCollector gc = Torch.engine().newGradientCollector()) {
                    gc.backward(logits(model, m).square().mean());
                }
                float[] gA = p.get(names.get(0)).getGradient().toFloatArray();
                float[] gB = p.get(names.get(1)).getGradient().toFloatArray();
                for (float g : gA) {
                    assertEquals(0f, g);
                }
                assertTrue(maxAbs(gB) > 0, "B receives a gradient");
            }
        }
    }

    @Test
    void aRegexTargetWrapsExactlyTheModulesItFullyMatches() {
        LlamaConfig c = TinyLlama.micro(false);
        WeightSource src = TinyLlama.weights(c, 3);
        var regex = new LoraSettings(LoraSettings.Adapter.LORA, 4, 8, 0.0, List.of(), false, List.of(), false,
                java.util.Optional.of(".*\\.layers\\.(1)\\.self_attn\\.(q|v)_proj|.*\\.layers\\.0\\.mlp\\.down_proj"));
        try (NDManager m = Torch.newManager()) {
            LoraModel lora = LoraModel.fresh(regex, 42, LoraModel.dense());
            try (LlamaModel model = LlamaModel.load(c, src, Dtype.FP32, m, lora)) {
                lora.attach(model);
                assertEquals(List.of("model.layers.0.mlp.down_proj", "model.layers.1.self_attn.q_proj",
                        "model.layers.1.self_attn.v_proj"), new ArrayList<>(lora.adapters().keySet()).stream().sorted()
                        .toList());
                assertEquals(regex.targetRegex().get(), lora.settings().peftTargetModules());
            }
            // A bare name as a string is a regex matching no full module name: an error, as in PEFT.
            var bare = new LoraSettings(LoraSettings.Adapter.LORA, 4, 8, 0.0, List.of(), false, List.of(), false,
                    java.util.Optional.of("q_proj"));
            LoraModel none = LoraModel.fresh(bare, 42, LoraModel.dense());
            try (LlamaModel model = LlamaModel.load(c, src, Dtype.FP32, m, none)) {
                var e = assertThrows(AdapterException.class, () -> none.attach(model));
                assertTrue(e.getMessage().contains("target_modules 'q_proj' matches no linear layer"), e.getMessage());
            }
        }
    }

    /** The adapted model with random A, B and saved modules equals the base model with merged weights. */
    @Test
    void loadedAdapterEqualsTheModelWithMergedWeights() {
        LlamaConfig c = TinyLlama.micro(false);
        Map<String, float[]> w = TinyLlama.values(c, 4);
        Map<String, long[]> shapes = TinyLlama.shapes(c);
        var s = new LoraSettings(LoraSettings.Adapter.LORA, 3, 7, 0.1, List.of("q_proj", "v_proj", "down_proj"), true,
                List.of("embed_tokens", "lm_head"));
        PeftAdapter adapter = randomAdapter(s, w, shapes, 9);
        Map<String, float[]> merged = new LinkedHashMap<>(w);
        for (String module : adapter.adaptedModules()) {
            merged.put(module + ".weight", mergeInDouble(w.get(module + ".weight"), adapter, module, s.scaling()));
        }
        merged.put("lm_head.weight", adapter.tensors().get("base_model.model.lm_head.weight").values());
        merged.put("model.embed_tokens.weight", adapter.tensors().get("base_model.model.model.embed_tokens.weight").values());
        try (NDManager m = Torch.newManager();
                LlamaModel reference = LlamaModel.load(c, TinyLlama.source(c, merged), Dtype.FP32, m)) {
            LoraModel lora = LoraModel.fromAdapter(adapter, LoraModel.dense());
            try (LlamaModel model = LlamaModel.load(c, TinyLlama.source(c, w), Dtype.FP32, m, lora)) {
                lora.attach(model);
                assertEquals(2 * 3 * 2 + 2, lora.trainableParameters().size());
                assertEquals("base_model.model.model.embed_tokens.weight",
                        lora.trainableParameters().keySet().iterator().next());
                float[] expected = logits(reference, m).toFloatArray();
                float[] got = logits(model, m).toFloatArray(); // evaluation mode: no dropout
                assertTrue(maxAbsDiff(expected, got) < 2e-5, "max diff " + maxAbsDiff(expected, got));
                assertTrue(maxAbsDiff(expected, logits(LlamaModel.load(c, TinyLlama.source(c, w), Dtype.FP32, m), m)
                        .toFloatArray()) > 1e-3, "the adapter changes the logits");

                // The same adapter in a bf16 model: close to the fp32 result.
                LoraModel lora16 = LoraModel.fromAdapter(adapter, LoraModel.dense());
                try (LlamaModel bf16 = LlamaModel.load(c, TinyLlama.source(c, w), Dtype.BF16, m, lora16)) {
                    lora16.attach(bf16);
                    NDArray out = logits(bf16, m);
                    assertEquals(Dtype.BF16, Kernels.get().dtypeOf(out));
                    float[] g16 = Kernels.get().cast(out, Dtype.FP32).toFloatArray();
                    assertTrue(maxAbsDiff(expected, g16) < 0.05, "bf16 max diff " + maxAbsDiff(expected, g16));
                }

                // Saving writes back exactly the tensors loaded.
                Map<String, NDArray> params = lora.trainableParameters();
                params.forEach((k, v) -> assertArrayEquals(adapter.tensors().get(k).values(), v.toFloatArray(), k));
                assertNotNull(params.get("base_model.model.lm_head.weight"));
            }
        }
    }

    @Test
    void errorsNameWhatDoesNotFit() {
        LlamaConfig tied = TinyLlama.micro(true);
        try (NDManager m = Torch.newManager()) {
            var head = new LoraSettings(LoraSettings.Adapter.LORA, 2, 2, 0, List.of("lm_head"), false, List.of());
            LoraModel lora = LoraModel.fresh(head, 1, LoraModel.dense());
            try (LlamaModel model = LlamaModel.load(tied, TinyLlama.weights(tied, 1), Dtype.FP32, m, lora)) {
                var e = assertThrows(AdapterException.class, () -> lora.attach(model));
                assertTrue(e.getMessage().contains("target module lm_head matches no linear layer"), e.getMessage());
            }
            LlamaConfig c = TinyLlama.micro(false);
            Map<String, float[]> w = TinyLlama.values(c, 4);
            Map<String, long[]> shapes = TinyLlama.shapes(c);
            var s = new LoraSettings(LoraSettings.Adapter.LORA, 2, 2, 0, List.of("q_proj"), false, List.of());
            PeftAdapter good = randomAdapter(s, w, shapes, 1);
            Map<String, PeftAdapter.Tensor> extra = new LinkedHashMap<>(good.tensors());
            extra.put(PeftAdapter.loraAKey("model.layers.5.self_attn.q_proj"), new PeftAdapter.Tensor(new long[] {2, 16},
                    new float[32]));
            LoraModel lora2 = LoraModel.fromAdapter(new PeftAdapter(s, null, extra), LoraModel.dense());
            try (LlamaModel model = LlamaModel.load(c, TinyLlama.source(c, w), Dtype.FP32, m, lora2)) {
                var e = assertThrows(AdapterException.class, () -> lora2.attach(model));
                assertTrue(e.getMessage().contains("model.layers.5.self_attn.q_proj.lora_A.weight"), e.getMessage());
            }
            var r8 = new LoraSettings(LoraSettings.Adapter.LORA, 8, 2, 0, List.of("q_proj"), false, List.of());
            LoraModel wrongRank = LoraModel.fromAdapter(new PeftAdapter(r8, null, good.tensors()), LoraModel.dense());
            var e = assertThrows(AdapterException.class,
                    () -> LlamaModel.load(c, TinyLlama.source(c, w), Dtype.FP32, m, wrongRank));
            assertTrue(e.getMessage().contains("has shape [2, 16], the model needs [8, 16]"), e.getMessage());
        }
    }

    /** Random A and B (and saved module copies) for every module of {@code s} in a checkpoint. */
    static PeftAdapter randomAdapter(LoraSettings s, Map<String, float[]> w, Map<String, long[]> shapes, long seed) {
        Random r = new Random(seed);
        Map<String, PeftAdapter.Tensor> t = new LinkedHashMap<>();
        for (String name : w.keySet()) {
            if (!name.endsWith(".weight")) {
                continue;
            }
            String module = name.substring(0, name.length() - ".weight".length());
            long[] shape = shapes.get(name);
            if (s.targets(module)) {
                int out = (int) shape[0];
                int in = (int) shape[1];
                t.put(PeftAdapter.loraAKey(module), new PeftAdapter.Tensor(new long[] {s.r(), in},
                        DoubleMath.gaussian(r, s.r() * in, 0.2)));
                t.put(PeftAdapter.loraBKey(module), new PeftAdapter.Tensor(new long[] {out, s.r()},
                        DoubleMath.gaussian(r, out * s.r(), 0.2)));
            } else if (s.saves(module)) {
                float[] v = w.get(name).clone();
                for (int i = 0; i < v.length; i++) {
                    v[i] += (float) (r.nextGaussian() * 0.05);
                }
                t.put(PeftAdapter.savedKey(module), new PeftAdapter.Tensor(shape, v));
            }
        }
        return new PeftAdapter(s, "base", t);
    }

    /** W + s·B·A elementwise in double, rounded once to float. */
    static float[] mergeInDouble(float[] w, PeftAdapter adapter, String module, double s) {
        PeftAdapter.Tensor a = adapter.tensors().get(PeftAdapter.loraAKey(module));
        PeftAdapter.Tensor b = adapter.tensors().get(PeftAdapter.loraBKey(module));
        int r = (int) a.shape()[0];
        int in = (int) a.shape()[1];
        int out = (int) b.shape()[0];
        float[] res = new float[w.length];
        for (int i = 0; i < out; i++) {
            for (int j = 0; j < in; j++) {
                double d = 0;
                for (int k = 0; k < r; k++) {
                    d += (double) b.values()[i * r + k] * a.values()[k * in + j];
                }
                res[i * in + j] = (float) (w[i * in + j] + s * d);
            }
        }
        return res;
    }

    static double maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs((double) a[i] - b[i]));
        }
        return m;
    }

    private static double maxAbs(float[] a) {
        double m = 0;
        for (float v : a) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }
}
