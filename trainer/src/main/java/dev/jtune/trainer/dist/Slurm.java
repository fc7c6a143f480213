package dev.jtune.trainer.dist;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Slurm's task variables ({@code srun} sets them for every task): {@code SLURM_PROCID}, {@code SLURM_NTASKS},
 * {@code SLURM_LOCALID}, {@code SLURM_NODEID}, {@code SLURM_TASKS_PER_NODE} and the compact host list
 * {@code SLURM_JOB_NODELIST} ({@code node[01-03],gpu5}).
 */
public final class Slurm {
    /** torchrun's (and torch.distributed's) customary port when none is given. */
    public static final int DEFAULT_PORT = 29500;

    private Slurm() {}

    /** Whether {@code env} is that of an {@code srun} task. */
    public static boolean isTask(Map<String, String> env) {
        return env.containsKey("SLURM_PROCID") && env.containsKey("SLURM_NTASKS");
    }

    /** This task's place in the job, {@code MASTER_ADDR} defaulting to the first host of the node list. */
    static DistEnv distEnv(Map<String, String> env) {
        int rank = integer(env, "SLURM_PROCID");
        int world = integer(env, "SLURM_NTASKS");
        int localRank = env.containsKey("SLURM_LOCALID") ? integer(env, "SLURM_LOCALID") : 0;
        int localWorld = tasksOnThisNode(env, world);
        String master = env.containsKey("MASTER_ADDR") ? env.get("MASTER_ADDR") : firstHost(env);
        int port = env.containsKey("MASTER_PORT") ? integer(env, "MASTER_PORT") : DEFAULT_PORT;
        return new DistEnv(rank, localRank, world, localWorld, master, port);
    }

    /** The first host of {@code SLURM_JOB_NODELIST} (or {@code SLURM_NODELIST}); 127.0.0.1 without either. */
    public static String firstHost(Map<String, String> env) {
        String list = env.getOrDefault("SLURM_JOB_NODELIST", env.get("SLURM_NODELIST"));
        if (list == null || list.isBlank()) {
            return "127.0.0.1";
        }
        return hosts(list).get(0);
    }

    /**
     * Expands Slurm's compact host list: {@code node[01-03,07],gpu5} is node01, node02, node03, node07, gpu5;
     * zero padding is kept, and several bracket groups in one name multiply ({@code r[1-2]n[1-2]}).
     *
     * @throws DistException naming the list for unbalanced brackets or a bad range
     */
    public static List<String> hosts(String nodelist) {
        List<String> out = new ArrayList<>();
        for (String item : splitTopLevel(nodelist, nodelist)) {
            if (!item.isEmpty()) {
                expand(item, nodelist, out);
            }
        }
        if (out.isEmpty()) {
            throw new DistException("SLURM_JOB_NODELIST='" + nodelist + "' names no host");
        }
        return out;
    }

    private static void expand(String item, String whole, List<String> out) {
        int open = item.indexOf('[');
        if (open < 0) {
            if (item.indexOf(']') >= 0) {
                throw new DistException("SLURM_JOB_NODELIST='" + whole + "': unbalanced ']' in '" + item + "'");
            }
            out.add(item);
            return;
        }
        int close = item.indexOf(']', open);
        if (close < 0) {
            throw new DistException("SLURM_JOB_NODELIST='" + whole + "': '[' without ']' in '" + item + "'");
        }
        String prefix = item.substring(0, open);
        String suffix = item.substring(close + 1);
        for (String range : item.substring(open + 1, close).split(",")) {
            String[] ends = range.split("-", -1);
            if (ends.length > 2 || ends[0].isEmpty() || !digits(ends[0]) || (ends.length == 2 && !digits(ends[1]))) {
                throw new DistException("SLURM_JOB_NODELIST='" + whole + "': bad range '" + range
                        + "' (expected N or N-M)");
            }
            long from = Long.parseLong(ends[0]);
            long to = ends.length == 2 ? Long.parseLong(ends[1]) : from;
            if (to < from) {
                throw new DistException("SLURM_JOB_NODELIST='" + whole + "': range '" + range + "' runs backwards");
            }
            int width = ends[0].length();
            for (long i = from; i <= to; i++) {
                String n = Long.toString(i);
                String padded = "0".repeat(Math.max(0, width - n.length())) + n;
                expand(prefix + padded + suffix, whole, out);
            }
        }
    }

    private static boolean digits(String s) {
        return !s.isEmpty() && s.chars().allMatch(Character::isDigit);
    }

    /** Splits at commas outside brackets. */
    private static List<String> splitTopLevel(String s, String whole) {
        List<String> parts = new ArrayList<>();
        int depth = 0;
        int start = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '[') {
                depth++;
            } else if (c == ']') {
                depth--;
            } else if (c == ',' && depth == 0) {
                parts.add(s.substring(start, i).strip());
                start = i + 1;
            }
            if (depth < 0 || depth > 1) {
                throw new DistException("SLURM_JOB_NODELIST='" + whole + "': unbalanced brackets");
            }
        }
        parts.add(s.substring(start).strip());
        return parts;
    }

    /**
     * The tasks on this node: {@code SLURM_TASKS_PER_NODE} ({@code 4(x2),3}: four on each of the first two
     * nodes, three on the third) at {@code SLURM_NODEID}; else {@code SLURM_NTASKS_PER_NODE}; else an even split.
     */
    private static int tasksOnThisNode(Map<String, String> env, int world) {
        int node = env.containsKey("SLURM_NODEID") ? integer(env, "SLURM_NODEID") : 0;
        String perNode = env.get("SLURM_TASKS_PER_NODE");
        if (perNode != null && !perNode.isBlank()) {
            List<Integer> counts = tasksPerNode(perNode);
            if (node >= counts.size()) {
                throw new DistException("SLURM_NODEID=" + node + " but SLURM_TASKS_PER_NODE='" + perNode + "' lists "
                        + counts.size() + " node(s)");
            }
            return counts.get(node);
        }
        if (env.containsKey("SLURM_NTASKS_PER_NODE")) {
            return integer(env, "SLURM_NTASKS_PER_NODE");
        }
        int nodes = env.containsKey("SLURM_NNODES") ? integer(env, "SLURM_NNODES") : 1;
        if (world % nodes != 0) {
            throw new DistException("SLURM_NTASKS=" + world + " tasks do not split evenly over SLURM_NNODES=" + nodes
                    + " nodes, and SLURM_TASKS_PER_NODE is not set");
        }
        return world / nodes;
    }

    /** {@code SLURM_TASKS_PER_NODE} expanded: {@code 2(x3),1} is [2, 2, 2, 1]. */
    static List<Integer> tasksPerNode(String value) {
        List<Integer> out = new ArrayList<>();
        for (String part : value.split(",")) {
            String p = part.strip();
            var m = java.util.regex.Pattern.compile("(\\d+)(?:\\(x(\\d+)\\))?").matcher(p);
            if (!m.matches()) {
                throw new DistException("SLURM_TASKS_PER_NODE='" + value + "': cannot read '" + p
                        + "' (expected N or N(xK))");
            }
            int n = Integer.parseInt(m.group(1));
            int times = m.group(2) == null ? 1 : Integer.parseInt(m.group(2));
            for (int i = 0; i < times; i++) {
                out.add(n);
            }
        }
        return out;
    }

    private static int integer(Map<String, String> env, String name) {
        String v = env.get(name);
        if (v == null) {
            throw new DistException("environment variable " + name + " is not set (other SLURM_* variables are)");
        }
        try {
            return Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            throw new DistException("environment variable " + name + "=" + v + " is not an integer");
        }
    }
}
