package dev.jtune.trainer.dist;

import dev.jtune.model.engine.Torch;
import java.time.Duration;

/** Chooses the process group for a run: NCCL for CUDA tensors, the TCP ring for CPU tensors. */
public final class ProcessGroups {
    private ProcessGroups() {}

    /** How long every rank has to arrive, and a stalled collective to progress: {@code JTUNE_DIST_TIMEOUT} seconds. */
    static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(300);

    /**
     * The process group for {@code env}, the one place where the CLI gets its group: {@link ProcessGroup#single()}
     * in a world of one; otherwise the ring (or NCCL) over the store at {@code MASTER_ADDR:MASTER_PORT}, which the
     * launcher serves ({@code JTUNE_AGENT_STORE=1}) or, when something else started the workers (srun), rank 0
     * serves itself. Keys live under {@code attempt/$JTUNE_RESTART_COUNT/} so a restarted group does not read the
     * previous one's. Closing the group closes the store (and rank 0's server).
     */
    public static ProcessGroup forEnvironment(DistEnv env) {
        return forEnvironment(env, System.getenv());
    }

    static ProcessGroup forEnvironment(DistEnv env, java.util.Map<String, String> vars) {
        if (!env.distributed()) {
            return ProcessGroup.single();
        }
        Duration timeout = vars.containsKey("JTUNE_DIST_TIMEOUT")
                ? Duration.ofSeconds(Long.parseLong(vars.get("JTUNE_DIST_TIMEOUT").strip())) : DEFAULT_TIMEOUT;
        TcpStoreServer server = !"1".equals(vars.get("JTUNE_AGENT_STORE")) && env.rank() == 0
                ? TcpStoreServer.start(env.masterAddr(), env.masterPort()) : null;
        TcpStore store = null;
        try {
            store = TcpStore.connect(env.masterAddr(), env.masterPort(), timeout);
            String prefix = "attempt/" + vars.getOrDefault("JTUNE_RESTART_COUNT", "0");
            return new Owning(create(env, store, prefix, timeout), store, server);
        } catch (RuntimeException e) {
            if (store != null) store.close();
            if (server != null) server.close();
            throw e;
        }
    }

    /** A group that also closes the store it was made through. */
    private record Owning(ProcessGroup group, TcpStore store, TcpStoreServer server) implements ProcessGroup {
        @Override
        public int rank() {
            return group.rank();
        }

        @Override
        public int worldSize() {
            return group.worldSize();
        }

        @Override
        public void allReduceSum(ai.djl.ndarray.NDArray x) {
            group.allReduceSum(x);
        }

        @Override
        public ai.djl.ndarray.NDArray allGather(ai.djl.ndarray.NDArray x) {
            return group.allGather(x);
        }

        @Override
        public ai.djl.ndarray.NDArray reduceScatterSum(ai.djl.ndarray.NDArray x) {
            return group.reduceScatterSum(x);
        }

        @Override
        public void broadcast(ai.djl.ndarray.NDArray x, int root) {
            group.broadcast(x, root);
        }

        @Override
        public void barrier() {
            group.barrier();
        }

        @Override
        public void close() {
            try {
                group.close();
            } finally {
                store.close();
                if (server != null) server.close();
            }
        }
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
