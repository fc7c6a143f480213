package dev.jtune.trainer.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Rank 0's work and its outcome, carried to every rank of a real ring (three ranks, threads of this JVM). */
class RankZeroTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    @Test
    void onlyRankZeroWorksAndTheOthersWaitForIt() throws Exception {
        AtomicInteger runs = new AtomicInteger();
        AtomicInteger done = new AtomicInteger();
        List<Integer> seen = RingHarness.world(3, TIMEOUT, (pg, m) -> {
            RankZero.run(pg, "count", () -> {
                Thread.sleep(300); // the others must not get past before this ends
                runs.incrementAndGet();
                done.set(1);
            });
            return done.get();
        });
        assertEquals(1, runs.get(), "the work ran once");
        assertEquals(List.of(1, 1, 1), seen, "every rank returned after rank 0's work was done");
    }

    @Test
    void aFailureOnRankZeroStopsEveryRankWithItsOwnError() throws Exception {
        IOException disk = new IOException("No space left on device");
        List<Exception> errors = RingHarness.world(3, TIMEOUT, (pg, m) -> {
            Exception caught = null;
            try {
                RankZero.run(pg, "write checkpoint-4", () -> {
                    throw disk;
                });
            } catch (Exception e) {
                caught = e;
            }
            pg.barrier(); // the group still works: the failure travelled as data, not as a broken connection
            return caught;
        });
        assertSame(disk, errors.get(0), "rank 0 keeps its own exception");
        for (int r = 1; r < 3; r++) {
            DistException e = assertInstanceOf(DistException.class, errors.get(r));
            assertTrue(e.getMessage().contains("rank 0 failed to write checkpoint-4")
                    && e.getMessage().contains("rank " + r + " stops too"), e.getMessage());
        }
    }
}
