package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * {@link Trainer#keepFreedPagesWhenSmall}: the decay is left as MALLOC_CONF set it for a user's own MALLOC_CONF, a run
 * resident in 5% or more of the machine's memory, unknown sizes, and a process jemalloc does not serve (the tests run
 * on glibc's malloc, where nothing is changed whatever the sizes).
 */
class FreedPageDecayTest {
    private static final long GIB = 1L << 30;

    /** The condition alone, where no allocator stands in the way of a broken guard. */
    @Test
    void aSmallRunIsOneUnder5PercentOfKnownMemoryOnJtunesMallocConf() {
        String jtune = Trainer.JTUNE_MALLOC_CONF;
        assertTrue(Trainer.smallRunOnJtunesMallocConf(jtune, GIB / 2, 24 * GIB));
        assertTrue(Trainer.smallRunOnJtunesMallocConf(jtune, GIB - 1, 20 * GIB));
        assertFalse(Trainer.smallRunOnJtunesMallocConf(jtune, GIB, 20 * GIB)); // exactly 5%
        assertFalse(Trainer.smallRunOnJtunesMallocConf(jtune, 2 * GIB, 24 * GIB));
        assertFalse(Trainer.smallRunOnJtunesMallocConf("dirty_decay_ms:1000", GIB / 2, 24 * GIB));
        assertFalse(Trainer.smallRunOnJtunesMallocConf(null, GIB / 2, 24 * GIB));
        assertFalse(Trainer.smallRunOnJtunesMallocConf(jtune, 0, 24 * GIB));
        assertFalse(Trainer.smallRunOnJtunesMallocConf(jtune, GIB / 2, 0));
    }

    @Test
    void leavesTheDecayAloneOutsideJtunesOwnSettingOrForLargeRuns() {
        assertEquals(Optional.empty(), Trainer.keepFreedPagesWhenSmall("dirty_decay_ms:1000", GIB / 2, 24 * GIB));
        assertEquals(Optional.empty(), Trainer.keepFreedPagesWhenSmall(null, GIB / 2, 24 * GIB));
        assertEquals(Optional.empty(), Trainer.keepFreedPagesWhenSmall(Trainer.JTUNE_MALLOC_CONF, 2 * GIB, 24 * GIB));
        assertEquals(Optional.empty(), Trainer.keepFreedPagesWhenSmall(Trainer.JTUNE_MALLOC_CONF, 0, 24 * GIB));
        assertEquals(Optional.empty(), Trainer.keepFreedPagesWhenSmall(Trainer.JTUNE_MALLOC_CONF, GIB / 2, 0));
    }

    /** The rule recognises jtune's own MALLOC_CONF by the string tools/jemalloc.sh exports. */
    @Test
    void knowsTheMallocConfThatToolsJemallocExports() throws java.io.IOException {
        String script = java.nio.file.Files.readString(java.nio.file.Path.of("..", "tools", "jemalloc.sh"));
        assertTrue(script.contains("MALLOC_CONF=\"${MALLOC_CONF:-" + Trainer.JTUNE_MALLOC_CONF + "}\""),
                "tools/jemalloc.sh does not export " + Trainer.JTUNE_MALLOC_CONF);
    }

    @Test
    void changesNothingWhereJemallocDoesNotServeTheProcess() {
        boolean jemalloc = dev.jtune.model.engine.Torch.nativeAllocator().equals("jemalloc");
        Optional<String> line = Trainer.keepFreedPagesWhenSmall(Trainer.JTUNE_MALLOC_CONF, GIB / 2, 24 * GIB);
        assertEquals(jemalloc, line.isPresent(), "line " + line);
        line.ifPresent(l -> assertTrue(l.contains("0.50 GiB of the machine's 24.0 GiB"), l));
    }
}
