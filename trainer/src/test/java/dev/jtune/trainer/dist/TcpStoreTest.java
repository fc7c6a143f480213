package dev.jtune.trainer.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

class TcpStoreTest {
    /**
     * For waits that end by an event (a connection, a key another thread sets): only a hang guard, never reached
     * unless the code is broken, so no outcome depends on how busy the machine is.
     */
    private static final Duration HANG_GUARD = Duration.ofMinutes(5);

    private static TcpStoreServer server() {
        return TcpStoreServer.start("127.0.0.1", new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
    }

    private static TcpStore client(TcpStoreServer s) {
        return TcpStore.connect("127.0.0.1", s.port(), HANG_GUARD);
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void setGetAddRoundTrip() {
        try (var s = server(); var c = client(s)) {
            c.set("a", utf8("hello"));
            assertArrayEquals(utf8("hello"), c.get("a", Duration.ofSeconds(1)));
            c.set("a", new byte[0]);
            assertArrayEquals(new byte[0], c.get("a", Duration.ofSeconds(1)));
            assertEquals(5, c.add("n", 5));
            assertEquals(2, c.add("n", -3));
            assertEquals(2, c.add("n", 0));
            // Counters read as decimal text, as in torch's store.
            assertArrayEquals(utf8("2"), c.get("n", Duration.ofSeconds(1)));
            byte[] big = new byte[3 << 20];
            new java.util.Random(1).nextBytes(big);
            c.set("big", big);
            assertArrayEquals(big, c.get("big", Duration.ofSeconds(5)));
        }
    }

    @Test
    void concurrentClientsAndThreads() throws Exception {
        int threads = 16;
        int adds = 200;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try (var s = server(); var shared = client(s)) {
            List<Future<Set<Long>>> results = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                results.add(pool.submit(() -> {
                    // Half the threads share one client (connections are borrowed per call), half have their own.
                    TcpStore c = id % 2 == 0 ? shared : client(s);
                    try {
                        Set<Long> seen = new HashSet<>();
                        for (int i = 0; i < adds; i++) {
                            seen.add(c.add("counter", 1));
                        }
                        c.set("from/" + id, utf8("t" + id));
                        // Every thread waits for its neighbour's key: gets block until another thread sets it.
                        int next = (id + 1) % threads;
                        assertArrayEquals(utf8("t" + next), c.get("from/" + next, HANG_GUARD));
                        return seen;
                    } finally {
                        if (c != shared) {
                            c.close();
                        }
                    }
                }));
            }
            Set<Long> all = new HashSet<>();
            for (Future<Set<Long>> f : results) {
                Set<Long> seen = f.get();
                assertEquals(adds, seen.size());
                all.addAll(seen);
            }
            // Atomic: every value 1..threads*adds was handed out exactly once.
            assertEquals(threads * adds, all.size());
            assertEquals(threads * adds, shared.add("counter", 0));
            assertTrue(all.contains(1L) && all.contains((long) threads * adds));
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void getWaitsForALaterSet() throws Exception {
        try (var s = server(); var waiter = client(s); var setter = client(s)) {
            var got = CompletableFuture.supplyAsync(() -> waiter.get("late", HANG_GUARD));
            awaitWaitingGets(s, 1); // the get is on the server, blocked: an order, not a duration
            assertTrue(!got.isDone(), "get returned before the key was set");
            setter.set("late", utf8("now"));
            assertArrayEquals(utf8("now"), got.get());
        }
    }

    /** Spins until {@code n} gets are blocked on the server. */
    private static void awaitWaitingGets(TcpStoreServer s, int n) {
        while (s.waitingGets() < n) {
            Thread.onSpinWait();
        }
    }

    @Test
    void getTimeoutNamesTheKeyAndTheTimeout() {
        try (var s = server(); var c = client(s)) {
            long t0 = System.nanoTime();
            var e = assertThrows(DistException.class, () -> c.get("never/set", Duration.ofMillis(300)));
            double waited = (System.nanoTime() - t0) / 1e9;
            assertTrue(e.getMessage().contains("store key 'never/set' was not set within 0.3 s"), e.getMessage());
            // At least the timeout (no upper bound: a busy machine may take longer to answer, and that is no error).
            assertTrue(waited >= 0.29, "waited " + waited + " s");
            // The connection is still good afterwards.
            c.set("x", utf8("1"));
            assertArrayEquals(utf8("1"), c.get("x", Duration.ofSeconds(1)));
        }
    }

    @Test
    void aTakenPortIsAClearError() throws Exception {
        try (var taken = new ServerSocket()) {
            taken.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            int port = taken.getLocalPort();
            var e = assertThrows(DistException.class, () -> TcpStoreServer.start("node7", port));
            assertEquals("port " + port + " is taken on node7: choose another --master-port (or set MASTER_PORT)",
                    e.getMessage());
        }
    }

    @Test
    void noStoreIsAClearErrorAfterTheDeadline() throws Exception {
        int port;
        try (var s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        long t0 = System.nanoTime();
        var e = assertThrows(DistException.class, () -> TcpStore.connect("127.0.0.1", port, Duration.ofMillis(500)));
        assertTrue(e.getMessage().startsWith("no store at 127.0.0.1:" + port + " after 0.5 s"), e.getMessage());
        assertTrue((System.nanoTime() - t0) / 1e9 >= 0.49);
    }

    @Test
    void connectRetriesUntilTheServerAppears() throws Exception {
        int port;
        try (var s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        var client = CompletableFuture.supplyAsync(() -> TcpStore.connect("127.0.0.1", port, HANG_GUARD));
        // Gives the client time to fail an attempt or two first, for coverage of the retry only: the outcome is the
        // same whichever comes first, the client's first attempt or the server.
        Thread.sleep(400);
        try (var s = TcpStoreServer.start("127.0.0.1", new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
                var c = client.get()) {
            assertEquals(1, c.add("k", 1));
        }
    }

    @Test
    void closingTheServerFailsWaitingClients() throws Exception {
        var s = server();
        try (var c = client(s)) {
            var got = CompletableFuture.supplyAsync(() -> c.get("k", HANG_GUARD));
            awaitWaitingGets(s, 1);
            s.close();
            var e = assertThrows(java.util.concurrent.ExecutionException.class, got::get);
            assertTrue(e.getCause() instanceof DistException, e.toString());
            assertThrows(DistException.class, () -> c.set("k", new byte[1]));
        }
    }
}
