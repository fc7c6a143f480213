package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.index.NDIndex;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A {@link ProcessGroup} of N threads in one JVM, for tests: ranks exchange their arrays through shared slots
 * between two barriers (all deposited; all done reading). Sums run in rank order on every rank, so results are
 * bit-identical everywhere.
 *
 * <p>A rank that fails, or returns while others still call collectives, fails the group for good: every rank
 * waiting at the barrier, and every rank that arrives there later, however much later, fails at once with a
 * {@link PeerFailed} naming it. The outcome never depends on which rank gets where first, nor on a timeout.
 */
public final class ThreadProcessGroup implements ProcessGroup {
    /**
     * Only a hang guard (a rank stuck outside the group, e.g. deadlocked in the code under test): no outcome a test
     * expects depends on it, since failures and departures reach waiting ranks at once.
     */
    private static final long HANG_GUARD_MINUTES = 10;

    /** This rank failed because another rank failed or left: a consequence, never the root cause. */
    public static final class PeerFailed extends DistException {
        PeerFailed(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** The ranks' shared state: the slots, and a barrier whose failure is sticky (unlike CyclicBarrier.reset). */
    private static final class Shared {
        final NDArray[] slots;
        private final ReentrantLock lock = new ReentrantLock();
        private final Condition changed = lock.newCondition();
        private int arrived;
        private long generation;
        private int waiting;
        /** Set once, by the first rank that failed or left; every later await fails with it. */
        private String failure;
        private Throwable failureCause;

        Shared(int n) {
            slots = new NDArray[n];
        }

        /** Rank {@code rank} failed with {@code e}: the others stop, now and at any later barrier. */
        void fail(int rank, Throwable e) {
            poison("rank " + rank + " failed (" + e + ")", e);
        }

        /** Rank {@code rank} returned: a barrier that still needs it can never complete. */
        void leave(int rank) {
            poison("rank " + rank + " left the group (its body returned) before this collective", null);
        }

        private void poison(String why, Throwable cause) {
            lock.lock();
            try {
                if (failure == null) {
                    failure = why;
                    failureCause = cause;
                }
                changed.signalAll();
            } finally {
                lock.unlock();
            }
        }

        void await(int rank) {
            lock.lock();
            try {
                throwIfFailed(rank);
                long gen = generation;
                if (++arrived == slots.length) {
                    arrived = 0;
                    generation++;
                    changed.signalAll();
                    return;
                }
                long left = TimeUnit.MINUTES.toNanos(HANG_GUARD_MINUTES);
                waiting++;
                try {
                    // A barrier that completed before the failure still counts: check the generation first.
                    while (generation == gen) {
                        throwIfFailed(rank);
                        if (left <= 0) {
                            throw new DistException("rank " + rank + ": hang guard: the barrier was not complete "
                                    + "after " + HANG_GUARD_MINUTES + " minutes and no rank failed or left");
                        }
                        left = changed.awaitNanos(left);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new DistException("rank " + rank + " interrupted", e);
                } finally {
                    waiting--;
                }
            } finally {
                lock.unlock();
            }
        }

        private void throwIfFailed(int rank) {
            if (failure != null) {
                throw new PeerFailed("rank " + rank + ": " + failure, failureCause);
            }
        }

        int waiting() {
            lock.lock();
            try {
                return waiting;
            } finally {
                lock.unlock();
            }
        }
    }

    private final Shared shared;
    private final int rank;

    private ThreadProcessGroup(Shared shared, int rank) {
        this.shared = shared;
        this.rank = rank;
    }

    /**
     * Runs {@code body} as ranks 0..n-1, each in its own thread with its own group, and returns their results in
     * rank order. The root failure is rethrown (a failure that is not a {@link PeerFailed} consequence of another
     * rank's), as it was when unchecked or an {@link Exception}.
     */
    public static <T> List<T> run(int n, RankBody<T> body) throws Exception {
        Shared shared = new Shared(n);
        List<Object> results = new ArrayList<>();
        List<Throwable> errors = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int r = 0; r < n; r++) {
            results.add(null);
            errors.add(null);
            int rank = r;
            // A deep stack for libtorch's TorchScript interpreter, as the trainer's JVMs get.
            Thread t = new Thread(null, () -> {
                try (ThreadProcessGroup g = new ThreadProcessGroup(shared, rank)) {
                    results.set(rank, body.run(g));
                } catch (Throwable e) {
                    errors.set(rank, e);
                    shared.fail(rank, e);
                } finally {
                    shared.leave(rank); // a no-op after fail(): the first reason sticks
                }
            }, "rank-" + r, 64L << 20);
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) {
            t.join();
        }
        Throwable first = null;
        for (Throwable e : errors) {
            if (e != null && (first == null || isConsequence(first) && !isConsequence(e))) {
                first = e;
            }
        }
        if (first instanceof Exception e) throw e;
        if (first instanceof Error e) throw e;
        @SuppressWarnings("unchecked")
        List<T> typed = (List<T>) results;
        return typed;
    }

    private static boolean isConsequence(Throwable e) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof PeerFailed) return true;
        }
        return false;
    }

    /** What each rank runs. */
    @FunctionalInterface
    public interface RankBody<T> {
        T run(ProcessGroup group) throws Exception;
    }

    /** How many ranks are blocked at the barrier now (for tests that fail a rank while another waits). */
    int waitingAtBarrier() {
        return shared.waiting();
    }

    private void await() {
        shared.await(rank);
    }

    /** Deposits x, waits for all, applies {@code read} to the slots, waits until everyone has read. */
    private <T> T exchange(NDArray x, java.util.function.Function<NDArray[], T> read) {
        shared.slots[rank] = x;
        await();
        T result;
        try {
            result = read.apply(shared.slots.clone());
        } finally {
            await();
        }
        return result;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int worldSize() {
        return shared.slots.length;
    }

    private static NDArray sumInRankOrder(NDArray[] slots, NDArray into) {
        NDArray sum = slots[0].duplicate();
        sum.attach(into.getManager());
        for (int r = 1; r < slots.length; r++) {
            NDArray next = sum.add(slots[r]);
            sum.close();
            sum = next;
        }
        return sum;
    }

    @Override
    public void allReduceSum(NDArray x) {
        NDArray sum = exchange(x, slots -> sumInRankOrder(slots, x));
        dev.jtune.trainer.optim.Tensors.copyInto(x, sum);
        sum.close();
    }

    @Override
    public NDArray allGather(NDArray x) {
        return exchange(x, slots -> {
            NDArray out = NDArrays.concat(new NDList(slots));
            out.attach(x.getManager());
            return out;
        });
    }

    @Override
    public NDArray reduceScatterSum(NDArray x) {
        long n = x.getShape().get(0);
        if (n % worldSize() != 0) {
            throw new IllegalArgumentException("reduceScatterSum: dimension 0 (" + n + ") is not a multiple of "
                    + worldSize());
        }
        long c = n / worldSize();
        NDArray sum = exchange(x, slots -> sumInRankOrder(slots, x));
        NDArray mine = sum.get(new NDIndex(rank * c + ":" + (rank + 1) * c)).duplicate();
        mine.attach(x.getManager());
        sum.close();
        return mine;
    }

    @Override
    public void broadcast(NDArray x, int root) {
        NDArray copy = exchange(x, slots -> {
            NDArray d = slots[root].duplicate();
            d.attach(x.getManager());
            return d;
        });
        if (rank != root) {
            dev.jtune.trainer.optim.Tensors.copyInto(x, copy);
        }
        copy.close();
    }

    @Override
    public void barrier() {
        await();
    }

    @Override
    public void close() {}
}
