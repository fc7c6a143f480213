package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Torch;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;

/** Worlds of ring process groups as threads of this JVM, sharing a {@link MemoryStore}; inputs every rank can recompute. */
final class RingHarness {
    private static final AtomicInteger JOBS = new AtomicInteger();

    private RingHarness() {}

    interface Body<T> {
        T run(RingProcessGroup pg, NDManager m) throws Exception;
    }

    /**
     * For waits that end by an event (every rank arriving, a collective's peers, a rank's thread ending): only a
     * hang guard, never reached unless the code under test is broken, so no outcome depends on machine load.
     */
    static final Duration HANG_GUARD = Duration.ofMinutes(10);

    /** Runs {@code body} on every rank of a world of {@code n}; the results by rank. Rethrows the first failure. */
    static <T> List<T> world(int n, Body<T> body) throws Exception {
        return world(n, HANG_GUARD, body);
    }

    /**
     * As {@link #world(int, Body)}, with {@code collectiveTimeout} for a collective that makes no progress (for the
     * tests of that timeout); setup always gets the hang guard, so a slow start never races the short timeout.
     */
    static <T> List<T> world(int n, Duration collectiveTimeout, Body<T> body) throws Exception {
        MemoryStore store = new MemoryStore();
        String prefix = "job" + JOBS.incrementAndGet();
        return ranks(n, rank -> () -> {
            DistEnv env = new DistEnv(rank, rank, n, n, "127.0.0.1", 0);
            try (NDManager m = Torch.newManager();
                    RingProcessGroup pg = RingProcessGroup.create(env, store, prefix, HANG_GUARD, collectiveTimeout)) {
                return body.run(pg, m);
            }
        });
    }

    /**
     * Runs {@code rank.apply(r)} for r = 0..n-1, each in a thread of its own (the common pool may have one thread
     * on 2 cores, and ranks block on each other); the results by rank. Rethrows the first failure.
     */
    static <T> List<T> ranks(int n, IntFunction<Callable<T>> rank) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<T>> futures = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                futures.add(pool.submit(rank.apply(r)));
            }
            List<T> out = new ArrayList<>();
            for (Future<T> f : futures) {
                try {
                    out.add(f.get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof Exception ex) {
                        throw ex;
                    }
                    throw e;
                }
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    /** Rank {@code rank}'s input of {@code count} floats: mixed signs and magnitudes, so that summation order shows. */
    static float[] input(int rank, int count, long seed) {
        SplittableRandom r = new SplittableRandom(seed * 7919 + rank);
        float[] x = new float[count];
        for (int i = 0; i < count; i++) {
            x[i] = (float) ((r.nextDouble() - 0.5) * Math.pow(10, r.nextInt(-3, 4)));
        }
        return x;
    }

    static long[] inputLong(int rank, int count, long seed) {
        SplittableRandom r = new SplittableRandom(seed * 104729 + rank);
        long[] x = new long[count];
        for (int i = 0; i < count; i++) {
            x[i] = r.nextLong(-1L << 40, 1L << 40);
        }
        return x;
    }
}
