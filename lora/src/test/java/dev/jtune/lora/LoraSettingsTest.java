package dev.jtune.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.config.ConfigException;
import dev.jtune.data.config.TrainConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class LoraSettingsTest {
    private static final String HEAD = """
            base_model: ./m
            datasets:
              - path: d.jsonl
                type: completion
            """;

    private static Optional<LoraSettings> read(String yaml) {
        TrainConfig c = TrainConfig.parse(HEAD + yaml, Path.of("cfg.yml"));
        return LoraSettings.from(c.trainer(), c.source());
    }

    private static String error(String yaml) {
        return assertThrows(ConfigException.class, () -> read(yaml)).getMessage();
    }

    @Test
    void noAdapterIsFullFineTuning() {
        assertTrue(read("").isEmpty());
    }

    @Test
    void readsKeysWithDefaults() {
        LoraSettings s = read("adapter: lora\nlora_r: 8\nlora_alpha: 16\nlora_target_modules: [v_proj, q_proj]\n")
                .orElseThrow();
        assertEquals(LoraSettings.Adapter.LORA, s.adapter());
        assertEquals(8, s.r());
        assertEquals(16, s.alpha());
        assertEquals(0.0, s.dropout());
        assertEquals(List.of("q_proj", "v_proj"), s.targetModules());
        assertFalse(s.useRslora());
        assertEquals(List.of(), s.modulesToSave());
        assertEquals(2.0, s.scaling());
    }

    @Test
    void rsloraScalesBySqrtR() {
        LoraSettings s = read("adapter: lora\nlora_r: 16\nlora_alpha: 8\nlora_target_linear: true\n"
                + "peft_use_rslora: true\nlora_dropout: 0.05\n").orElseThrow();
        assertEquals(8 / Math.sqrt(16), s.scaling());
        assertEquals(0.05, s.dropout());
        LoraSettings plain = new LoraSettings(LoraSettings.Adapter.LORA, 16, 8, 0, List.of("q_proj"), false, List.of());
        assertEquals(0.5, plain.scaling());
    }

    @Test
    void targetLinearSelectsEveryDecoderProjectionButNotTheHead() {
        LoraSettings s = read("adapter: lora\nlora_r: 4\nlora_alpha: 4\nlora_target_linear: true\n").orElseThrow();
        assertEquals(List.of("down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"),
                s.targetModules());
        assertTrue(s.targets("model.layers.3.mlp.down_proj"));
        assertTrue(s.targets("model.layers.0.self_attn.q_proj"));
        assertFalse(s.targets("lm_head"));
        assertFalse(s.targets("model.layers.0.self_attn.xq_proj"), "PEFT matches whole path components");
    }

    @Test
    void aStringTargetIsARegexFullyMatchedAsPeftDoes() {
        LoraSettings s = read("adapter: lora\nlora_r: 4\nlora_alpha: 4\n"
                + "lora_target_modules: 'model.layers.[\\d]+.(mlp|self_attn).(up|down|gate|q|k|v|o)_proj'\n").orElseThrow();
        assertEquals(Optional.of("model.layers.[\\d]+.(mlp|self_attn).(up|down|gate|q|k|v|o)_proj"), s.targetRegex());
        assertEquals(List.of(), s.targetModules());
        assertTrue(s.targets("model.layers.12.self_attn.q_proj"));
        assertFalse(s.targets("lm_head"));
        assertFalse(s.targets("x.model.layers.1.mlp.up_proj"), "fullmatch: the whole name");
        assertEquals("model.layers.[\\d]+.(mlp|self_attn).(up|down|gate|q|k|v|o)_proj", s.peftTargetModules());
        // A list keeps suffix matching; a one-item list is not a regex.
        LoraSettings list = read("adapter: lora\nlora_r: 4\nlora_alpha: 4\nlora_target_modules: [q_proj]\n")
                .orElseThrow();
        assertTrue(list.targetRegex().isEmpty());
        assertTrue(list.targets("model.layers.0.self_attn.q_proj"));
        assertTrue(error("adapter: lora\nlora_r: 4\nlora_alpha: 4\nlora_target_modules: 'a(?#x)'\n")
                .contains("lora_target_modules: the regular expression 'a(?#x)' has a (?#...) comment"));
        assertTrue(error("adapter: lora\nlora_r: 4\nlora_alpha: 4\nlora_target_linear: true\n"
                + "lora_target_modules: '.*q_proj'\n").contains("give one of them"));
    }

    @Test
    void clearErrors() {
        assertTrue(error("adapter: lora\nlora_r: 8\nlora_alpha: 16\n")
                .contains("lora_target_modules (e.g. [q_proj, v_proj]) or lora_target_linear: true"));
        assertTrue(error("adapter: lora\nlora_alpha: 16\nlora_target_linear: true\n").contains("needs lora_r"));
        assertTrue(error("adapter: lora\nlora_r: 8\nlora_target_linear: true\n").contains("needs lora_alpha"));
        assertTrue(error("adapter: lora\nlora_r: 8\nlora_alpha: 8\nlora_target_modules: [q_prj]\n")
                .contains("did you mean 'q_proj'"));
        assertTrue(error("adapter: lora\nlora_r: 8\nlora_alpha: 8\nlora_target_linear: true\nlora_fan_in_fan_out: true\n")
                .contains("lora_fan_in_fan_out"));
        assertTrue(error("adapter: qlora\nlora_r: 8\nlora_alpha: 8\nlora_target_linear: true\n")
                .contains("load_in_4bit: true"));
        assertTrue(error("lora_r: 8\n").contains("lora_r is set but adapter is not"));
        assertTrue(error("adapter: lora\nlora_r: 8\nlora_alpha: 8\nlora_target_linear: true\nlora_dropout: 1.0\n")
                .contains("lora_dropout must be in [0, 1)"));
        assertTrue(error("adapter: lora\nlora_r: 0\nlora_alpha: 8\nlora_target_linear: true\n")
                .contains("lora_r must be a positive integer"));
        assertTrue(error("adapter: lora\nlora_r: 8\nlora_alpha: 8\nlora_target_linear: true\n"
                + "lora_modules_to_save: [embed]\n").contains("lora_modules_to_save: 'embed'"));
        // Every problem at once, each naming its key.
        List<String> all = assertThrows(ConfigException.class, () -> read("adapter: qlora\nlora_dropout: 2\n"
                + "lora_target_modules: [q_proj, q_prj]\nlora_modules_to_save: [embed]\n")).problems().stream()
                .map(ConfigException::problem).toList();
        assertEquals(6, all.size(), all.toString());
        for (String start : List.of("adapter: qlora requires load_in_4bit", "adapter: qlora needs lora_r",
                "adapter: qlora needs lora_alpha", "lora_dropout must be in [0, 1)", "lora_target_modules[1]: 'q_prj'",
                "lora_modules_to_save: 'embed'")) {
            assertTrue(all.stream().anyMatch(p -> p.startsWith(start)), start + " in " + all);
        }
    }

    @Test
    void qloraWithFourBit() {
        LoraSettings s = read("adapter: qlora\nload_in_4bit: true\nlora_r: 8\nlora_alpha: 16\nlora_target_linear: true\n"
                + "lora_modules_to_save: [embed_tokens, lm_head]\n").orElseThrow();
        assertEquals(LoraSettings.Adapter.QLORA, s.adapter());
        assertEquals(List.of("embed_tokens", "lm_head"), s.modulesToSave());
        assertTrue(s.saves("model.embed_tokens"));
        assertTrue(s.saves("lm_head"));
    }
}
