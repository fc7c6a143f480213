package dev.jtune.trainer.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * {@link Ring} on raw memory over both transports (TCP only, and same-host shared memory for large messages): every
 * element type through the add path against a plain-Java fold in the documented order, lengths that are odd, not a
 * multiple of the slot, and on both sides of the shared-memory threshold; byte-moving collectives; mixed links.
 */
class RingTransportTest {
    private static final AtomicInteger JOBS = new AtomicInteger();

    interface Body<T> {
        T run(Ring ring, Arena arena) throws Exception;
    }

    /** A world of rings as threads; {@code shm[r]} is rank r's shared-memory setting. Rethrows the first failure. */
    static <T> List<T> world(boolean[] shm, Body<T> body) throws Exception {
        int n = shm.length;
        MemoryStore store = new MemoryStore();
        String prefix = "transport" + JOBS.incrementAndGet();
        return RingHarness.ranks(n, rank -> () -> {
            try (Ring ring = Ring.connect(rank, n, store, prefix, "127.0.0.1", RingHarness.HANG_GUARD, shm[rank]);
                    Arena arena = Arena.ofConfined()) {
                return body.run(ring, arena);
            }
        });
    }

    private static boolean[] all(int n, boolean v) {
        boolean[] b = new boolean[n];
        java.util.Arrays.fill(b, v);
        return b;
    }

    /** Rank r's input as raw little-endian bytes: mixed signs and magnitudes (floats), full range (integers). */
    private static byte[] input(Ring.Sum type, int rank, int count, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed * 1_000_003 + rank * 7919L + type.ordinal());
        MemorySegment m = MemorySegment.ofArray(new byte[count * Ring.size(type)]);
        for (int i = 0; i < count; i++) {
            double v = (rnd.nextDouble() - 0.5) * Math.pow(10, rnd.nextInt(-3, 4));
            switch (type) {
                case F32 -> m.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) v);
                case F64 -> m.setAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, i, v);
                case I32 -> m.setAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i, rnd.nextInt());
                case I64 -> m.setAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i, rnd.nextLong());
            }
        }
        return (byte[]) m.heapBase().orElseThrow();
    }

    /**
     * The documented result: element i in chunk c (i in [count*c/n, count*(c+1)/n)) is the left fold over ranks
     * c+1, c+2, ..., c+n (mod n), in the element type's own arithmetic (integers wrap).
     */
    private static byte[] reference(Ring.Sum type, int world, int count, long seed) {
        MemorySegment[] x = new MemorySegment[world];
        for (int r = 0; r < world; r++) {
            x[r] = MemorySegment.ofArray(input(type, r, count, seed));
        }
        MemorySegment s = MemorySegment.ofArray(new byte[count * Ring.size(type)]);
        for (int c = 0; c < world; c++) {
            for (long i = (long) count * c / world; i < (long) count * (c + 1) / world; i++) {
                MemorySegment first = x[(c + 1) % world];
                switch (type) {
                    case F32 -> {
                        float acc = first.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
                        for (int k = 2; k <= world; k++) {
                            acc += x[(c + k) % world].getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
                        }
                        s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, acc);
                    }
                    case F64 -> {
                        double acc = first.getAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, i);
                        for (int k = 2; k <= world; k++) {
                            acc += x[(c + k) % world].getAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, i);
                        }
                        s.setAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, i, acc);
                    }
                    case I32 -> {
                        int acc = first.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i);
                        for (int k = 2; k <= world; k++) {
                            acc += x[(c + k) % world].getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i);
                        }
                        s.setAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i, acc);
                    }
                    case I64 -> {
                        long acc = first.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i);
                        for (int k = 2; k <= world; k++) {
                            acc += x[(c + k) % world].getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i);
                        }
                        s.setAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i, acc);
                    }
                }
            }
        }
        return (byte[]) s.heapBase().orElseThrow();
    }

    /**
     * Element counts for a world: tiny and odd; chunks just under, at, and just over the shared-memory threshold (so
     * one all-reduce mixes both transports on one link); and chunks of 2.5 slots plus an odd remainder.
     */
    private static int[] counts(Ring.Sum type, int world) {
        int e = Ring.size(type);
        int atMin = (int) (Ring.SHM_MIN / e) * world;
        return new int[] {1, 7, atMin - 1, atMin, atMin + 1, (Ring.SLOT * 5 / 2 / e) * world + 3};
    }

    private static void checkAllReduce(boolean[] shm) throws Exception {
        int n = shm.length;
        for (Ring.Sum type : Ring.Sum.values()) {
            int[] counts = counts(type, n);
            List<List<byte[]>> got = world(shm, (ring, arena) -> {
                List<byte[]> out = new ArrayList<>();
                for (int count : counts) {
                    byte[] in = input(type, ring.rank(), count, count);
                    MemorySegment m = arena.allocate(in.length, 64);
                    MemorySegment.copy(MemorySegment.ofArray(in), 0, m, 0, in.length);
                    ring.allReduce(m, count, type);
                    out.add(m.toArray(ValueLayout.JAVA_BYTE));
                }
                return out;
            });
            for (int ci = 0; ci < counts.length; ci++) {
                byte[] want = reference(type, n, counts[ci], counts[ci]);
                for (int r = 0; r < n; r++) {
                    assertArrayEquals(want, got.get(r).get(ci), type + " world " + n + " count " + counts[ci]
                            + " rank " + r + " (shm " + java.util.Arrays.toString(shm) + ")");
                }
            }
        }
    }

    @Test
    void allReduceOfEveryTypeFollowsTheDocumentedFoldOverTcp() throws Exception {
        checkAllReduce(all(2, false));
        checkAllReduce(all(3, false));
    }

    @Test
    void allReduceOfEveryTypeFollowsTheDocumentedFoldOverSharedMemory() throws Exception {
        checkAllReduce(all(2, true));
        checkAllReduce(all(3, true));
    }

    @Test
    void sameHostNeighboursUseSharedMemoryAndLeaveNoFileBehind() throws Exception {
        assumeTrue(Files.isDirectory(Path.of("/dev/shm")), "no /dev/shm here");
        List<String> states = world(all(3, true), (ring, arena) -> {
            Path offered = ring.offeredFile();
            assertNotNull(offered);
            assertFalse(Files.exists(offered), offered + " still exists after setup");
            return ring.sendsThroughSharedMemory() + "/" + ring.receivesThroughSharedMemory();
        });
        assertEquals(List.of("true/true", "true/true", "true/true"), states);
    }

    @Test
    void aRankWithoutSharedMemoryKeepsBothItsLinksOnTcpAndEveryCollectiveStillAgrees() throws Exception {
        assumeTrue(Files.isDirectory(Path.of("/dev/shm")), "no /dev/shm here");
        boolean[] shm = {false, true, true};
        List<String> states = world(shm, (ring, arena) -> ring.sendsThroughSharedMemory() + "/"
                + ring.receivesThroughSharedMemory());
        // rank 0 offers nothing (link 0->1 TCP) and refuses rank 2's offer (link 2->0 TCP); link 1->2 shares memory
        assertEquals(List.of("false/false", "true/false", "false/true"), states);
        checkAllReduce(shm);
        checkMovers(shm);
    }

    /** allGather, reduceScatter and broadcast from every root (middle ranks forward what they receive). */
    private static void checkMovers(boolean[] shm) throws Exception {
        int n = shm.length;
        int bytes = 3 * Ring.SLOT + 3; // odd, several slots, above the threshold
        List<List<byte[]>> got = world(shm, (ring, arena) -> {
            List<byte[]> out = new ArrayList<>();
            int r = ring.rank();
            MemorySegment all = arena.allocate((long) bytes * n, 64);
            MemorySegment.copy(MemorySegment.ofArray(input(Ring.Sum.I32, r, (bytes + 3) / 4, 11)), 0, all,
                    (long) r * bytes, bytes);
            ring.allGather(all, bytes, 1);
            out.add(all.toArray(ValueLayout.JAVA_BYTE));
            for (int root = 0; root < n; root++) {
                MemorySegment b = arena.allocate(bytes, 64);
                MemorySegment.copy(MemorySegment.ofArray(input(Ring.Sum.I32, r, (bytes + 3) / 4, 20 + root)), 0, b,
                        0, bytes);
                ring.broadcast(b, root);
                out.add(b.toArray(ValueLayout.JAVA_BYTE));
            }
            int block = (int) (Ring.SHM_MIN / 8) + 5; // longs per block
            byte[] in = input(Ring.Sum.I64, r, block * n, 30);
            MemorySegment rs = arena.allocate(in.length, 64);
            MemorySegment.copy(MemorySegment.ofArray(in), 0, rs, 0, in.length);
            ring.reduceScatter(rs, block, Ring.Sum.I64);
            out.add(rs.asSlice((long) r * block * 8, block * 8L).toArray(ValueLayout.JAVA_BYTE));
            return out;
        });
        byte[] gathered = new byte[bytes * n];
        for (int r = 0; r < n; r++) {
            System.arraycopy(input(Ring.Sum.I32, r, (bytes + 3) / 4, 11), 0, gathered, r * bytes, bytes);
        }
        int block = (int) (Ring.SHM_MIN / 8) + 5;
        byte[] sum = reference(Ring.Sum.I64, n, block * n, 30); // integer sums: any order gives these bits
        for (int r = 0; r < n; r++) {
            List<byte[]> g = got.get(r);
            assertArrayEquals(gathered, g.get(0), "allGather rank " + r);
            for (int root = 0; root < n; root++) {
                byte[] want = java.util.Arrays.copyOf(input(Ring.Sum.I32, root, (bytes + 3) / 4, 20 + root), bytes);
                assertArrayEquals(want, g.get(1 + root), "broadcast from " + root + " at rank " + r);
            }
            assertArrayEquals(java.util.Arrays.copyOfRange(sum, r * block * 8, (r + 1) * block * 8), g.get(1 + n),
                    "reduceScatter block of rank " + r);
        }
    }

    @Test
    void movingCollectivesOverSharedMemoryAreByteExact() throws Exception {
        checkMovers(all(3, true));
    }

    /**
     * Rank 1's ring is closed from another thread once rank 1 has finished two all-reduces of 64 MB, so while it is
     * in (or entering) the third; rank 0 must fail naming rank 1, however the close and its transfer interleave.
     * The ring's timeout is only a hang guard: a failure that was waited out would ask "is it stuck", not
     * say that the peer closed its connection.
     */
    @Test
    void aPeerClosedMidTransferFailsTheOtherWithAMessageInsteadOfHanging() throws Exception {
        ExecutorService killer = Executors.newSingleThreadExecutor();
        try {
            List<String> out = world(all(2, true), (ring, arena) -> {
                long count = 16L << 20; // 64 MB of floats: many slots per step
                MemorySegment m = arena.allocate(count * 4, 64);
                for (int k = 0; ; k++) {
                    if (ring.rank() == 1 && k == 2) {
                        killer.submit(() -> {
                            try {
                                ring.close(); // as a dying process: sockets and mapping go mid-transfer
                            } catch (RuntimeException ignored) {
                                // the mapping may be in use by this rank's own thread; the sockets are closed already
                            }
                        });
                    }
                    try {
                        ring.allReduce(m, count, Ring.Sum.F32);
                    } catch (RuntimeException e) {
                        return e.getMessage();
                    }
                }
            });
            assertTrue(out.get(0).contains("rank 1"), out.get(0));
            assertFalse(out.get(0).contains("is it stuck"), "waited out: " + out.get(0));
        } finally {
            killer.shutdownNow();
        }
    }
}
