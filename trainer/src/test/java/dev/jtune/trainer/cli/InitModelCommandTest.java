package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import dev.jtune.data.tokenizer.Tokenizer;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.hf.HfCheckpoint;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.trainer.score.Scorer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InitModelCommandTest {
    private static final PrintStream QUIET = new PrintStream(new ByteArrayOutputStream());

    @Test
    void tinyPresetIsACompleteLoadableCheckpoint(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("tiny");
        InitModelCommand.initModel(out, "tiny", null, 7, false, QUIET);
        try (var files = Files.list(out)) {
            Set<String> names = files.map(p -> p.getFileName().toString()).collect(Collectors.toSet());
            assertTrue(names.containsAll(Set.of("config.json", "model.safetensors", "tokenizer.json",
                    "tokenizer_config.json", "generation_config.json")), names.toString());
        }
        try (NDManager m = Torch.newManager();
                HfCheckpoint c = HfCheckpoint.open(out);
                Tokenizer tok = Tokenizer.load(out);
                LlamaModel model = LlamaModel.load(c.config(), c, Dtype.FP32, m)) {
            assertEquals(tok.vocabSize(), c.config().vocabSize());
            assertTrue(c.config().parameterCount() < 2_000_000, "tiny: " + c.config().parameterCount());
            // transformers' init: N(0, 0.02) linears, zero padding row, unit norms.
            float[] q = c.floats("model.layers.0.self_attn.q_proj.weight");
            double var = 0;
            for (float v : q) {
                var += v * v;
            }
            assertEquals(0.02, Math.sqrt(var / q.length), 0.001);
            float[] embed = c.floats("model.embed_tokens.weight");
            int e = c.config().hiddenSize();
            int pad = c.config().padTokenId();
            for (int j = 0; j < e; j++) {
                assertEquals(0f, embed[pad * e + j]);
            }
            assertTrue(embed[(pad + 1) * e] != 0f);
            for (float v : c.floats("model.norm.weight")) {
                assertEquals(1f, v);
            }
            // A random model is nearly uniform over the vocabulary: mean NLL ≈ ln(vocab).
            Scorer.Score s = new Scorer(model, tok, m).scoreText("The quick brown fox jumps over the lazy dog.");
            assertTrue(s.tokens() > 5);
            assertEquals(Math.log(c.config().vocabSize()), s.meanNll(), 0.1);
        }
    }

    @Test
    void sameSeedSameBitsOtherSeedOtherBits(@TempDir Path tmp) throws Exception {
        InitModelCommand.initModel(tmp.resolve("a"), "tiny", null, 3, false, QUIET);
        InitModelCommand.initModel(tmp.resolve("b"), "tiny", null, 3, false, QUIET);
        InitModelCommand.initModel(tmp.resolve("c"), "tiny", null, 4, false, QUIET);
        byte[] a = Files.readAllBytes(tmp.resolve("a/model.safetensors"));
        assertArrayEquals(a, Files.readAllBytes(tmp.resolve("b/model.safetensors")));
        assertTrue(!java.util.Arrays.equals(a, Files.readAllBytes(tmp.resolve("c/model.safetensors"))));
    }

    @Test
    void existingOutputNeedsForceAndFailedRunsLeaveNothing(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("m");
        InitModelCommand.initModel(out, "tiny", null, 1, false, QUIET);
        byte[] before = Files.readAllBytes(out.resolve("model.safetensors"));
        var e = assertThrows(IllegalArgumentException.class,
                () -> InitModelCommand.initModel(out, "tiny", null, 2, false, QUIET));
        assertTrue(e.getMessage().contains("--force"), e.getMessage());
        // A bad preset fails before anything is replaced, and no temp folder is left behind.
        assertThrows(IllegalArgumentException.class, () -> InitModelCommand.initModel(out, "huge", null, 2, true, QUIET));
        assertArrayEquals(before, Files.readAllBytes(out.resolve("model.safetensors")));
        try (var files = Files.list(tmp)) {
            assertEquals(1, files.count());
        }
        InitModelCommand.initModel(out, "tiny", null, 2, true, QUIET);
        assertTrue(!java.util.Arrays.equals(before, Files.readAllBytes(out.resolve("model.safetensors"))));
    }

    @Test
    void configFileTakesAnyLlamaArchitecture(@TempDir Path tmp) throws Exception {
        Path cfg = tmp.resolve("config.json");
        Files.writeString(cfg, """
                {"model_type": "mistral", "vocab_size": 600, "hidden_size": 64, "intermediate_size": 96,
                 "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 1,
                 "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                 "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
                 "tie_word_embeddings": true, "torch_dtype": "bfloat16", "bos_token_id": 1, "eos_token_id": 2}
                """);
        Path out = tmp.resolve("m");
        InitModelCommand.initModel(out, null, cfg, 0, false, QUIET);
        try (HfCheckpoint c = HfCheckpoint.open(out)) {
            assertEquals("mistral", c.config().modelType());
            assertEquals(Dtype.BF16, c.config().torchDtype());
            assertEquals(0, c.config().bosTokenId());
            assertTrue(!c.contains("lm_head.weight"), "tied models store no head");
            assertEquals("BF16", c.weights().info("model.norm.weight").dtype().name());
        }
        Files.writeString(cfg, Files.readString(cfg).replace("\"vocab_size\": 600", "\"vocab_size\": 100"));
        var e = assertThrows(IllegalArgumentException.class,
                () -> InitModelCommand.initModel(tmp.resolve("n"), null, cfg, 0, false, QUIET));
        assertTrue(e.getMessage().contains("vocab_size 100"), e.getMessage());
    }

    /** Each family's config.json as transformers wrote it (the model module's fixtures) makes a loadable checkpoint. */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"qwen2", "qwen3", "mistral-nemo", "gemma2", "gemma3-text",
            "gemma3-conditional", "phi3"})
    void configFileTakesEveryFamily(String family, @TempDir Path tmp) throws Exception {
        Path fixture = Path.of("..", "model", "src", "test", "resources", "fixtures", "families", family, "config.json");
        // The fixture's vocabulary (259 bytes) is smaller than init-model's own tokenizer: grow it, nothing else.
        var json = (com.fasterxml.jackson.databind.node.ObjectNode) new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(fixture.toFile());
        (json.has("text_config") ? (com.fasterxml.jackson.databind.node.ObjectNode) json.get("text_config") : json)
                .put("vocab_size", 600);
        Path cfg = tmp.resolve("config.json");
        Files.writeString(cfg, json.toString());
        Path out = tmp.resolve("m");
        InitModelCommand.initModel(out, null, cfg, 0, false, QUIET);
        dev.jtune.model.llama.LlamaConfig source = dev.jtune.model.llama.LlamaConfig.load(cfg).asCausalLm();
        try (HfCheckpoint c = HfCheckpoint.open(out); ai.djl.ndarray.NDManager m = dev.jtune.model.engine.Torch.newManager();
                var model = dev.jtune.model.llama.LlamaModel.load(c.config(), c, Dtype.FP32, m)) {
            // The same architecture, with the special ids of the tokenizer init-model pairs it with.
            assertEquals(source.withSpecialTokens(c.config().bosTokenId(), c.config().eosTokenIds(),
                    c.config().padTokenId()), c.config());
            for (var t : source.tensors()) {
                assertTrue(c.contains(t.name()), family + ": " + t.name());
            }
            var ids = m.create(new long[] {0, 5, 6, 7}, new ai.djl.ndarray.types.Shape(1, 4));
            float[] logits = model.forward(ids, dev.jtune.model.llama.LlamaModel.defaultPositions(ids), null)
                    .toFloatArray();
            for (float v : logits) {
                assertTrue(Float.isFinite(v), family + ": finite logits");
            }
        }
    }
}
