package dev.jtune.trainer.dist;

/** Where the CLI gets its {@link ProcessGroup}: the one seam that connects a backend to the trainer. */
public final class ProcessGroups {
    private ProcessGroups() {}

    /**
     * The process group for {@code env}: {@link ProcessGroup#single()} in a world of one.
     *
     * @throws DistException for a world larger than one until the TCP store and ring backend are connected here
     */
    public static ProcessGroup forEnvironment(DistEnv env) {
        if (!env.distributed()) {
            return ProcessGroup.single();
        }
        throw new DistException("WORLD_SIZE=" + env.worldSize() + ": distributed backend not wired yet");
    }
}
