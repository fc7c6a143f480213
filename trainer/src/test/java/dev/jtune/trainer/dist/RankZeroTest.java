package dev.jtune.trainer.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Rank 0's work and its outcome, carried to every rank of a real ring (three ranks, threads of this JVM). */
class RankZeroTest {
    /**
     * Rank 0's work waits until the other ranks have returned from {@link RankZero#run}, which they must not do
     * before the work ends, so the wait only ends by its bound and the work then completes. Were the others let
     * through early, they would count down at once and see the work undone. The outcome depends only on RankZero,
     * never on timing: the bound merely ends the wait in the correct case.
     */
    @Test
    void onlyRankZeroWorksAndTheOthersWaitForIt() throws Exception {
        AtomicInteger runs = new AtomicInteger();
        AtomicInteger done = new AtomicInteger();
        CountDownLatch othersReturned = new CountDownLatch(2);
        List<Integer> seen = RingHarness.world(3, (pg, m) -> {
            RankZero.run(pg, "count", () -> {
                othersReturned.await(300, TimeUnit.MILLISECONDS);
                runs.incrementAndGet();
                done.set(1);
            });
            int atReturn = done.get();
            if (pg.rank() != 0) {
                othersReturned.countDown();
            }
            return atReturn;
        });
        assertEquals(1, runs.get(), "the work ran once");
        assertEquals(List.of(1, 1, 1), seen, "every rank returned after rank 0's work was done");
    }

    @Test
    void aFailureOnRankZeroStopsEveryRankWithItsOwnError() throws Exception {
        IOException disk = new IOException("No space left on device");
        List<Exception> errors = RingHarness.world(3, (pg, m) -> {
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
