package dev.jtune.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * How config.json is read per family: the older (transformers 4) keys that published checkpoints carry beside the
 * transformers 5 form of the fixtures, each family's defaults as transformers derives them, and the errors.
 */
class FamilyConfigTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static LlamaConfig parse(String json) throws Exception {
        return LlamaConfig.parse(JSON.readTree(json), "config.json");
    }

    private static String base(String modelType, String extra) {
        return "{\"model_type\": \"" + modelType + "\", \"vocab_size\": 100, \"hidden_size\": 64, \"intermediate_size\": 96,"
                + " \"num_hidden_layers\": 6, \"num_attention_heads\": 4, \"num_key_value_heads\": 2" + extra + "}";
    }

    @Test
    void qwen2IgnoresItsWindowUnlessUseSlidingWindow() throws Exception {
        // Qwen2.5's published configs: sliding_window 32768 with use_sliding_window false — no window anywhere.
        LlamaConfig off = parse(base("qwen2", ", \"use_sliding_window\": false, \"sliding_window\": 32768,"
                + " \"max_window_layers\": 2, \"tie_word_embeddings\": true"));
        assertEquals(0, off.slidingWindow());
        assertEquals(0, off.windowOf(5));
        assertTrue(off.architecture().qkvBias() && !off.architecture().outputBias(), "Qwen2: q/k/v biases, none on o");
        LlamaConfig on = parse(base("qwen2", ", \"use_sliding_window\": true, \"sliding_window\": 16,"
                + " \"max_window_layers\": 2"));
        // transformers: layers from max_window_layers up slide.
        assertEquals(List.of(0, 0, 16, 16, 16, 16), List.of(on.windowOf(0), on.windowOf(1), on.windowOf(2),
                on.windowOf(3), on.windowOf(4), on.windowOf(5)));
    }

    @Test
    void gemma3OlderKeysGiveLocalAndGlobalRotaryAndThePattern() throws Exception {
        LlamaConfig c = parse(base("gemma3_text", ", \"head_dim\": 16, \"sliding_window\": 512,"
                + " \"sliding_window_pattern\": 3, \"rope_theta\": 1000000.0, \"rope_local_base_freq\": 10000.0,"
                + " \"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 8.0}, \"query_pre_attn_scalar\": 256,"
                + " \"hidden_activation\": \"gelu_pytorch_tanh\""));
        assertEquals(1_000_000.0, c.ropeTheta());
        assertEquals(10000.0, c.architecture().localRopeTheta());
        assertEquals(new RopeScaling.Linear(8.0), c.ropeScaling());
        // Every third layer is global: (i + 1) % 3 == 0.
        assertEquals(List.of(true, true, false, true, true, false), c.architecture().slidingLayers());
        assertTrue(c.tieWordEmbeddings(), "Gemma ties its head by default");
        assertEquals(1 / 16.0, c.attentionScale(), 1e-15);
        assertEquals(0.0, c.architecture().attnLogitSoftcapping());
        // Without a window the layers keep their types (and Gemma 3's sliding ones their local rotary base).
        LlamaConfig unwindowed = parse(base("gemma3_text", ", \"head_dim\": 16, \"sliding_window\": null,"
                + " \"sliding_window_pattern\": 3"));
        assertEquals(0, unwindowed.windowOf(0));
        assertTrue(unwindowed.slidingLayer(0) && !unwindowed.slidingLayer(2));
    }

    @Test
    void gemma2DefaultsToItsSoftCapsAndAlternatingWindows() throws Exception {
        LlamaConfig c = parse(base("gemma2", ", \"head_dim\": 16, \"query_pre_attn_scalar\": 224,"
                + " \"hidden_act\": \"gelu_pytorch_tanh\""));
        assertEquals(50.0, c.architecture().attnLogitSoftcapping());
        assertEquals(30.0, c.architecture().finalLogitSoftcapping());
        assertEquals(4096, c.slidingWindow());
        assertEquals(List.of(true, false, true, false, true, false), c.architecture().slidingLayers());
        LlamaConfig uncapped = parse(base("gemma2", ", \"head_dim\": 16, \"attn_logit_softcapping\": null,"
                + " \"final_logit_softcapping\": null"));
        assertEquals(0.0, uncapped.architecture().attnLogitSoftcapping());
        assertEquals(0.0, uncapped.architecture().finalLogitSoftcapping());
    }

    @Test
    void phi3LongRopeFromTheOlderSuFormWithTopLevelOriginalContext() throws Exception {
        String factors = "[1.0, 1.1, 1.2, 1.3, 1.4, 1.5]";
        LlamaConfig c = parse(base("phi3", ", \"max_position_embeddings\": 131072,"
                + " \"original_max_position_embeddings\": 4096, \"partial_rotary_factor\": 0.75,"
                + " \"rope_scaling\": {\"type\": \"su\", \"short_factor\": " + factors + ", \"long_factor\": " + factors
                + "}"));
        var l = (RopeScaling.LongRope) c.ropeScaling();
        assertEquals(4096, l.originalMaxPositionEmbeddings());
        // transformers: factor = 131072 / 4096 = 32, attention factor √(1 + ln 32 / ln 4096).
        assertEquals(Math.sqrt(1 + Math.log(32) / Math.log(4096)), l.attentionFactor(), 1e-15);
        assertEquals(12, c.rotaryDim());
        assertTrue(c.tensors().stream().anyMatch(t -> t.name().endsWith("self_attn.qkv_proj.weight")));
        assertTrue(c.tensors().stream().noneMatch(t -> t.name().endsWith("self_attn.q_proj.weight")));
    }

    @Test
    void unknownArchitecturesAreRefusedWithTheSupportedList() {
        var e = assertThrows(ConfigException.class, () -> parse(base("falcon", "")));
        for (Family f : Family.values()) {
            assertTrue(e.getMessage().contains(f.modelType()), e.getMessage());
        }
        assertTrue(e.getMessage().contains("trust_remote_code"), e.getMessage());
        var remote = assertThrows(ConfigException.class, () -> parse(base("deepseek_v3",
                ", \"architectures\": [\"DeepseekV3ForCausalLM\"]")));
        assertTrue(remote.getMessage().contains("DeepseekV3ForCausalLM"), remote.getMessage());
        var head = assertThrows(ConfigException.class, () -> parse(base("llama",
                ", \"architectures\": [\"LlamaForSequenceClassification\"]")));
        assertTrue(head.getMessage().contains("LlamaForCausalLM"), head.getMessage());
        var act = assertThrows(ConfigException.class, () -> parse(base("gemma2", ", \"hidden_activation\": \"silu\"")));
        assertTrue(act.getMessage().contains("gelu_pytorch_tanh"), act.getMessage());
        var rope = assertThrows(ConfigException.class, () -> parse(base("llama",
                ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}")));
        assertTrue(rope.getMessage().contains("yarn") && rope.getMessage().contains("longrope"), rope.getMessage());
    }

    /** init-model and full fine-tuning write config.json from the record: it must read back as the same model. */
    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "qwen3", "mistral-nemo", "gemma2", "gemma3-text", "phi3", "llama-rope-params"})
    void writtenConfigReadsBackAsTheSameModel(String fixture) throws Exception {
        Path dir = Path.of(FamilyConfigTest.class.getResource("/fixtures/families/" + fixture + "/config.json").toURI())
                .getParent();
        LlamaConfig c = LlamaConfig.load(dir);
        ObjectNode written = c.toJson();
        assertEquals(c, LlamaConfig.parse(written, "written"));
        assertEquals(c.family().architecture(), written.get("architectures").get(0).asText());
    }

    @Test
    void theTensorListCountsEveryParameter() throws URISyntaxException {
        Path dir = Path.of(FamilyConfigTest.class.getResource("/fixtures/families/gemma2/config.json").toURI())
                .getParent();
        try (var checkpoint = dev.jtune.model.hf.HfCheckpoint.open(dir)) {
            LlamaConfig c = checkpoint.config();
            long stored = 0;
            for (TensorSpec t : c.tensors()) {
                assertTrue(checkpoint.contains(t.name()), t.name());
                org.junit.jupiter.api.Assertions.assertArrayEquals(t.shape(), checkpoint.shape(t.name()), t.name());
                stored += t.numel();
            }
            assertEquals(stored, c.parameterCount());
        }
    }
}
