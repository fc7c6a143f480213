package dev.jtune.trainer.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;

class ProcessGroupsTest {
    @Test
    void aWorldOfOneIsTheSingleGroupAndLargerWorldsWaitForTheBackend() {
        assertEquals(1, ProcessGroups.forEnvironment(DistEnv.SINGLE).worldSize());
        DistEnv two = DistEnv.from(Map.of("WORLD_SIZE", "2", "RANK", "1", "LOCAL_RANK", "1", "LOCAL_WORLD_SIZE", "2",
                "MASTER_PORT", "29500"));
        DistException e = assertThrows(DistException.class, () -> ProcessGroups.forEnvironment(two));
        assertTrue(e.getMessage().contains("not wired yet"), e.getMessage());
    }
}
