package dev.jtune.trainer.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The ring process group as threads of one JVM: worlds of 1 to 4, against references computed in plain Java. */
class RingProcessGroupTest {
    private static final int[] COUNTS = {0, 1, 7, 1_000_003};

    /** The sum in double, the independent reference. */
    private static double[] doubleSum(int world, int count, long seed) {
        double[] s = new double[count];
        for (int r = 0; r < world; r++) {
            float[] x = RingHarness.input(r, count, seed);
            for (int i = 0; i < count; i++) {
                s[i] += x[i];
            }
        }
        return s;
    }

    /**
     * The order the ring documents: element i lies in chunk c = the c with i in [count*c/n, count*(c+1)/n), summed as
     * the fp32 left fold over ranks c+1, c+2, ..., c+n (mod n).
     */
    private static float[] ringOrderSum(int world, int count, long seed) {
        float[][] x = new float[world][];
        for (int r = 0; r < world; r++) {
            x[r] = RingHarness.input(r, count, seed);
        }
        float[] s = new float[count];
        for (int c = 0; c < world; c++) {
            for (long i = (long) count * c / world; i < (long) count * (c + 1) / world; i++) {
                float acc = x[(c + 1) % world][(int) i];
                for (int k = 2; k <= world; k++) {
                    acc += x[(c + k) % world][(int) i];
                }
                s[(int) i] = acc;
            }
        }
        return s;
    }

    @Test
    void allReduceSumMatchesReferenceAndIsBitIdenticalAcrossRanks() throws Exception {
        for (int world = 1; world <= 4; world++) {
            int n = world;
            List<List<float[]>> results = RingHarness.world(n, (pg, m) -> {
                List<float[]> out = new ArrayList<>();
                for (int count : COUNTS) {
                    NDArray x = m.create(RingHarness.input(pg.rank(), count, count));
                    NDArray same = x; // the reduction is in place: the same array object holds the sum
                    pg.allReduceSum(x);
                    out.add(same.toFloatArray());
                }
                return out;
            });
            for (int ci = 0; ci < COUNTS.length; ci++) {
                int count = COUNTS[ci];
                double[] ref = doubleSum(n, count, count);
                double[] scale = new double[count];
                for (int r = 0; r < n; r++) {
                    float[] x = RingHarness.input(r, count, count);
                    for (int i = 0; i < count; i++) {
                        scale[i] += Math.abs(x[i]);
                    }
                }
                float[] got = results.get(0).get(ci);
                assertEquals(count, got.length);
                for (int i = 0; i < count; i++) {
                    // n-1 fp32 additions, each off by at most half an ulp of a partial sum bounded by sum |x|
                    assertEquals(ref[i], got[i], n * 0x1p-24 * scale[i], "world " + n + " count " + count + " at " + i);
                }
                assertArrayEquals(ringOrderSum(n, count, count), got, 0f, "documented summation order");
                for (int r = 1; r < n; r++) {
                    assertArrayEquals(got, results.get(r).get(ci), 0f, "rank " + r + " differs from rank 0 (bitwise)");
                }
            }
        }
    }

    @Test
    void allReduceInt64AndFloat64AreExact() throws Exception {
        List<long[]> longs = RingHarness.world(3, (pg, m) -> {
            NDArray x = m.create(RingHarness.inputLong(pg.rank(), 1001, 5));
            pg.allReduceSum(x);
            NDArray d = m.create(new double[] {pg.rank() + 0.5, -pg.rank()});
            pg.allReduceSum(d);
            assertArrayEquals(new double[] {4.5, -3}, d.toDoubleArray(), 0);
            return x.toLongArray();
        });
        long[] ref = new long[1001];
        for (int r = 0; r < 3; r++) {
            long[] x = RingHarness.inputLong(r, 1001, 5);
            for (int i = 0; i < ref.length; i++) {
                ref[i] += x[i];
            }
        }
        for (long[] got : longs) {
            assertArrayEquals(ref, got);
        }
    }

    @Test
    void allGatherConcatenatesInRankOrder() throws Exception {
        for (int world = 1; world <= 4; world++) {
            int n = world;
            RingHarness.world(n, (pg, m) -> {
                for (int rows : new int[] {0, 1, 5}) {
                    float[] mine = RingHarness.input(pg.rank(), rows * 3, rows);
                    NDArray x = m.create(mine, new Shape(rows, 3));
                    try (NDArray all = pg.allGather(x)) {
                        assertEquals(new Shape((long) n * rows, 3), all.getShape());
                        float[] got = all.toFloatArray();
                        for (int r = 0; r < n; r++) {
                            float[] theirs = RingHarness.input(r, rows * 3, rows);
                            for (int i = 0; i < theirs.length; i++) {
                                assertEquals(theirs[i], got[r * rows * 3 + i], 0f);
                            }
                        }
                    }
                }
                // a scalar becomes a vector of one element per rank; int64 moves unchanged
                NDArray scalar = m.create((long) (100 + pg.rank()));
                long[] want = new long[n];
                for (int r = 0; r < n; r++) {
                    want[r] = 100 + r;
                }
                assertArrayEquals(want, pg.allGather(scalar).toLongArray());
                return null;
            });
        }
    }

    @Test
    void reduceScatterSumGivesEachRankItsChunkOfTheSum() throws Exception {
        for (int world = 1; world <= 4; world++) {
            int n = world;
            for (int rows : new int[] {0, 1, 7}) {
                int count = n * rows * 2;
                List<float[]> got = RingHarness.world(n, (pg, m) -> {
                    float[] mine = RingHarness.input(pg.rank(), count, 40 + rows);
                    NDArray x = m.create(mine, new Shape((long) n * rows, 2));
                    NDArray chunk = pg.reduceScatterSum(x);
                    assertEquals(new Shape(rows, 2), chunk.getShape());
                    assertArrayEquals(mine, x.toFloatArray(), 0f, "the input is left as it was");
                    return chunk.toFloatArray();
                });
                double[] ref = doubleSum(n, count, 40 + rows);
                for (int r = 0; r < n; r++) {
                    for (int i = 0; i < rows * 2; i++) {
                        assertEquals(ref[r * rows * 2 + i], got.get(r)[i], 1e-5 * (1 + Math.abs(ref[r * rows * 2 + i])));
                    }
                }
            }
        }
    }

    @Test
    void broadcastFromEveryRootInPlaceIncludingViews() throws Exception {
        for (int world = 1; world <= 4; world++) {
            int n = world;
            RingHarness.world(n, (pg, m) -> {
                for (int root = 0; root < n; root++) {
                    for (int count : new int[] {0, 7, 300_001}) {
                        NDArray x = m.create(RingHarness.input(pg.rank(), count, count + root));
                        pg.broadcast(x, root);
                        assertArrayEquals(RingHarness.input(root, count, count + root), x.toFloatArray(), 0f);
                    }
                    // a non-contiguous view: the values land in the storage the view shares with its base
                    NDArray base = m.create(RingHarness.input(pg.rank(), 12, 99), new Shape(3, 4));
                    NDArray view = base.transpose();
                    pg.broadcast(view, root);
                    assertArrayEquals(RingHarness.input(root, 12, 99), base.toFloatArray(), 0f, "base of the view");
                }
                assertThrows(IllegalArgumentException.class, () -> pg.broadcast(m.create(new float[1]), n));
                return null;
            });
        }
    }

    /**
     * Rank 2 arrives last: it waits until ranks 0 and 1 have both left the barrier, which a correct barrier never
     * lets them do, so the wait only ends by its bound, and then rank 2 arrives. A barrier that released them early
     * lets them count down at once, and they see a rank that has not arrived. Which outcome happens depends only
     * on the barrier, never on timing: the bound merely ends the wait in the correct case.
     */
    @Test
    void barrierReleasesNobodyBeforeTheLastArrives() throws Exception {
        int n = 3;
        AtomicInteger arrived = new AtomicInteger();
        CountDownLatch othersLeft = new CountDownLatch(n - 1);
        List<Integer> seen = RingHarness.world(n, (pg, m) -> {
            if (pg.rank() == n - 1) {
                othersLeft.await(300, TimeUnit.MILLISECONDS);
            }
            arrived.incrementAndGet();
            pg.barrier();
            int atRelease = arrived.get();
            if (pg.rank() != n - 1) {
                othersLeft.countDown();
            }
            return atRelease;
        });
        assertEquals(List.of(n, n, n), seen, "ranks left the barrier before every rank had arrived");
    }

    @Test
    void aPeerThatNeverArrivesIsNamedWithinTheTimeout() {
        long t0 = System.nanoTime();
        DistException e = assertThrows(DistException.class, () -> RingProcessGroup.create(
                new DistEnv(0, 0, 2, 2, "127.0.0.1", 0), new MemoryStore(), "lonely", Duration.ofSeconds(1)));
        double s = (System.nanoTime() - t0) / 1e9;
        assertTrue(e.getMessage().contains("rank 1 did not arrive within PT1S"), e.getMessage());
        // It waited the timeout out (no upper bound: a busy machine may take longer to report it, which is no error).
        assertTrue(s >= 0.9, "took " + s + " s");
    }

    /**
     * The group timeout is only a hang guard here: what shows that the failure travelled instead of being waited
     * out is what each rank was told (a closed connection, not a stalled collective).
     */
    @Test
    void aPeerThatLeavesMidRunFailsTheOthersInsteadOfHanging() throws Exception {
        int n = 3;
        List<String> errors = RingHarness.world(n, (pg, m) -> {
            if (pg.rank() == 2) {
                pg.close(); // leaves: its sockets close while the others are in an all-reduce
                return "left";
            }
            try {
                pg.allReduceSum(m.create(new float[2_000_000]));
                return "no error";
            } catch (DistException e) {
                pg.close(); // as a dying process would; the failure then reaches the rank waiting on this one
                return e.getMessage();
            }
        });
        assertTrue(errors.get(0).contains("rank 2 closed its connection"), errors.get(0));
        assertTrue(!errors.get(1).equals("no error"), errors.get(1));
        for (int r = 0; r < 2; r++) {
            assertFalse(errors.get(r).contains("is it stuck"), "waited out: " + errors.get(r));
        }
    }

    @Test
    void aStuckPeerTimesOutNamingIt() throws Exception {
        CountDownLatch done = new CountDownLatch(1);
        List<String> out = RingHarness.world(2, Duration.ofSeconds(1), (pg, m) -> {
            if (pg.rank() == 1) {
                done.await(); // alive and connected, but never calls the collective
                return "";
            }
            try {
                DistException e = assertThrows(DistException.class, () -> pg.allReduceSum(m.create(new float[10])));
                DistException again = assertThrows(DistException.class, pg::barrier);
                assertTrue(again.getMessage().contains("failed earlier"), again.getMessage());
                return e.getMessage();
            } finally {
                done.countDown();
            }
        });
        assertTrue(out.get(0).contains("rank 1 sent nothing to rank 0"), out.get(0));
    }

    @Test
    void mismatchedCollectivesAreReported() throws Exception {
        List<String> out = RingHarness.world(2, (pg, m) -> {
            try {
                if (pg.rank() == 0) {
                    pg.allReduceSum(m.create(new float[10]));
                } else {
                    pg.broadcast(m.create(new float[10]), 0);
                }
                return "no error";
            } catch (DistException e) {
                return e.getMessage();
            }
        });
        for (String s : out) {
            assertTrue(s.contains("collective mismatch"), s);
        }
    }

    @Test
    void unsupportedSumTypesAndBadShapesAreRefused() throws Exception {
        RingHarness.world(2, (pg, m) -> {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> pg.allReduceSum(m.create(new byte[4])));
            assertTrue(e.getMessage().contains("float32"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> pg.reduceScatterSum(m.create(new float[3])));
            pg.barrier(); // refusals happen before any traffic: the group still works
            return null;
        });
    }
}
