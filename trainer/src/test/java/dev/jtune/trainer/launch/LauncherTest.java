package dev.jtune.trainer.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The launcher end to end with {@link TestWorker} JVMs (a JVM start each, no training). */
class LauncherTest {
    /**
     * {@code --rdzv-timeout} where nodes are expected to meet: only a hang guard (launchers in this JVM meet as
     * soon as they run), so a busy machine cannot turn a slow start into a failure.
     */
    private static final String RDZV_HANG_GUARD = "600";

    @TempDir
    Path tmp;

    /** One launcher invocation: its exit code and what it printed. */
    private record Run(int code, String out, String err) {}

    private static Run launch(String... argv) {
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        int code;
        try (var o = new PrintStream(out, true, StandardCharsets.UTF_8);
                var e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            code = Launcher.run(LaunchOptions.parse(argv, Map.of()), System.getenv(), o, e);
        }
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private String[] args(Path logs, String... rest) {
        List<String> a = new ArrayList<>(List.of("--log-dir", logs.toString(), "--main-class", TestWorker.class.getName()));
        a.addAll(List.of(rest));
        return a.toArray(String[]::new);
    }

    private static String read(Path p) throws IOException {
        return Files.readString(p, StandardCharsets.UTF_8);
    }

    /** Its own thread: the common pool may have a single thread on a 2-core machine, and launchers block. */
    private static CompletableFuture<Run> inThread(java.util.function.Supplier<Run> s) {
        var f = new CompletableFuture<Run>();
        Thread.ofPlatform().start(() -> {
            try {
                f.complete(s.get());
            } catch (Throwable t) {
                f.completeExceptionally(t);
            }
        });
        return f;
    }

    private static int freePort() throws IOException {
        try (var s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    @Test
    void startsWorkersWithTorchrunVariablesLogsEachRankAndShowsRankZero() throws IOException {
        Path logs = tmp.resolve("logs");
        Run r = launch(args(logs, "--nproc-per-node", "2", "join"));
        assertEquals(0, r.code(), r.err());
        for (int rank = 0; rank < 2; rank++) {
            String log = read(logs.resolve("rank-" + rank + ".log"));
            assertTrue(log.contains("worker rank " + rank + " of 2, local " + rank + " of 2, node 0, restart 0"), log);
            assertTrue(log.contains("rank " + rank + " of 2 joined the store with all 2 ranks"), log);
        }
        assertTrue(r.out().contains("rank 0 of 2 joined"), r.out());
        assertFalse(r.out().contains("rank 1 of 2 joined"), "only rank 0 reaches the console: " + r.out());
    }

    @Test
    void twoNodeLaunchersOnLoopbackFormOneJob() throws Exception {
        int port = freePort();
        List<CompletableFuture<Run>> nodes = new ArrayList<>();
        // Node 1 first, so that it usually has to wait for node 0's store; the outcome is the same in either
        // order (TcpStoreTest covers the retry on its own).
        for (int node : new int[] {1, 0}) {
            nodes.add(inThread(() -> launch(args(tmp.resolve("node" + node),
                    "--nproc-per-node", "2", "--nnodes", "2", "--node-rank", Integer.toString(node),
                    "--master-addr", "127.0.0.1", "--master-port", Integer.toString(port), "--rdzv-timeout",
                    RDZV_HANG_GUARD, "join"))));
        }
        Run node1 = nodes.get(0).get();
        Run node0 = nodes.get(1).get();
        assertEquals(0, node0.code(), node0.err());
        assertEquals(0, node1.code(), node1.err());
        for (int rank = 0; rank < 4; rank++) {
            int node = rank / 2;
            String log = read(tmp.resolve("node" + node).resolve("rank-" + rank + ".log"));
            assertTrue(log.contains("worker rank " + rank + " of 4, local " + rank % 2 + " of 2, node " + node), log);
            assertTrue(log.contains("rank " + rank + " of 4 joined the store with all 4 ranks"), log);
        }
        assertTrue(node0.out().contains("rank 0 of 4 joined"), node0.out());
        assertFalse(node1.out().contains("joined the store"), "node 1 shows no worker output: " + node1.out());
    }

    @Test
    void aFailedWorkerStopsTheOthersAndIsReportedWithItsLastLines() throws IOException {
        Path logs = tmp.resolve("logs");
        // Rank 0 waits until stopped (TestWorker): that this returns at all shows the launcher stopped it.
        Run r = launch(args(logs, "--nproc-per-node", "2", "fail", "1", "3"));
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("worker rank 1 (local rank 1 on node 0) failed with exit code 3; last lines of "
                + logs.toAbsolutePath().resolve("rank-1.log")), r.err());
        // The last 20 of its 30 lines, no more.
        assertTrue(r.err().contains("  | line 30") && r.err().contains("  | line 11\n"), r.err());
        assertFalse(r.err().contains("  | line 10\n"), r.err());
        Matcher pid = Pattern.compile("pid (\\d+)").matcher(read(logs.resolve("rank-0.log")));
        assertTrue(pid.find(), "rank 0 started");
        assertTrue(r.out().contains("started worker rank 0 (local rank 0 on node 0) as pid " + pid.group(1) + "\n"),
                "the launcher names each rank's pid: " + r.out());
        assertFalse(ProcessHandle.of(Long.parseLong(pid.group(1))).map(ProcessHandle::isAlive).orElse(false),
                "rank 0 was killed");
    }

    @Test
    void maxRestartsRestartsTheGroupWhichResumes() throws IOException {
        Path logs = tmp.resolve("logs");
        Run r = launch(args(logs, "--nproc-per-node", "2", "--max-restarts", "1", "fail", "1", "3", "first",
                tmp.toString()));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("failed with exit code 3"), r.err());
        assertTrue(r.err().contains("restarting the worker group (restart 1 of 1)"), r.err());
        String log = read(logs.resolve("rank-1.log"));
        assertTrue(log.contains("attempt 0") && log.contains("attempt 1"), "a restart appends to the log: " + log);
        assertTrue(log.contains("restart 1") && log.contains("resumed from step 5"), log);
    }

    @Test
    void withoutRestartsLeftTheFailureEndsTheJob() throws IOException {
        Run r = launch(args(tmp.resolve("logs"), "--nproc-per-node", "1", "--max-restarts", "0", "fail", "0", "7",
                "first", tmp.toString()));
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("worker rank 0 (local rank 0 on node 0) failed with exit code 7"), r.err());
        assertFalse(r.err().contains("restarting"), r.err());
    }

    @Test
    void aPeerThatNeverArrivesIsAClearTimeout() throws IOException {
        Run r = launch(args(tmp.resolve("logs"), "--nproc-per-node", "1", "--nnodes", "2", "--node-rank", "0",
                "--master-port", Integer.toString(freePort()), "--rdzv-timeout", "1", "join"));
        assertEquals(1, r.code());
        assertTrue(r.err().contains("node 1 of 2 never arrived within 1 s"), r.err());
        assertFalse(Files.exists(tmp.resolve("logs/rank-0.log")), "no worker starts before the rendezvous");
    }

    @Test
    void aNodeWithoutMasterIsAClearTimeout() throws IOException {
        Run r = launch(args(tmp.resolve("logs"), "--nproc-per-node", "1", "--nnodes", "2", "--node-rank", "1",
                "--master-port", Integer.toString(freePort()), "--rdzv-timeout", "1", "join"));
        assertEquals(1, r.code());
        assertTrue(r.err().contains("no store at 127.0.0.1:") && r.err().contains("after 1 s"), r.err());
    }

    @Test
    void aTakenPortIsAClearError() throws IOException {
        try (var taken = new ServerSocket()) {
            taken.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            int port = taken.getLocalPort();
            Run r = launch(args(tmp.resolve("logs"), "--nproc-per-node", "1", "--master-addr", "127.0.0.1",
                    "--master-port", Integer.toString(port), "join"));
            assertEquals(1, r.code());
            assertTrue(r.err().contains("port " + port + " is taken on 127.0.0.1: choose another --master-port"),
                    r.err());
        }
    }

    @Test
    void nodesThatDisagreeOnTheWorldSizeAreAClearError() throws Exception {
        int port = freePort();
        List<CompletableFuture<Run>> nodes = new ArrayList<>();
        for (int node = 0; node < 2; node++) {
            String nproc = node == 0 ? "2" : "1";
            String rank = Integer.toString(node);
            nodes.add(inThread(() -> launch(args(tmp.resolve("logs"), "--nproc-per-node", nproc,
                    "--nnodes", "2", "--node-rank", rank, "--master-port", Integer.toString(port),
                    "--rdzv-timeout", RDZV_HANG_GUARD, "join"))));
        }
        for (CompletableFuture<Run> f : nodes) {
            Run r = f.get();
            assertEquals(1, r.code(), r.out());
            assertTrue(r.err().contains("wrong world size: node 1 says --nproc-per-node 1 but node 0 says "
                    + "--nproc-per-node 2"), r.err());
        }
    }

    /** Two node launchers of 2 workers each on loopback, logs in {@code tmp/nodeN}, with {@code rest} appended. */
    private List<Run> twoNodes(String... rest) throws Exception {
        int port = freePort();
        List<CompletableFuture<Run>> nodes = new ArrayList<>();
        for (int node = 0; node < 2; node++) {
            List<String> a = new ArrayList<>(List.of("--nproc-per-node", "2", "--nnodes", "2", "--node-rank",
                    Integer.toString(node), "--master-port", Integer.toString(port), "--rdzv-timeout", RDZV_HANG_GUARD));
            a.addAll(List.of(rest));
            String[] argv = args(tmp.resolve("node" + node), a.toArray(String[]::new));
            nodes.add(inThread(() -> launch(argv)));
        }
        return List.of(nodes.get(0).get(), nodes.get(1).get());
    }

    @Test
    void aFailureOnOneNodeStopsEveryNode() throws Exception {
        List<Run> nodes = twoNodes("fail", "3", "5");
        Run node0 = nodes.get(0);
        Run node1 = nodes.get(1);
        assertEquals(1, node1.code(), node1.err());
        assertTrue(node1.err().contains("worker rank 3 (local rank 1 on node 1) failed with exit code 5"), node1.err());
        assertEquals(1, node0.code(), node0.err());
        assertTrue(node0.err().contains("node 0 stopped its workers because the job failed elsewhere")
                && node0.err().contains("worker rank 3 (local rank 1 on node 1) failed with exit code 5")
                && node0.err().contains("  | line 30"), node0.err());
    }

    @Test
    void aFailureOnOneNodeRestartsTheWorkersOfEveryNode() throws Exception {
        List<Run> nodes = twoNodes("--max-restarts", "1", "fail", "3", "5", "first", tmp.toString());
        Run node0 = nodes.get(0);
        Run node1 = nodes.get(1);
        assertEquals(0, node0.code(), node0.err());
        assertEquals(0, node1.code(), node1.err());
        assertTrue(node1.err().contains("worker rank 3 (local rank 1 on node 1) failed with exit code 5"), node1.err());
        assertTrue(node0.err().contains("node 0 stopped its workers because the job failed elsewhere"), node0.err());
        for (Run r : List.of(node0, node1)) {
            assertTrue(r.err().contains("restarting the worker group (restart 1 of 1)"), r.err());
        }
        // Every rank of both nodes ran a second attempt, and the failed one resumed from its "checkpoint".
        for (int rank = 0; rank < 4; rank++) {
            String log = read(tmp.resolve("node" + rank / 2).resolve("rank-" + rank + ".log"));
            assertTrue(log.contains("attempt 0") && log.contains("attempt 1") && log.contains("restart 1"), log);
        }
        assertTrue(read(tmp.resolve("node1/rank-3.log")).contains("resumed from step 5"));
    }

    @Test
    void sigtermToTheLauncherStopsTheWorkers() throws Exception {
        Path logs = tmp.resolve("logs");
        List<String> cmd = Launcher.workerCommand("dev.jtune.trainer.cli.Main",
                List.of(args(logs, "--nproc-per-node", "1", "fail", "9", "1")));
        Path console = tmp.resolve("launcher.out"); // destroy() closes the pipes: keep the output in a file
        Process launcher = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(console.toFile()).start();
        Path log = logs.resolve("rank-0.log");
        // Wait for the worker's line (an event): the launcher has its handlers and its worker by then.
        while (!(Files.exists(log) && read(log).contains("pid "))) {
            assertTrue(launcher.isAlive(), "the launcher ended early: " + read(console));
            Thread.sleep(50);
        }
        Matcher pid = Pattern.compile("pid (\\d+)").matcher(read(log));
        assertTrue(pid.find(), "the worker started: " + read(log));
        launcher.destroy(); // SIGTERM
        assertTrue(launcher.waitFor(10, java.util.concurrent.TimeUnit.MINUTES), "the launcher exits (hang guard)");
        String output = read(console);
        assertEquals(143, launcher.exitValue(), output);
        assertTrue(output.contains("node 0 got SIGTERM; stopped its workers"), output);
        assertFalse(ProcessHandle.of(Long.parseLong(pid.group(1))).map(ProcessHandle::isAlive).orElse(false),
                "the worker was stopped");
    }
}
