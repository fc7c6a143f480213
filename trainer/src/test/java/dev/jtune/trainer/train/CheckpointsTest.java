package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointsTest {
    private static void complete(Path dir) throws IOException {
        Files.writeString(dir.resolve("weights.bin"), "w");
        Files.writeString(dir.resolve(Checkpoints.TRAINER_STATE), "{}");
    }

    private static List<String> names(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void aFailedWriteLeavesNothingThatLooksLikeACheckpoint(@TempDir Path out) throws IOException {
        Checkpoints.write(out, 2, CheckpointsTest::complete);
        assertThrows(IOException.class, () -> Checkpoints.write(out, 4, dir -> {
            Files.writeString(dir.resolve("weights.bin"), "half");
            throw new IOException("disk full");
        }));
        assertThrows(IllegalStateException.class, () -> Checkpoints.write(out, 6,
                dir -> Files.writeString(dir.resolve("weights.bin"), "no state")));
        assertEquals(List.of("checkpoint-2"), names(out));
        assertEquals(out.resolve("checkpoint-2"), Checkpoints.latest(out).orElseThrow());
    }

    @Test
    void autoTakesTheNewestCompleteOneAndIgnoresCrashLeftovers(@TempDir Path out) throws IOException {
        Checkpoints.write(out, 3, CheckpointsTest::complete);
        Checkpoints.write(out, 10, CheckpointsTest::complete);
        // A crash mid-save: a temp folder (even one holding a state file) and a folder without state.
        Path tmp = Files.createDirectories(out.resolve("checkpoint-12.tmp-123"));
        complete(tmp);
        Files.createDirectories(out.resolve("checkpoint-11"));
        Files.createDirectories(out.resolve("checkpoint-9.deleting-77"));
        assertEquals(out.resolve("checkpoint-10"), Checkpoints.resolve("auto", out).orElseThrow());
        Checkpoints.cleanStale(out);
        assertEquals(List.of("checkpoint-10", "checkpoint-11", "checkpoint-3"), names(out));
        var e = assertThrows(IllegalArgumentException.class,
                () -> Checkpoints.resolve(out.resolve("checkpoint-11").toString(), out));
        assertTrue(e.getMessage().contains("not a complete checkpoint"), e.getMessage());
        assertTrue(Checkpoints.resolve("auto", out.resolve("nothing-here")).isEmpty());
    }

    @Test
    void pruneKeepsTheNewest(@TempDir Path out) throws IOException {
        for (long s : new long[] {2, 4, 6, 8}) Checkpoints.write(out, s, CheckpointsTest::complete);
        Checkpoints.prune(out, 2);
        assertEquals(List.of("checkpoint-6", "checkpoint-8"), names(out));
        Checkpoints.write(out, 8, dir -> {
            complete(dir);
            Files.writeString(dir.resolve("again"), "x");
        });
        assertTrue(Files.exists(out.resolve("checkpoint-8").resolve("again")));
    }

    /** transformers' rotation with a best checkpoint (sort_checkpoints + _rotate_checkpoints): the best is kept. */
    @Test
    void rotationKeepsTheBestCheckpoint(@TempDir Path out) throws IOException {
        for (int step : new int[] {2, 4, 6, 8}) {
            Files.createDirectories(out.resolve("checkpoint-" + step));
            Files.writeString(out.resolve("checkpoint-" + step).resolve(Checkpoints.TRAINER_STATE), "{}");
        }
        // Limit 2, best checkpoint-4: [2, 6, 4, 8] after moving the best next to last; the first two go.
        Checkpoints.prune(out, 2, out.resolve("checkpoint-4"));
        assertEquals(List.of("checkpoint-4", "checkpoint-8"), names(out));
        // Limit 1 while the best is not the newest: 2 are kept.
        Checkpoints.prune(out, 1, out.resolve("checkpoint-4"));
        assertEquals(List.of("checkpoint-4", "checkpoint-8"), names(out));
        // The best is the newest: the limit as given.
        Checkpoints.prune(out, 1, out.resolve("checkpoint-8"));
        assertEquals(List.of("checkpoint-8"), names(out));
    }
}
