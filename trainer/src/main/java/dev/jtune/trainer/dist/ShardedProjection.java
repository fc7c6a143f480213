package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.llama.Linear;

/**
 * A frozen projection of which this rank holds a chunk and which it all-gathers for use: dense
 * ({@link ShardedLinear}) or NF4 ({@link ShardedNf4Linear}). The lifecycle they share lives here: {@link #forward}
 * gathers on first use and keeps the gathered form until {@link #release()}, which the trainer calls once the
 * decoder layer is done with (after its no-grad forward, after the backward of its recompute), so that at most one
 * layer is whole at a time; each gather and release is reported to the owning {@link ShardedWeights}, which keeps
 * the byte accounts. Every rank must run the same forwards in the same order, as the gather is a collective.
 */
abstract sealed class ShardedProjection implements Linear permits ShardedLinear, ShardedNf4Linear {
    final ProcessGroup group;
    /** Holds this rank's chunk and, while gathered, the gathered form; closed with the projection. */
    final NDManager manager;
    private final ShardedWeights owner;
    private final long out;
    private final long in;
    private boolean gathered;

    ShardedProjection(ProcessGroup group, NDManager manager, ShardedWeights owner, long out, long in) {
        this.group = group;
        this.manager = manager;
        this.owner = owner;
        this.out = out;
        this.in = in;
    }

    /** All-gathers the whole weight (in whatever form the subclass keeps) into {@link #manager}. */
    abstract void gather();

    /** {@code x} through the gathered weight. */
    abstract NDArray apply(NDArray x);

    /** Frees what {@link #gather()} made (autograd keeps what a pending backward still needs). */
    abstract void free();

    /** Bytes this rank holds for good. */
    abstract long shardBytes();

    /** Bytes of the whole projection (what one process holds without FSDP). */
    abstract long fullBytes();

    /** Bytes one gather materializes. */
    abstract long gatherBytes();

    /** FSDP always recomputes a layer before its backward, gathering its weights again: nothing to restore here. */
    @Override
    public final void prepareBackward() {}

    @Override
    public final NDArray forward(NDArray x) {
        if (!gathered) {
            gather();
            gathered = true;
            owner.gathered(gatherBytes());
        }
        return apply(x);
    }

    /** Frees the gathered weight; no-op if not gathered. */
    final void release() {
        if (gathered) {
            free();
            gathered = false;
            owner.released(gatherBytes());
        }
    }

    /** Whether the gathered weight is alive now. */
    final boolean gathered() {
        return gathered;
    }

    @Override
    public final long inFeatures() {
        return in;
    }

    @Override
    public final long outFeatures() {
        return out;
    }

    @Override
    public final void close() {
        release();
        manager.close();
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[" + out + ", " + in + "] rank " + group.rank() + "/" + group.worldSize();
    }
}
