package dev.jtune.trainer.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Torch;
import java.net.ServerSocket;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

class ProcessGroupsTest {
    @Test
    void aWorldOfOneIsTheSingleGroup() {
        assertEquals(1, ProcessGroups.forEnvironment(DistEnv.SINGLE).worldSize());
    }

    /** Without a launcher's store (as under srun) rank 0 serves one; both ranks meet there and reduce. */
    @Test
    void ranksMeetThroughTheStoreAtTheMasterAddress() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        int p = port;
        var ranks = new java.util.ArrayList<CompletableFuture<float[]>>();
        // Its own threads: the common pool may have a single worker on a 2-core machine, and ranks must run together.
        var pool = java.util.concurrent.Executors.newFixedThreadPool(2);
        for (int r = 0; r < 2; r++) {
            int rank = r;
            ranks.add(CompletableFuture.supplyAsync(() -> {
                Map<String, String> vars = Map.of("WORLD_SIZE", "2", "RANK", Integer.toString(rank), "LOCAL_RANK",
                        Integer.toString(rank), "LOCAL_WORLD_SIZE", "2", "MASTER_ADDR", "127.0.0.1", "MASTER_PORT",
                        Integer.toString(p), "JTUNE_DIST_TIMEOUT", "600"); // a hang guard only
                try (ProcessGroup g = ProcessGroups.forEnvironment(DistEnv.from(vars), vars);
                        NDManager m = Torch.newManager()) {
                    NDArray x = m.create(new float[] {rank + 1, 10 * (rank + 1)});
                    g.allReduceSum(x);
                    return x.toFloatArray();
                }
            }, pool));
        }
        try {
            for (var f : ranks) {
                assertArrayEquals(new float[] {3, 30}, f.get());
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
