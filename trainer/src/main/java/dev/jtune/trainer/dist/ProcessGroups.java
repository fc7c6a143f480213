package dev.jtune.trainer.dist;

import dev.jtune.model.engine.Torch;
import java.time.Duration;

/** Chooses the process group for a run: NCCL for CUDA tensors, the TCP ring for CPU tensors. */
public final class ProcessGroups {
    private ProcessGroups() {}

    /**
     * The process group for {@code env}, the one place where the CLI gets its group: {@link ProcessGroup#single()}
     * in a world of one.
     *
     * @throws DistException for a world larger than one until the launcher's store is connected here
     */
    public static ProcessGroup forEnvironment(DistEnv env) {
        if (!env.distributed()) {
            return ProcessGroup.single();
        }
        throw new DistException("WORLD_SIZE=" + env.worldSize() + ": distributed backend not wired yet");
    }

    /** As {@link #create(DistEnv, Store, String, Duration, boolean)}, CUDA when libtorch sees a GPU. */
    public static ProcessGroup create(DistEnv env, Store store, String prefix, Duration timeout) {
        return create(env, store, prefix, timeout, Torch.engine().getGpuCount() > 0);
    }

    /**
     * The process group of {@code env}'s world: {@link NcclProcessGroup} when the tensors will be CUDA tensors,
     * else {@link RingProcessGroup}. A world of one on CUDA needs no NCCL: {@link ProcessGroup#single()}.
     *
     * @param prefix store-key namespace of this group (include the launcher's restart generation)
     * @param timeout for every rank to arrive, and for a stalled collective (ring)
     */
    public static ProcessGroup create(DistEnv env, Store store, String prefix, Duration timeout, boolean cuda) {
        if (cuda) {
            return env.worldSize() == 1 ? ProcessGroup.single() : NcclProcessGroup.create(env, store, prefix, timeout);
        }
        return RingProcessGroup.create(env, store, prefix, timeout);
    }
}
