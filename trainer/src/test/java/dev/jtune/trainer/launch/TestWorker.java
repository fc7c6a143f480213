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
 *       other ranks print their pid and wait a minute (the launcher must stop them).
 * </ul>
 */
public final class TestWorker {
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
        try (TcpStore store = TcpStore.connect(env.masterAddr(), env.masterPort(), Duration.ofSeconds(20))) {
            long n = store.add(prefix + "joined", 1);
            store.set(prefix + "rank/" + env.rank(), Integer.toString(env.worldSize()).getBytes(StandardCharsets.UTF_8));
            if (n == env.worldSize()) {
                store.set(prefix + "all", new byte[] {1});
            }
            store.get(prefix + "all", Duration.ofSeconds(20));
            // Every rank's record is there: the job is one world.
            for (int r = 0; r < env.worldSize(); r++) {
                store.get(prefix + "rank/" + r, Duration.ofSeconds(1));
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
        Thread.sleep(60_000);
        System.exit(0);
    }
}
