package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.index.NDIndex;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.IntFunction;

/**
 * A {@link ProcessGroup} of N threads in one JVM, for tests: ranks exchange their arrays through shared slots
 * between two barriers (all deposited; all done reading). Sums run in rank order on every rank, so results are
 * bit-identical everywhere. A rank that fails breaks the barrier, and the others fail instead of hanging.
 */
public final class ThreadProcessGroup implements ProcessGroup {
    private static final long TIMEOUT_S = 120;

    private static final class Shared {
        final CyclicBarrier barrier;
        final NDArray[] slots;

        Shared(int n) {
            barrier = new CyclicBarrier(n);
            slots = new NDArray[n];
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
     * rank order; the first failure is rethrown (as the cause of an AssertionError when checked).
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
                    shared.barrier.reset(); // wakes the others with BrokenBarrierException
                }
            }, "rank-" + r, 64L << 20);
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) {
            t.join();
        }
        // The root cause: a failure that is not a consequence of another rank's failure.
        Throwable first = null;
        for (Throwable e : errors) {
            if (e != null && (first == null || isBroken(first) && !isBroken(e))) {
                first = e;
            }
        }
        if (first instanceof Exception e) throw e;
        if (first instanceof Error e) throw e;
        @SuppressWarnings("unchecked")
        List<T> typed = (List<T>) results;
        return typed;
    }

    private static boolean isBroken(Throwable e) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof BrokenBarrierException) return true;
        }
        return false;
    }

    /** What each rank runs. */
    @FunctionalInterface
    public interface RankBody<T> {
        T run(ProcessGroup group) throws Exception;
    }

    /** Creates groups without threads (a caller that manages them): rank r's group is {@code groups.apply(r)}. */
    public static IntFunction<ProcessGroup> groups(int n) {
        Shared shared = new Shared(n);
        return r -> new ThreadProcessGroup(shared, r);
    }

    private void await() {
        try {
            shared.barrier.await(TIMEOUT_S, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new DistException("rank " + rank + " interrupted", e);
        } catch (BrokenBarrierException | TimeoutException e) {
            throw new DistException("rank " + rank + ": another rank failed or did not arrive", e);
        }
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
