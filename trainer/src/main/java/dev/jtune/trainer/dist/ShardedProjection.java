package dev.jtune.trainer.dist;

import dev.jtune.model.llama.Linear;

/** A frozen projection of which this rank holds a chunk and which it all-gathers for use: dense or NF4. */
sealed interface ShardedProjection extends Linear permits ShardedLinear, ShardedNf4Linear {
    /** Frees what the gather made; no-op if not gathered. */
    void release();

    /** Whether the gathered weight is alive now. */
    boolean gathered();

    /** Bytes this rank holds for good. */
    long shardBytes();

    /** Bytes of the whole projection (what one process holds without FSDP). */
    long fullBytes();

    /** Bytes one gather materializes. */
    long gatherBytes();
}
