package dev.jtune.trainer.launch;

import dev.jtune.trainer.dist.DistEnv;
import dev.jtune.trainer.dist.TcpStore;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A tiny worker for the launcher tests (a JVM start, no training):
 * <ul>
 *   <li>{@code join}: meets every other rank in the launcher's store and prints its place in the job;
 *   <li>{@code fail RANK CODE [first DIR]}: rank RANK prints 30 numbered lines and exits CODE (with {@code first},
 *       only in the first attempt, after writing a "checkpoint" into DIR that a restarted run reads back); the
 *       other ranks print their pid and wait until stopped (only the launcher can end them).
 * </ul>
 */
public final class TestWorker {
    /** Only a hang guard: the peers' JVMs arrive when they have started, however long a busy machine takes. */
    private static final Duration HANG_GUARD = Duration.ofMinutes(10);

    private TestWorker() {}

    public static void main(String[] args) throws Exception {
        Launcher.exitWithLauncher(System.getenv());
        DistEnv env = DistEnv.fromEnvironment();
        int restart = Integer.parseInt(System.getenv().getOrDefault("JTUNE_RESTART_COUNT", "-1"));
        System.out.printf("worker rank %d of %d, local %d of %d, node %s, restart %d%n", env.rank(), env.worldSize(),
                env.localRank(), env.localWorldSize(), System.getenv("GROUP_RANK"), restart);
        switch (args[0]) {
            case "join" -> join(env, restart);
            case "fail" -> fail(env, restart, args);
            default -> throw new IllegalArgumentException(args[0]);
        }
    }

    private static void join(DistEnv env, int restart) {
        String prefix = "attempt/" + restart + "/";
        try (TcpStore store = TcpStore.connect(env.masterAddr(), env.masterPort(), HANG_GUARD)) {
            // The record before the count: once the last rank counts itself, every record is there (counting
            // first let a rank read a slower rank's record before it was written).
            store.set(prefix + "rank/" + env.rank(), Integer.toString(env.worldSize()).getBytes(StandardCharsets.UTF_8));
            long n = store.add(prefix + "joined", 1);
            if (n == env.worldSize()) {
                store.set(prefix + "all", new byte[] {1});
            }
            store.get(prefix + "all", HANG_GUARD);
            // Every rank's record is there: the job is one world (set before "all", so no wait).
            for (int r = 0; r < env.worldSize(); r++) {
                store.get(prefix + "rank/" + r, Duration.ZERO);
            }
            System.out.printf("rank %d of %d joined the store with all %d ranks%n", env.rank(), env.worldSize(),
                    env.worldSize());
        }
        System.exit(0);
    }

    private static void fail(DistEnv env, int restart, String[] args) throws Exception {
        int failing = Integer.parseInt(args[1]);
        int code = Integer.parseInt(args[2]);
        boolean firstOnly = args.length > 3 && args[3].equals("first");
        Path checkpoint = firstOnly ? Path.of(args[4]).resolve("checkpoint-rank-" + env.rank()) : null;
        if (checkpoint != null && "auto".equals(System.getenv("JTUNE_RESUME")) && Files.exists(checkpoint)) {
            System.out.println("resumed from step " + Files.readString(checkpoint).strip());
        }
        if (env.rank() == failing && (!firstOnly || restart == 0)) {
            if (checkpoint != null) {
                Files.writeString(checkpoint, "5");
            }
            for (int i = 1; i <= 30; i++) {
                System.out.println("line " + i);
            }
            System.out.flush();
            System.exit(code);
        }
        if (firstOnly && restart > 0) {
            System.exit(0);
        }
        System.out.println("pid " + ProcessHandle.current().pid());
        System.out.flush();
        new java.util.concurrent.CountDownLatch(1).await(); // until the launcher stops this JVM
        System.exit(0);
    }
}
