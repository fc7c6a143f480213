package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.config.TrainerSettings;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Axolotl's FSDP keys: what turns FSDP on, what is accepted, what is refused with the key named. */
class FsdpTest {
    private static boolean enabled(Map<String, Object> values) {
        return Fsdp.enabled(new TrainerSettings(values));
    }

    @Test
    void fullShardListOrConfigTurnsItOn() {
        assertFalse(enabled(Map.of()));
        assertTrue(enabled(Map.of("fsdp", List.of("full_shard", "auto_wrap"))));
        assertTrue(enabled(Map.of("fsdp", List.of("full_shard auto_wrap"))));
        assertTrue(enabled(Map.of("fsdp_config", Map.of("fsdp_sharding_strategy", "FULL_SHARD",
                "fsdp_transformer_layer_cls_to_wrap", "LlamaDecoderLayer", "fsdp_offload_params", false,
                "fsdp_state_dict_type", "FULL_STATE_DICT", "fsdp_use_orig_params", false))));
        assertTrue(enabled(Map.of("fsdp_config", Map.of("version", 2, "reshard_after_forward", true,
                "auto_wrap_policy", "TRANSFORMER_BASED_WRAP", "cpu_ram_efficient_loading", true))));
    }

    @Test
    void unsupportedStrategiesAreErrorsNamingTheKey() {
        var e = assertThrows(IllegalArgumentException.class, () -> enabled(Map.of("fsdp", List.of("shard_grad_op"))));
        assertTrue(e.getMessage().contains("fsdp: 'shard_grad_op'"), e.getMessage());
        assertTrue(enabled(Map.of("fsdp_config", Map.of("fsdp_offload_params", true))), "offload: an equivalent");
        e = assertThrows(IllegalArgumentException.class,
                () -> enabled(Map.of("fsdp_config", Map.of("fsdp_offload_params", "cpu"))));
        assertTrue(e.getMessage().contains("fsdp_config.fsdp_offload_params: 'cpu'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> enabled(Map.of("fsdp_config", Map.of("reshard_after_forward", false))));
        assertTrue(e.getMessage().contains("reshard_after_forward"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> enabled(Map.of("fsdp_config", Map.of("sharding_stratgy", "FULL_SHARD"))));
        assertTrue(e.getMessage().contains("did you mean 'sharding_strategy'"), e.getMessage());
    }
}
