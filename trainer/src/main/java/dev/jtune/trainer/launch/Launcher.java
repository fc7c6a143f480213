package dev.jtune.trainer.launch;

import dev.jtune.data.config.TrainConfig;
import dev.jtune.trainer.dist.DistException;
import dev.jtune.trainer.dist.Store;
import dev.jtune.trainer.dist.TcpStore;
import dev.jtune.trainer.dist.TcpStoreServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArraySet;
import java.util.concurrent.TimeUnit;

/**
 * torchrun for jtune: {@code ./launch.sh --nproc-per-node N [--nnodes M --node-rank R --master-addr HOST
 * --master-port PORT] CONFIG.yml}. Node 0's launcher serves the {@link TcpStoreServer} at
 * {@code --master-addr:--master-port}; every node's launcher meets the others there ({@link Rendezvous}), starts
 * its N worker JVMs (same java, classpath and JVM options as itself) with torchrun's variables, prints each one's
 * pid ({@code started worker rank K (local rank L on node N) as pid P}), and watches them.
 * A failed worker stops the whole job (on every node) and is reported with the end of its log; with
 * {@code --max-restarts K} the group is started again, up to K times, and resumes from its last checkpoint.
 *
 * <p>Job keys in the store, per generation G: {@code job/G/failed} (a counter; the first failing node also sets
 * {@code job/G/failure} to its report, starting "stop:" when no restart should follow), {@code job/G/done}
 * (nodes whose workers all exited 0) and {@code job/G/left} (nodes that stopped using the store, so that node
 * 0 can shut it down).
 */
public final class Launcher {
    /** How long stopped workers get to exit (and checkpoint) after SIGTERM before they are killed. */
    static final Duration GRACE = Duration.ofSeconds(10);
    /** Lines of a failed worker's log shown in the report. */
    static final int TAIL_LINES = 20;
    private static final long POLL_MILLIS = 100;
    private static final Duration PUMP_GUARD = Duration.ofMinutes(2);

    private static final Set<Launcher> RUNNING = new CopyOnWriteArraySet<>();
    private static volatile boolean signalsInstalled;

    private final LaunchOptions options;
    private final Map<String, String> env;
    private final PrintStream out;
    private final PrintStream err;
    private final Path logDir;
    private volatile String stopSignal;

    private Launcher(LaunchOptions options, Map<String, String> env, PrintStream out, PrintStream err, Path logDir) {
        this.options = options;
        this.env = env;
        this.out = out;
        this.err = err;
        this.logDir = logDir;
    }

    /** The command line {@code ./launch.sh --nproc-per-node ...}: returns the exit code (2 for bad flags). */
    public static int run(String[] argv, PrintStream out, PrintStream err) {
        LaunchOptions options;
        try {
            options = LaunchOptions.parse(argv, System.getenv());
        } catch (IllegalArgumentException | DistException e) {
            err.println("jtune launcher: " + e.getMessage());
            err.print(LaunchOptions.USAGE);
            return 2;
        }
        return run(options, System.getenv(), out, err);
    }

    /**
     * Runs the job on this node: rendezvous, workers, restarts. Returns 0 when every worker of the job exited 0,
     * 1 when the job failed (the report is on {@code err}), 128 + signal when stopped by SIGTERM/SIGINT.
     *
     * @param env this launcher's environment, which the workers inherit
     */
    public static int run(LaunchOptions options, Map<String, String> env, PrintStream out, PrintStream err) {
        Path logDir;
        try {
            logDir = logDir(options).toAbsolutePath().normalize();
            Files.createDirectories(logDir);
        } catch (IOException | RuntimeException e) {
            err.println("jtune launcher: " + e.getMessage());
            return 1;
        }
        Launcher l = new Launcher(options, env, out, err, logDir);
        installSignals();
        RUNNING.add(l);
        try {
            return l.run();
        } catch (DistException e) {
            err.println("jtune launcher (node " + options.nodeRank() + "): " + e.getMessage());
            return 1;
        } finally {
            RUNNING.remove(l);
        }
    }

    /** Where rank-K.log go: {@code --log-dir}, else the config's {@code output_dir/logs}, else {@code ./logs}. */
    static Path logDir(LaunchOptions o) {
        if (o.logDir().isPresent()) {
            return o.logDir().get();
        }
        for (String a : o.workerArgs()) {
            Path p = Path.of(a);
            if ((a.endsWith(".yml") || a.endsWith(".yaml")) && Files.isRegularFile(p)) {
                return TrainConfig.load(p).outputPath().resolve("logs");
            }
        }
        return Path.of("logs");
    }

    private int run() {
        boolean master = options.nodeRank() == 0;
        TcpStoreServer server = null;
        if (master) {
            InetSocketAddress bind = isLoopback(options.masterAddr())
                    ? new InetSocketAddress(InetAddress.getLoopbackAddress(), options.masterPort())
                    : new InetSocketAddress(options.masterPort());
            server = TcpStoreServer.start(options.masterAddr(), bind);
        }
        int port = master ? server.port() : options.masterPort();
        int generation = 0;
        int ranGeneration = -1; // the generation whose workers ran: the others may still read its outcome
        try (Store store = TcpStore.connect(options.masterAddr(), port, options.rdzvTimeout())) {
            while (true) {
                ranGeneration = -1;
                Rendezvous.join(store, options, generation);
                ranGeneration = generation;
                if (generation == 0) {
                    out.printf("jtune launcher: node %d of %d, %d worker(s) here, world size %d, store %s:%d, logs in %s%n",
                            options.nodeRank(), options.nnodes(), options.nprocPerNode(), options.worldSize(),
                            options.masterAddr(), port, logDir);
                }
                Outcome outcome = runGeneration(store, port, generation);
                if (outcome instanceof Outcome.Succeeded) {
                    leave(store, generation);
                    return 0;
                }
                Outcome.Failed f = (Outcome.Failed) outcome;
                boolean restart = !f.stop() && generation < options.maxRestarts();
                if (!restart) {
                    err.println(f.report());
                    leave(store, generation);
                    return stopSignal != null ? 128 + ("INT".equals(stopSignal) ? 2 : 15) : 1;
                }
                err.println(f.report());
                generation++;
                err.printf("jtune launcher: restarting the worker group (restart %d of %d); workers resume from "
                        + "their last checkpoint (JTUNE_RESUME=auto)%n", generation, options.maxRestarts());
            }
        } finally {
            if (server != null) {
                awaitLeft(port, ranGeneration);
                server.close();
            }
        }
    }

    private static boolean isLoopback(String host) {
        try {
            return InetAddress.getByName(host).isLoopbackAddress();
        } catch (IOException e) {
            return false;
        }
    }

    /** How one generation ended. */
    private sealed interface Outcome {
        record Succeeded() implements Outcome {}

        /** @param stop no restart should follow (a signal, not a failure) */
        record Failed(String report, boolean stop) implements Outcome {}
    }

    private record Worker(int localRank, int rank, Process process, Thread pump, Path log) {}

    private Outcome runGeneration(Store store, int port, int generation) {
        String job = "job/" + generation + "/";
        List<Worker> workers = new ArrayList<>();
        var exits = new ConcurrentLinkedQueue<Worker>();
        Thread hook = new Thread(() -> workers.forEach(w -> w.process().destroyForcibly()));
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            for (int local = 0; local < options.nprocPerNode(); local++) {
                Worker w = start(local, port, generation);
                workers.add(w);
                w.process().onExit().thenRun(() -> exits.add(w));
            }
            boolean reportedDone = false;
            long nextStoreCheck = 0;
            while (true) {
                if (stopSignal != null) {
                    String report = "jtune launcher: node " + options.nodeRank() + " got SIG" + stopSignal
                            + "; stopped its workers";
                    publishFailure(store, job, "stop:" + report);
                    stop(workers);
                    return new Outcome.Failed(report, true);
                }
                for (Worker w : exits) {
                    int code = w.process().exitValue();
                    if (code != 0) {
                        String report = report(w, code);
                        publishFailure(store, job, report);
                        stop(workers);
                        return new Outcome.Failed(report, false);
                    }
                }
                if (!reportedDone && exits.size() == workers.size()) {
                    store.add(job + "done", 1);
                    reportedDone = true;
                }
                long now = System.nanoTime();
                if (now - nextStoreCheck >= 0) {
                    nextStoreCheck = now + TimeUnit.MILLISECONDS.toNanos(options.nnodes() > 1 ? 300 : 0);
                    if (store.add(job + "failed", 0) > 0) {
                        stop(workers);
                        // Set right after the flag by the node that raised it: the timeout only guards a hang.
                        String failure = new String(store.get(job + "failure", options.rdzvTimeout()),
                                StandardCharsets.UTF_8);
                        boolean noRestart = failure.startsWith("stop:");
                        String text = noRestart ? failure.substring(5) : failure;
                        return new Outcome.Failed("jtune launcher: node " + options.nodeRank()
                                + " stopped its workers because the job failed elsewhere:\n" + text, noRestart);
                    }
                    if (reportedDone && store.add(job + "done", 0) >= options.nnodes()) {
                        for (Worker w : workers) {
                            join(w.pump());
                        }
                        return new Outcome.Succeeded();
                    }
                }
                Thread.sleep(POLL_MILLIS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            stop(workers);
            return new Outcome.Failed("jtune launcher: interrupted", true);
        } catch (IOException e) {
            stop(workers);
            return new Outcome.Failed("jtune launcher: cannot start a worker: " + e.getMessage(), true);
        } catch (DistException e) {
            stop(workers);
            return new Outcome.Failed("jtune launcher (node " + options.nodeRank() + "): " + e.getMessage(), true);
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // shutting down: the hook runs
            }
        }
    }

    /** Only the first failure of a generation is published; later ones are its consequences. */
    private static void publishFailure(Store store, String job, String report) {
        try {
            if (store.add(job + "failed", 1) == 1) {
                store.set(job + "failure", report.getBytes(StandardCharsets.UTF_8));
            }
        } catch (DistException e) {
            // the store is gone: the other nodes learn it from their own lost connection
        }
    }

    private Worker start(int localRank, int port, int generation) throws IOException {
        int rank = options.nodeRank() * options.nprocPerNode() + localRank;
        Path log = logDir.resolve("rank-" + rank + ".log");
        List<String> command = workerCommand(options.mainClass(), options.workerArgs());
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        Map<String, String> e = pb.environment();
        e.clear();
        e.putAll(env);
        e.put("RANK", Integer.toString(rank));
        e.put("LOCAL_RANK", Integer.toString(localRank));
        e.put("WORLD_SIZE", Integer.toString(options.worldSize()));
        e.put("LOCAL_WORLD_SIZE", Integer.toString(options.nprocPerNode()));
        e.put("GROUP_RANK", Integer.toString(options.nodeRank()));
        e.put("GROUP_WORLD_SIZE", Integer.toString(options.nnodes()));
        e.put("MASTER_ADDR", options.masterAddr());
        e.put("MASTER_PORT", Integer.toString(port));
        e.put("JTUNE_AGENT_STORE", "1");
        e.put("JTUNE_RESTART_COUNT", Integer.toString(generation));
        e.put("TORCHELASTIC_RESTART_COUNT", Integer.toString(generation));
        e.put("TORCHELASTIC_MAX_RESTARTS", Integer.toString(options.maxRestarts()));
        e.put("JTUNE_LAUNCHER_PID", Long.toString(ProcessHandle.current().pid()));
        if (generation > 0) {
            e.put("JTUNE_RESUME", "auto");
        }
        String header = String.format("==== jtune launcher: rank %d (local rank %d on node %d), attempt %d ====%n",
                rank, localRank, options.nodeRank(), generation);
        // A new job starts its logs afresh; a restart appends, so that the failure stays readable.
        Files.writeString(log, header, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                generation == 0 ? StandardOpenOption.TRUNCATE_EXISTING : StandardOpenOption.APPEND);
        Process p = pb.start();
        // Which JVM is which rank (their command lines are the same): for ps/kill by hand, and for tests.
        out.printf("jtune launcher: started worker rank %d (local rank %d on node %d) as pid %d%n", rank, localRank,
                options.nodeRank(), p.pid());
        OutputStream console = rank == 0 ? out : null;
        Thread pump = Thread.ofPlatform().daemon().name("rank-" + rank + "-log")
                .start(() -> pump(p.getInputStream(), log, console));
        return new Worker(localRank, rank, p, pump, log);
    }

    /** Copies a worker's output into its log (and rank 0's to the console too). */
    private static void pump(InputStream in, Path log, OutputStream console) {
        try (in; OutputStream file = Files.newOutputStream(log, StandardOpenOption.APPEND)) {
            byte[] buf = new byte[8192];
            int n;
            while ((n = in.read(buf)) >= 0) {
                file.write(buf, 0, n);
                file.flush();
                if (console != null) {
                    console.write(buf, 0, n);
                    console.flush();
                }
            }
        } catch (IOException e) {
            // the worker is gone; its log has what it wrote
        }
    }

    /**
     * The command that starts a worker: this JVM's java, JVM options and classpath, then {@code mainClass} and
     * the worker's arguments.
     */
    static List<String> workerCommand(String mainClass, List<String> args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            // A debugger agent would make every worker fight for the launcher's debug port.
            if (!a.startsWith("-agentlib:jdwp") && !a.startsWith("-Xrunjdwp")) {
                cmd.add(a);
            }
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(mainClass);
        cmd.addAll(args);
        return cmd;
    }

    /** SIGTERM to every live worker, then SIGKILL to those still alive after {@link #GRACE}. */
    private static void stop(List<Worker> workers) {
        for (Worker w : workers) {
            w.process().destroy();
        }
        long deadline = System.nanoTime() + GRACE.toNanos();
        for (Worker w : workers) {
            try {
                if (!w.process().waitFor(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                    w.process().destroyForcibly().waitFor(5, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                w.process().destroyForcibly();
                Thread.currentThread().interrupt();
            }
            join(w.pump());
        }
    }

    /**
     * Waits for a worker's log pump, which ends at its output's end of file (the worker has exited, or been killed,
     * by now). A report reads the log after this, so a short bound would cut its last lines on a busy machine; the
     * bound only guards against a stray process that inherited the worker's output and keeps it open.
     */
    private static void join(Thread t) {
        try {
            t.join(PUMP_GUARD);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private String report(Worker w, int code) {
        join(w.pump());
        String how = code > 128 ? " (killed by signal " + (code - 128) + ")" : "";
        var sb = new StringBuilder();
        sb.append(String.format("jtune launcher: worker rank %d (local rank %d on node %d) failed with exit code %d%s;"
                + " last lines of %s:%n", w.rank(), w.localRank(), options.nodeRank(), code, how, w.log()));
        for (String line : tail(w.log(), TAIL_LINES)) {
            sb.append("  | ").append(line).append('\n');
        }
        return sb.toString().stripTrailing();
    }

    static List<String> tail(Path file, int n) {
        try {
            List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
            return lines.subList(Math.max(0, lines.size() - n), lines.size());
        } catch (IOException e) {
            return List.of("(cannot read " + file + ": " + e.getMessage() + ")");
        }
    }

    /** Tells node 0 that this node is done with the store (node 0 itself does not count). */
    private void leave(Store store, int generation) {
        if (options.nodeRank() != 0) {
            try {
                store.add("job/" + generation + "/left", 1);
            } catch (DistException e) {
                // node 0 is gone already
            }
        }
    }

    /**
     * Node 0 keeps the store up until the other nodes have read the outcome. They do so within a poll or two, so
     * this ends by their leaving; {@code --rdzv-timeout} (how long nodes wait for each other) only bounds the wait
     * for a node that died. A fixed few seconds would let a busy machine's node 1 find the store gone and report
     * a lost store instead of the job's outcome.
     */
    private void awaitLeft(int port, int generation) {
        if (options.nnodes() == 1 || generation < 0) {
            return;
        }
        long deadline = System.nanoTime() + options.rdzvTimeout().toNanos();
        try (Store s = TcpStore.connect(options.masterAddr(), port, options.rdzvTimeout())) {
            while (s.add("job/" + generation + "/left", 0) < options.nnodes() - 1 && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
        } catch (DistException e) {
            // nothing to wait for
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** SIGTERM and SIGINT stop the workers of every running launcher (they get {@link #GRACE} to checkpoint). */
    private static synchronized void installSignals() {
        if (signalsInstalled) {
            return;
        }
        signalsInstalled = true;
        for (String name : List.of("TERM", "INT")) {
            try {
                sun.misc.Signal.handle(new sun.misc.Signal(name), s -> RUNNING.forEach(l -> l.stopSignal = name));
            } catch (IllegalArgumentException | UnsupportedOperationException e) {
                // signals not available here: the shutdown hook still kills the workers
            }
        }
    }

    /**
     * For a worker: exits this JVM when the launcher that started it ({@code JTUNE_LAUNCHER_PID}) is gone, so
     * that a killed launcher leaves no orphans. Does nothing outside the launcher.
     */
    public static void exitWithLauncher(Map<String, String> env) {
        String pid = env.get("JTUNE_LAUNCHER_PID");
        if (pid == null) {
            return;
        }
        try {
            ProcessHandle.of(Long.parseLong(pid.strip())).ifPresentOrElse(
                    h -> h.onExit().thenRun(() -> Runtime.getRuntime().halt(143)),
                    () -> Runtime.getRuntime().halt(143));
        } catch (NumberFormatException e) {
            // not ours
        }
    }
}
