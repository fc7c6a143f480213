package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Torch;

/**
 * Work that rank 0 does for everyone (writing a checkpoint, preparing the data, exporting), followed by a barrier
 * that carries its outcome: every rank calls {@link #run} at the same point, rank 0 runs the work, and the
 * others learn whether it succeeded instead of only that rank 0 got past it. A plain barrier in a {@code finally}
 * would let them carry on past a checkpoint that was never written, or prepare the data themselves after rank 0
 * failed to.
 */
public final class RankZero {
    /** What rank 0 does; {@code E}, its checked exception, is what {@link #run} throws on rank 0. */
    @FunctionalInterface
    public interface Work<E extends Exception> {
        void run() throws E;
    }

    private RankZero() {}

    /**
     * Rank 0 runs {@code work}; then every rank all-reduces one flag (1 where the work failed). On rank 0 a failure
     * is rethrown as it was; on the others it becomes a {@link DistException} naming {@code what}. In a world of
     * one this is just {@code work.run()}.
     *
     * @param what the work in a few words, for the other ranks' error ("write checkpoint-40")
     * @throws DistException on ranks other than 0 when rank 0's work failed, or when the group fails
     */
    public static <E extends Exception> void run(ProcessGroup group, String what, Work<E> work) throws E {
        if (group.worldSize() == 1) {
            work.run();
            return;
        }
        Exception failure = null;
        if (group.rank() == 0) {
            try {
                work.run();
            } catch (Exception e) {
                failure = e;
            }
        }
        long failed;
        try {
            failed = failedRanks(group, failure != null);
        } catch (DistException e) {
            if (failure != null) {
                failure.addSuppressed(e); // rank 0's own error is the one that explains
                throw RankZero.<E>rethrown(failure);
            }
            throw e;
        }
        if (failure != null) {
            throw RankZero.<E>rethrown(failure);
        }
        if (failed > 0) {
            throw new DistException("rank 0 failed to " + what + " (its error is in rank 0's log); rank "
                    + group.rank() + " stops too");
        }
    }

    /** {@code work} throws only E or unchecked exceptions; this returns E for a {@code throw} of either. */
    @SuppressWarnings("unchecked")
    private static <E extends Exception> E rethrown(Exception e) {
        if (e instanceof RuntimeException r) {
            throw r;
        }
        return (E) e;
    }

    private static long failedRanks(ProcessGroup group, boolean failed) {
        try (NDManager m = Torch.newManager(); NDArray flag = m.create(new int[] {failed ? 1 : 0})) {
            group.allReduceSum(flag);
            return flag.toIntArray()[0];
        }
    }
}
