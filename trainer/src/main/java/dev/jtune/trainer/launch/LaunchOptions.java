package dev.jtune.trainer.launch;

import dev.jtune.trainer.dist.Slurm;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The launcher's flags (torchrun's, where they exist) and the worker's command line after them.
 *
 * @param nprocPerNode {@code --nproc-per-node N}: workers on this node
 * @param nnodes {@code --nnodes M} (default 1, or {@code SLURM_NNODES} under srun)
 * @param nodeRank {@code --node-rank R} in [0, nnodes) (default 0, or {@code SLURM_NODEID})
 * @param masterAddr {@code --master-addr HOST}: where node 0 serves the store (default 127.0.0.1, or the first
 *     host of {@code SLURM_JOB_NODELIST})
 * @param masterPort {@code --master-port PORT}; 0 picks a free one (the default on a single node, as torchrun's
 *     {@code --standalone}); 29500 for several nodes
 * @param maxRestarts {@code --max-restarts K}: restarts of the whole group after a failure (default 0)
 * @param rdzvTimeout {@code --rdzv-timeout SECONDS}: how long nodes wait for each other (default 300)
 * @param logDir {@code --log-dir DIR}: where rank-K.log go; empty means the config's output_dir/logs (or ./logs)
 * @param mainClass {@code --main-class CLASS}: the worker's Java main (default the jtune command line)
 * @param workerArgs the worker's arguments: everything after the launcher's flags ({@code CONFIG.yml} ...)
 */
public record LaunchOptions(int nprocPerNode, int nnodes, int nodeRank, String masterAddr, int masterPort,
        int maxRestarts, Duration rdzvTimeout, Optional<Path> logDir, String mainClass, List<String> workerArgs) {
    public static final String DEFAULT_MAIN = "dev.jtune.trainer.cli.Main";

    public static final String USAGE = """
            usage: ./launch.sh --nproc-per-node N [--nnodes M --node-rank R --master-addr HOST --master-port PORT]
                               [--max-restarts K] [--rdzv-timeout SECONDS] [--log-dir DIR] CONFIG.yml [more args]

            Starts N worker JVMs on this node (torchrun's flags and variables: RANK, LOCAL_RANK, WORLD_SIZE,
            LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT; also JTUNE_RESTART_COUNT). Run the same command on every
            node with its --node-rank: node 0 serves the rendezvous store at --master-addr:--master-port. Each
            worker's output goes to output_dir/logs/rank-K.log; rank 0's also to the console. When a worker fails,
            the others are stopped and the launcher exits non-zero naming the rank; --max-restarts K restarts the
            group (from the last checkpoint: restarted workers get JTUNE_RESUME=auto).
            --standalone: a single node on a free local port. --main-class CLASS runs another Java main.
            Under Slurm (srun, one task per node) --nnodes, --node-rank and --master-addr default from SLURM_*.
            """;

    public LaunchOptions {
        if (nprocPerNode < 1) {
            throw new IllegalArgumentException("--nproc-per-node must be at least 1, got " + nprocPerNode);
        }
        if (nnodes < 1) {
            throw new IllegalArgumentException("--nnodes must be at least 1, got " + nnodes);
        }
        if (nodeRank < 0 || nodeRank >= nnodes) {
            throw new IllegalArgumentException("--node-rank must be in [0, " + nnodes + ") for --nnodes " + nnodes
                    + ", got " + nodeRank);
        }
        if (masterPort < 0 || masterPort > 65535) {
            throw new IllegalArgumentException("--master-port must be in [0, 65535], got " + masterPort);
        }
        if (nnodes > 1 && masterPort == 0) {
            throw new IllegalArgumentException("--master-port 0 (a free port) works only on a single node; "
                    + "several nodes must agree on one");
        }
        if (maxRestarts < 0) {
            throw new IllegalArgumentException("--max-restarts must be >= 0, got " + maxRestarts);
        }
        if (rdzvTimeout.isNegative() || rdzvTimeout.isZero()) {
            throw new IllegalArgumentException("--rdzv-timeout must be positive, got " + rdzvTimeout.toSeconds());
        }
        workerArgs = List.copyOf(workerArgs);
        if (workerArgs.isEmpty() && mainClass.equals(DEFAULT_MAIN)) {
            throw new IllegalArgumentException("no worker command: expected CONFIG.yml (or a verb) after the "
                    + "launcher's flags");
        }
    }

    /** The number of workers in the job. */
    public int worldSize() {
        return nnodes * nprocPerNode;
    }

    /** Whether {@code argv} starts with a launcher flag, so that {@code Main} hands it to the {@link Launcher}. */
    public static boolean isLauncherCommand(String[] argv) {
        if (argv.length == 0) {
            return false;
        }
        String name = flagName(argv[0]);
        return FLAGS.contains(name) || name.equals("standalone");
    }

    private static final List<String> FLAGS = List.of("nproc-per-node", "nnodes", "node-rank", "master-addr",
            "master-port", "max-restarts", "rdzv-timeout", "log-dir", "main-class");

    private static String flagName(String arg) {
        if (!arg.startsWith("--")) {
            return "";
        }
        int eq = arg.indexOf('=');
        return (eq < 0 ? arg.substring(2) : arg.substring(2, eq)).replace('_', '-');
    }

    /**
     * Reads the launcher's flags up to the first word that is not one (the worker's command starts there, as
     * with torchrun), with defaults from {@code env} under Slurm.
     *
     * @throws IllegalArgumentException naming the flag and what was expected
     */
    public static LaunchOptions parse(String[] argv, Map<String, String> env) {
        Integer nproc = null;
        Integer nnodes = null;
        Integer nodeRank = null;
        String addr = null;
        Integer port = null;
        int maxRestarts = 0;
        long rdzvSeconds = 300;
        Path logDir = null;
        String mainClass = DEFAULT_MAIN;
        boolean standalone = false;
        int i = 0;
        for (; i < argv.length; i++) {
            String arg = argv[i];
            String name = flagName(arg);
            if (name.equals("standalone")) {
                standalone = true;
                continue;
            }
            if (!FLAGS.contains(name)) {
                if (arg.startsWith("--") && !arg.equals("--")) {
                    // Worker options come after the config; a flag here is most likely a launcher typo.
                    boolean looksLikeOurs = FLAGS.stream().anyMatch(f -> f.startsWith(name) || name.startsWith(f));
                    if (looksLikeOurs || i == 0) {
                        throw new IllegalArgumentException("unknown launcher flag " + arg + " (flags: --"
                                + String.join(", --", FLAGS) + ", --standalone)");
                    }
                }
                if (arg.equals("--")) {
                    i++;
                }
                break;
            }
            int eq = arg.indexOf('=');
            String value;
            if (eq >= 0) {
                value = arg.substring(eq + 1);
            } else {
                if (i + 1 >= argv.length) {
                    throw new IllegalArgumentException("--" + name + " needs a value");
                }
                value = argv[++i];
            }
            switch (name) {
                case "nproc-per-node" -> nproc = integer(name, value);
                case "nnodes" -> nnodes = integer(name, value);
                case "node-rank" -> nodeRank = integer(name, value);
                case "master-addr" -> addr = value;
                case "master-port" -> port = integer(name, value);
                case "max-restarts" -> maxRestarts = integer(name, value);
                case "rdzv-timeout" -> rdzvSeconds = integer(name, value);
                case "log-dir" -> logDir = Path.of(value);
                case "main-class" -> mainClass = value;
                default -> throw new AssertionError(name);
            }
        }
        boolean slurm = Slurm.isTask(env);
        if (nproc == null) {
            throw new IllegalArgumentException("--nproc-per-node N is required (workers on this node, e.g. one per GPU)");
        }
        if (nnodes == null) {
            nnodes = slurm && env.containsKey("SLURM_NNODES") ? integer("SLURM_NNODES", env.get("SLURM_NNODES")) : 1;
        }
        if (nodeRank == null) {
            nodeRank = slurm && env.containsKey("SLURM_NODEID") ? integer("SLURM_NODEID", env.get("SLURM_NODEID")) : 0;
        }
        if (standalone && nnodes != 1) {
            throw new IllegalArgumentException("--standalone is a single node; it cannot go with --nnodes " + nnodes);
        }
        if (addr == null) {
            addr = env.containsKey("MASTER_ADDR") ? env.get("MASTER_ADDR") : slurm ? Slurm.firstHost(env) : "127.0.0.1";
        }
        if (port == null) {
            port = standalone || nnodes == 1 ? 0
                    : env.containsKey("MASTER_PORT") ? integer("MASTER_PORT", env.get("MASTER_PORT")) : Slurm.DEFAULT_PORT;
        }
        return new LaunchOptions(nproc, nnodes, nodeRank, addr, port, maxRestarts, Duration.ofSeconds(rdzvSeconds),
                Optional.ofNullable(logDir), mainClass, Arrays.asList(argv).subList(i, argv.length));
    }

    private static int integer(String name, String value) {
        try {
            return Integer.parseInt(value.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " expects an integer, got '" + value + "'");
        }
    }
}
