package dev.jtune.trainer.launch;

import dev.jtune.trainer.dist.DistException;
import dev.jtune.trainer.dist.Store;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * The meeting of the node launchers before each attempt ({@code generation} 0, then one more per restart), over
 * the store node 0 serves. Every node publishes what it was told ({@code --nnodes}, {@code --nproc-per-node},
 * {@code --max-restarts}); node 0 waits for all of them, checks that they agree, and publishes the verdict that
 * the others wait for. Global ranks follow: {@code node_rank * nproc_per_node + local_rank}.
 *
 * <p>Keys: {@code rdzv/G/claim/R} (a counter that catches two launchers with one node rank),
 * {@code rdzv/G/node/R} ("nnodes nproc maxRestarts"), {@code rdzv/G/verdict} ("ok" or "error: ..."), and the
 * counters {@code rdzv/G/joined} and {@code rdzv/G/read} (nodes that read an error verdict, so that node 0 keeps the
 * store up until they have, however long that takes: {@code --rdzv-timeout} bounds it only for a node that died).
 */
final class Rendezvous {
    private Rendezvous() {}

    /**
     * Joins generation {@code generation}; returns when all {@code nnodes} nodes are there and agree.
     *
     * @throws DistException naming the node that never arrived within the timeout, or what disagrees
     */
    static void join(Store store, LaunchOptions o, int generation) {
        String prefix = "rdzv/" + generation + "/";
        long claims = store.add(prefix + "claim/" + o.nodeRank(), 1);
        if (claims > 1) {
            String message = "two launchers say --node-rank " + o.nodeRank() + " (give each node its own rank in [0, "
                    + o.nnodes() + "))";
            store.set(prefix + "verdict", ("error: " + message).getBytes(StandardCharsets.UTF_8));
            throw new DistException(message);
        }
        store.add(prefix + "joined", 1);
        String mine = o.nnodes() + " " + o.nprocPerNode() + " " + o.maxRestarts();
        store.set(prefix + "node/" + o.nodeRank(), mine.getBytes(StandardCharsets.UTF_8));
        long deadline = System.nanoTime() + o.rdzvTimeout().toNanos();
        if (o.nodeRank() == 0) {
            String error = null;
            for (int r = 1; r < o.nnodes() && error == null; r++) {
                String theirs;
                try {
                    theirs = text(store.get(prefix + "node/" + r, left(deadline)));
                } catch (DistException e) {
                    error = "node " + r + " of " + o.nnodes() + " never arrived within "
                            + o.rdzvTimeout().toSeconds() + " s (is its launcher running with --node-rank " + r
                            + " and able to reach " + o.masterAddr() + ":" + o.masterPort() + "? see --rdzv-timeout)";
                    break;
                }
                error = disagreement(mine, theirs, r);
            }
            store.set(prefix + "verdict", (error == null ? "ok" : "error: " + error).getBytes(StandardCharsets.UTF_8));
            if (error != null) {
                // The store closes with this launcher: first let the nodes that came read the verdict. They read
                // it as soon as it is set, so this ends by their reading; --rdzv-timeout only guards against a node
                // that died after joining (a fixed few seconds would lose the message on a busy machine).
                long until = System.nanoTime() + o.rdzvTimeout().toNanos();
                while (store.add(prefix + "read", 0) < store.add(prefix + "joined", 0) - 1 && System.nanoTime() < until) {
                    sleep();
                }
                throw new DistException(error);
            }
            return;
        }
        String verdict;
        try {
            verdict = text(store.get(prefix + "verdict", left(deadline)));
        } catch (DistException e) {
            throw new DistException("node 0 did not complete the rendezvous within " + o.rdzvTimeout().toSeconds()
                    + " s (other nodes missing?)", e);
        }
        if (!verdict.equals("ok")) {
            store.add(prefix + "read", 1);
            throw new DistException("rendezvous failed: " + verdict.substring("error: ".length()));
        }
        // Node 0 compares every node with itself; this node checks the other way, so that a node with a
        // larger --nnodes, whose extra ranks node 0 never reads, still learns what is wrong.
        String master = text(store.get(prefix + "node/0", o.rdzvTimeout())); // set before the verdict: no wait
        String error = disagreement(master, mine, o.nodeRank());
        if (error != null) {
            throw new DistException(error);
        }
    }

    /** What differs between node 0's settings and node {@code r}'s, or null. */
    private static String disagreement(String master, String theirs, int r) {
        String[] m = master.split(" ");
        String[] t = theirs.split(" ");
        String[] names = {"--nnodes", "--nproc-per-node", "--max-restarts"};
        for (int i = 0; i < names.length; i++) {
            if (!m[i].equals(t[i])) {
                String what = i < 2 ? "wrong world size: " : "";
                return what + "node " + r + " says " + names[i] + " " + t[i] + " but node 0 says " + names[i] + " "
                        + m[i] + " (every node must be launched with the same flags but --node-rank)";
            }
        }
        return null;
    }

    private static void sleep() {
        try {
            Thread.sleep(20);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new DistException("interrupted during the rendezvous", e);
        }
    }

    private static Duration left(long deadline) {
        return Duration.ofNanos(Math.max(0, deadline - System.nanoTime()));
    }

    private static String text(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }
}
