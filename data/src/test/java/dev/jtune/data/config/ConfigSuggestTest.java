package dev.jtune.data.config;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The "did you mean" helper, and YAML forms that reach it or that it must not be fooled by. */
class ConfigSuggestTest {
    @Test
    void editDistanceCountsSwapsAsOne() {
        assertEquals(0, Suggest.editDistance("seed", "seed"));
        assertEquals(1, Suggest.editDistance("alpacca", "alpaca"));
        assertEquals(1, Suggest.editDistance("pakcing", "packing"));
        assertEquals(3, Suggest.editDistance("sequence_length", "sequence_len"));
        assertEquals(4, Suggest.editDistance("", "lora"));
    }

    @Test
    void closestPrefersCaseThenDistanceThenPrefix() {
        List<String> keys = List.of("lora_r", "lora_alpha", "seed", "sequence_len", "Seed_x");
        assertEquals(Optional.of("seed"), Suggest.closest("SEED", keys));
        assertEquals(Optional.of("lora_r"), Suggest.closest("lora_rr", keys));
        assertEquals(Optional.of("sequence_len"), Suggest.closest("sequence_length", keys));
        assertEquals(Optional.empty(), Suggest.closest("xyz", keys));
        // Two letters are two edits from any two-letter word: no hint.
        assertEquals(Optional.empty(), Suggest.closest("ab", List.of("lr")));
        assertEquals(Optional.of("lr"), Suggest.closest("LR", List.of("lr")));
        // Ties go to the earlier candidate.
        assertEquals(Optional.of("cat"), Suggest.closest("bat", List.of("cat", "hat")));
        assertEquals(" (did you mean 'seed'?)", Suggest.didYouMean("sed", keys));
        assertEquals("", Suggest.didYouMean("completely_different", keys));
    }

    @Test
    void yamlIntegerFormsReadAsPyYamlReadsThem() {
        Path file = Path.of("x.yml");
        assertEquals(10, TrainConfig.parse("base_model: m\nseed: 012\n", file).seed());
        assertEquals(255, TrainConfig.parse("base_model: m\nseed: 0xff\n", file).seed());
        assertEquals(5, TrainConfig.parse("base_model: m\nseed: 0b101\n", file).seed());
        assertEquals(-1000, TrainConfig.parse("base_model: m\nseed: -1_000\n", file).seed());
        assertEquals(true, TrainConfig.parse("base_model: m\nsample_packing: yes\n", file).samplePacking());
        assertEquals(false, TrainConfig.parse("base_model: m\nsample_packing: Off\n", file).samplePacking());
    }

    @Test
    void mergeKeysAreRefusedByName() {
        assertEquals("x.yml:6:5: datasets[1]: YAML merge keys ('<<') are not supported; write the keys out",
                org.junit.jupiter.api.Assertions.assertThrows(ConfigException.class, () -> TrainConfig.parse(
                        """
                        base_model: m
                        datasets:
                          - &d
                            path: a
                            type: completion
                          - <<: *d
                            split: train
                        """, Path.of("x.yml"))).problems().get(0).getMessage());
    }
}
