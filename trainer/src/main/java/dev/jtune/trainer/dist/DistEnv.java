package dev.jtune.trainer.dist;

import java.util.Map;

/**
 * Where this process sits in a job, from torchrun's variables ({@code RANK}, {@code LOCAL_RANK},
 * {@code WORLD_SIZE}, {@code LOCAL_WORLD_SIZE}, {@code MASTER_ADDR}, {@code MASTER_PORT}), which the launcher
 * sets for every worker. Without them, a task started by Slurm's {@code srun} takes its place from
 * {@code SLURM_*} (see {@link Slurm}); a process with neither is a world of one.
 */
public record DistEnv(int rank, int localRank, int worldSize, int localWorldSize, String masterAddr, int masterPort) {
    public static final DistEnv SINGLE = new DistEnv(0, 0, 1, 1, "127.0.0.1", 0);

    public DistEnv {
        if (worldSize < 1 || rank < 0 || rank >= worldSize || localRank < 0 || localRank >= localWorldSize) {
            throw new IllegalArgumentException("inconsistent rank " + rank + "/" + worldSize + ", local rank "
                    + localRank + "/" + localWorldSize);
        }
    }

    /** From this process's environment. */
    public static DistEnv fromEnvironment() {
        return from(System.getenv());
    }

    /**
     * From variables as torchrun sets them; else from Slurm's ({@code SLURM_PROCID}, {@code SLURM_NTASKS},
     * {@code SLURM_LOCALID}, {@code SLURM_NODEID}, {@code SLURM_TASKS_PER_NODE}, {@code MASTER_ADDR} or the first
     * host of {@code SLURM_JOB_NODELIST}, {@code MASTER_PORT} or 29500); {@link #SINGLE} when neither is there.
     */
    public static DistEnv from(Map<String, String> env) {
        if (!env.containsKey("WORLD_SIZE")) {
            return Slurm.isTask(env) ? Slurm.distEnv(env) : SINGLE;
        }
        return new DistEnv(integer(env, "RANK"), integer(env, "LOCAL_RANK"), integer(env, "WORLD_SIZE"),
                integer(env, "LOCAL_WORLD_SIZE"), env.getOrDefault("MASTER_ADDR", "127.0.0.1"), integer(env, "MASTER_PORT"));
    }

    private static int integer(Map<String, String> env, String name) {
        String v = env.get(name);
        if (v == null) {
            throw new DistException("environment variable " + name + " is not set (WORLD_SIZE is; the launcher sets both)");
        }
        try {
            return Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            throw new DistException("environment variable " + name + "=" + v + " is not an integer");
        }
    }

    public boolean distributed() {
        return worldSize > 1;
    }

    public boolean isMain() {
        return rank == 0;
    }
}
