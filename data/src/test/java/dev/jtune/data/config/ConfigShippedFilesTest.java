package dev.jtune.data.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** Every YAML file shipped in configs/ reads without error, and the two flagship ones say what they promise. */
class ConfigShippedFilesTest {
    static final Path CONFIGS = Path.of("..", "configs");

    @Test
    void everyShippedConfigLoads() throws IOException {
        List<Path> files;
        try (Stream<Path> s = Files.list(CONFIGS)) {
            files = s.filter(p -> p.toString().endsWith(".yml")).sorted().toList();
        }
        assertFalse(files.isEmpty(), "no configs in " + CONFIGS.toAbsolutePath());
        for (Path f : files) {
            TrainConfig c = TrainConfig.load(f);
            assertFalse(c.datasets().isEmpty(), f + " names no dataset");
        }
    }

    @Test
    void qloraLlama7bIsTheRealThing() {
        TrainConfig c = TrainConfig.load(CONFIGS.resolve("qlora-llama7b.yml"));
        TrainerSettings t = c.trainer();
        assertEquals(2048, c.sequenceLen());
        assertTrue(c.samplePacking());
        assertEquals("qlora", t.string("adapter").orElseThrow());
        assertTrue(t.bool("load_in_4bit").orElseThrow());
        assertEquals(16, t.integer("lora_r").orElseThrow());
        assertTrue(t.bool("lora_target_linear").orElseThrow());
        assertTrue(t.bool("flash_attention").orElseThrow());
        assertEquals(Boolean.TRUE, t.value("bf16").orElseThrow());
        assertEquals(Boolean.TRUE, t.value("gradient_checkpointing").orElseThrow());
    }

    @Test
    void loraLlama3UsesTheModelsChatTemplate() {
        TrainConfig c = TrainConfig.load(CONFIGS.resolve("lora-llama3-8b.yml"));
        assertEquals("tokenizer_default", c.chatTemplate().orElseThrow());
        assertEquals(DatasetType.CHAT_TEMPLATE, c.datasets().get(0).type());
        assertEquals("lora", c.trainer().string("adapter").orElseThrow());
    }
}
