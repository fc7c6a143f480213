package dev.jtune.trainer.setup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.config.TrainConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code diffusion:} block as Axolotl 067b021's {@code DiffusionConfig} validates it, and the mask token as its
 * {@code resolve_mask_token_id} resolves it against a tokenizer.json (transformers' {@code vocab_size}: the model's
 * vocabulary without the added tokens).
 */
class DiffusionSettingsTest {
    private static final String HEAD = """
            base_model: m
            datasets:
              - path: d.jsonl
                type: alpaca
            """;
    private static final String PLUGIN = "plugins: [axolotl.integrations.diffusion.DiffusionPlugin]\n";

    private static TrainConfig config(String yaml) {
        return TrainConfig.parse(HEAD + yaml, Path.of("c.yml"));
    }

    private static List<String> problems(String yaml) {
        return DiffusionSettings.problems(config(yaml)).stream().map(p -> p.key() + ": " + p.message()).toList();
    }

    @Test
    void axolotlsExampleBlockIsValidAndDefaultsApply() {
        String block = PLUGIN + """
                diffusion:
                  noise_schedule: cosine
                  min_mask_ratio: 0.15
                  max_mask_ratio: 0.85
                  num_diffusion_steps: 128
                  eps: 5e-4
                  importance_weighting: true
                  mask_token_id: 128002
                  generate_samples: true
                  generation_interval: 250
                """;
        assertEquals(List.of(), problems(block));
        DiffusionSettings s = DiffusionSettings.from(config(block)).orElseThrow();
        assertEquals(5e-4, s.eps());
        assertEquals(OptionalInt.of(128002), s.maskTokenId());
        // The plugin alone: DiffusionConfig's defaults.
        DiffusionSettings d = DiffusionSettings.from(config(PLUGIN)).orElseThrow();
        assertEquals(new DiffusionSettings(1e-3, true, OptionalInt.empty(), Optional.empty()), d);
        assertEquals(Optional.empty(), DiffusionSettings.from(config("")));
    }

    @Test
    void everyProblemIsNamedAtItsKey() {
        List<String> p = problems(PLUGIN + """
                diffusion:
                  noise_schedule: sqrt
                  min_mask_ratio: 0.9
                  max_mask_ratio: 0.2
                  eps: 2
                  num_diffusion_steps: 0
                  importance_weighting: maybe
                  mask_token: 5
                """);
        assertEquals(6, p.size(), p.toString());
        assertTrue(p.get(0).startsWith("diffusion.noise_schedule: diffusion.noise_schedule: expected linear or cosine"),
                p.get(0));
        assertTrue(p.stream().anyMatch(x -> x.startsWith("diffusion.eps:") && x.contains("[0.0, 1.0]")), p.toString());
        assertTrue(p.stream().anyMatch(x -> x.startsWith("diffusion.mask_token:") && x.contains("not a key of")),
                p.toString());
        assertTrue(p.stream().anyMatch(x -> x.contains("min_mask_ratio (0.9) must be <= max_mask_ratio (0.2)")),
                p.toString());
        // The block without the plugin is not read by Axolotl: refused, not ignored.
        List<String> alone = problems("diffusion: {eps: 0.1}\n");
        assertEquals(1, alone.size());
        assertTrue(alone.get(0).contains("add plugins: [axolotl.integrations.diffusion.DiffusionPlugin]"), alone.get(0));
    }

    /** A byte-level tokenizer.json of {@code base} model tokens and the given added tokens ({@code id, content, special}). */
    private static Path tokenizer(Path dir, int base, String addedJson) throws IOException {
        StringBuilder vocab = new StringBuilder();
        for (int i = 0; i < base; i++) vocab.append(i == 0 ? "" : ",").append("\"t").append(i).append("\":").append(i);
        Files.writeString(dir.resolve("tokenizer.json"), "{\"added_tokens\": [" + addedJson + "], \"model\": {\"type\":"
                + " \"BPE\", \"vocab\": {" + vocab + "}, \"merges\": []}}");
        return dir;
    }

    @Test
    void maskTokenResolvesAsAxolotlResolvesIt(@TempDir Path dir) throws IOException {
        // Llama 3's layout in small: 10 model tokens, the reserved specials added after them.
        Path tok = tokenizer(dir, 10, "{\"id\": 10, \"content\": \"<|reserved_special_token_0|>\", \"special\": true},"
                + "{\"id\": 3, \"content\": \"<|in_vocab_special|>\", \"special\": true}");
        var none = Optional.<String>empty();
        // An id below the base vocabulary is used as given.
        assertEquals(new DiffusionSettings.MaskToken.Existing(7),
                new DiffusionSettings(1e-3, true, OptionalInt.of(7), none).resolve(tok));
        // An added token's id (Llama 3's 128002) is not below transformers' vocab_size: Axolotl adds its own token.
        assertEquals(new DiffusionSettings.MaskToken.Add("<|diffusion_mask|>"),
                new DiffusionSettings(1e-3, true, OptionalInt.of(10), none).resolve(tok));
        assertEquals(new DiffusionSettings.MaskToken.Add("<|diffusion_mask|>"),
                new DiffusionSettings(1e-3, true, OptionalInt.empty(), none).resolve(tok));
        // mask_token_str: an existing special token below vocab_size is used; otherwise it is the token added.
        assertEquals(new DiffusionSettings.MaskToken.Existing(3),
                new DiffusionSettings(1e-3, true, OptionalInt.empty(), Optional.of("<|in_vocab_special|>")).resolve(tok));
        assertEquals(new DiffusionSettings.MaskToken.Add("<|reserved_special_token_0|>"),
                new DiffusionSettings(1e-3, true, OptionalInt.empty(), Optional.of("<|reserved_special_token_0|>"))
                        .resolve(tok));
        assertEquals(new DiffusionSettings.MaskToken.Add("[M]"),
                new DiffusionSettings(1e-3, true, OptionalInt.of(99), Optional.of("[M]")).resolve(tok));
    }
}
