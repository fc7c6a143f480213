package dev.jtune.trainer.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Torch;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** The test backend against plain Java arithmetic: every collective, on 3 ranks. */
class ThreadProcessGroupTest {
    private static float[] values(int rank, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = rank * 10 + i * 0.5f;
        return v;
    }

    @Test
    void collectivesMatchJavaArithmetic() throws Exception {
        int w = 3;
        int n = 6;
        List<float[][]> out = ThreadProcessGroup.run(w, g -> {
            try (NDManager m = Torch.newManager()) {
                NDArray x = m.create(values(g.rank(), n));
                g.allReduceSum(x);
                NDArray gathered = g.allGather(m.create(values(g.rank(), 2)));
                NDArray scattered = g.reduceScatterSum(m.create(values(g.rank(), n)));
                NDArray b = m.create(values(g.rank(), n));
                g.broadcast(b, 1);
                g.barrier();
                return new float[][] {x.toFloatArray(), gathered.toFloatArray(), scattered.toFloatArray(),
                        b.toFloatArray()};
            }
        });
        float[] sum = new float[n];
        for (int r = 0; r < w; r++) {
            float[] v = values(r, n);
            for (int i = 0; i < n; i++) sum[i] += v[i];
        }
        float[] gathered = new float[2 * w];
        for (int r = 0; r < w; r++) System.arraycopy(values(r, 2), 0, gathered, 2 * r, 2);
        for (int r = 0; r < w; r++) {
            float[][] o = out.get(r);
            assertArrayEquals(sum, o[0], "all-reduce on rank " + r);
            assertArrayEquals(gathered, o[1], "all-gather on rank " + r);
            assertArrayEquals(java.util.Arrays.copyOfRange(sum, r * 2, r * 2 + 2), o[2], "reduce-scatter on rank " + r);
            assertArrayEquals(values(1, n), o[3], "broadcast on rank " + r);
        }
    }

    @Test
    void aFailingRankFailsTheRunInsteadOfHanging() {
        Exception e = assertThrows(IllegalStateException.class, () -> ThreadProcessGroup.run(2, g -> {
            if (g.rank() == 1) throw new IllegalStateException("boom");
            g.barrier();
            return null;
        }));
        assertTrue(e.getMessage().contains("boom"));
    }

    /**
     * Rank 0 reaches the barrier only after rank 1's thread has failed and ended (it joins that thread first). A
     * barrier that was merely reset by the failing rank would let rank 0 start a fresh generation and wait for a
     * rank that is gone until the timeout; it must fail at once instead, naming rank 1's error.
     */
    @Test
    void aRankThatArrivesAfterAnotherFailedFailsAtOnce() {
        AtomicReference<Thread> rank1 = new AtomicReference<>();
        CountDownLatch published = new CountDownLatch(1);
        AtomicReference<Throwable> seenByRank0 = new AtomicReference<>();
        Exception e = assertThrows(IllegalStateException.class, () -> ThreadProcessGroup.run(2, g -> {
            if (g.rank() == 1) {
                rank1.set(Thread.currentThread());
                published.countDown();
                throw new IllegalStateException("boom");
            }
            published.await();
            rank1.get().join(); // rank 1 has thrown, been recorded as failed, and ended
            try {
                g.barrier();
            } catch (RuntimeException late) {
                seenByRank0.set(late);
                throw late;
            }
            return null;
        }));
        assertTrue(e.getMessage().contains("boom"), e.getMessage());
        ThreadProcessGroup.PeerFailed late = assertInstanceOf(ThreadProcessGroup.PeerFailed.class, seenByRank0.get());
        assertTrue(late.getMessage().contains("rank 0: rank 1 failed") && late.getMessage().contains("boom"),
                late.getMessage());
    }

    /** Rank 1 fails only once rank 0 is blocked at the barrier; rank 0 is woken with rank 1's error. */
    @Test
    void aRankWaitingWhenAnotherFailsIsWokenWithItsError() {
        AtomicReference<Throwable> seenByRank0 = new AtomicReference<>();
        Exception e = assertThrows(IllegalStateException.class, () -> ThreadProcessGroup.run(2, g -> {
            if (g.rank() == 1) {
                while (((ThreadProcessGroup) g).waitingAtBarrier() < 1) {
                    Thread.onSpinWait(); // until rank 0 is inside the barrier: an order, not a duration
                }
                throw new IllegalStateException("boom while rank 0 waits");
            }
            try {
                g.barrier();
            } catch (RuntimeException woken) {
                seenByRank0.set(woken);
                throw woken;
            }
            return null;
        }));
        assertTrue(e.getMessage().contains("boom while rank 0 waits"), e.getMessage());
        assertInstanceOf(ThreadProcessGroup.PeerFailed.class, seenByRank0.get());
    }

    /** A rank that returns while another still calls a collective: that collective fails naming it, never hangs. */
    @Test
    void aRankThatLeavesEarlyFailsTheCollectiveItSkipped() {
        AtomicReference<Thread> rank1 = new AtomicReference<>();
        CountDownLatch published = new CountDownLatch(1);
        Exception e = assertThrows(ThreadProcessGroup.PeerFailed.class, () -> ThreadProcessGroup.run(2, g -> {
            if (g.rank() == 1) {
                rank1.set(Thread.currentThread());
                published.countDown();
                return "skipped the barrier";
            }
            published.await();
            rank1.get().join();
            g.barrier();
            return null;
        }));
        assertTrue(e.getMessage().contains("rank 0: rank 1 left the group"), e.getMessage());
    }

    /** Barriers that completed before a rank ended still count: the last one does not fail the others afterwards. */
    @Test
    void ranksThatFinishTogetherDoNotFailEachOther() throws Exception {
        for (int round = 0; round < 20; round++) {
            List<Integer> out = ThreadProcessGroup.run(3, g -> {
                for (int k = 0; k < 5; k++) g.barrier();
                return g.rank();
            });
            assertEquals(List.of(0, 1, 2), out);
        }
    }
}
