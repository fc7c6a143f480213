package dev.jtune.trainer.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SlurmTest {
    @Test
    void expandsCompactNodeLists() {
        assertEquals(List.of("node01", "node02", "node03", "gpu5"), Slurm.hosts("node[01-03],gpu5"));
        assertEquals(List.of("a"), Slurm.hosts("a"));
        assertEquals(List.of("n8", "n9", "n10", "n12"), Slurm.hosts("n[8-10,12]"));
        assertEquals(List.of("x007", "x008"), Slurm.hosts("x[007-008]"));
        assertEquals(List.of("r1n1", "r1n2", "r2n1", "r2n2"), Slurm.hosts("r[1-2]n[1-2]"));
        assertEquals(List.of("gpu-a1", "cpu3", "cpu4"), Slurm.hosts("gpu-a1,cpu[3-4]"));
    }

    @Test
    void badNodeListsAreClearErrors() {
        assertTrue(assertThrows(DistException.class, () -> Slurm.hosts("node[01-03")).getMessage()
                .contains("SLURM_JOB_NODELIST='node[01-03'"));
        assertTrue(assertThrows(DistException.class, () -> Slurm.hosts("node[3-1]")).getMessage()
                .contains("runs backwards"));
        assertTrue(assertThrows(DistException.class, () -> Slurm.hosts("node[a-b]")).getMessage()
                .contains("bad range 'a-b'"));
    }

    @Test
    void tasksPerNode() {
        assertEquals(List.of(2, 2, 2, 1), Slurm.tasksPerNode("2(x3),1"));
        assertEquals(List.of(4), Slurm.tasksPerNode("4"));
    }

    private static Map<String, String> slurm(int procId, int localId, int nodeId) {
        Map<String, String> env = new HashMap<>();
        env.put("SLURM_PROCID", Integer.toString(procId));
        env.put("SLURM_NTASKS", "8");
        env.put("SLURM_LOCALID", Integer.toString(localId));
        env.put("SLURM_NODEID", Integer.toString(nodeId));
        env.put("SLURM_NNODES", "2");
        env.put("SLURM_TASKS_PER_NODE", "4(x2)");
        env.put("SLURM_JOB_NODELIST", "gpu[07-08]");
        return env;
    }

    @Test
    void distEnvFromSlurmTasks() {
        for (int rank = 0; rank < 8; rank++) {
            DistEnv d = DistEnv.from(slurm(rank, rank % 4, rank / 4));
            assertEquals(new DistEnv(rank, rank % 4, 8, 4, "gpu07", 29500), d);
        }
        var env = slurm(5, 1, 1);
        env.put("MASTER_ADDR", "10.0.0.1");
        env.put("MASTER_PORT", "1234");
        assertEquals(new DistEnv(5, 1, 8, 4, "10.0.0.1", 1234), DistEnv.from(env));
        env.remove("SLURM_TASKS_PER_NODE");
        assertEquals(4, DistEnv.from(env).localWorldSize()); // 8 tasks over SLURM_NNODES=2
    }

    @Test
    void torchrunVariablesTakePrecedenceOverSlurm() {
        var env = slurm(5, 1, 1);
        env.putAll(Map.of("RANK", "2", "LOCAL_RANK", "0", "WORLD_SIZE", "3", "LOCAL_WORLD_SIZE", "1",
                "MASTER_ADDR", "h", "MASTER_PORT", "7"));
        assertEquals(new DistEnv(2, 0, 3, 1, "h", 7), DistEnv.from(env));
        assertEquals(DistEnv.SINGLE, DistEnv.from(Map.of()));
    }

    @Test
    void inconsistentSlurmVariablesAreClearErrors() {
        var env = slurm(5, 1, 3);
        var e = assertThrows(DistException.class, () -> DistEnv.from(env));
        assertTrue(e.getMessage().contains("SLURM_NODEID=3 but SLURM_TASKS_PER_NODE='4(x2)' lists 2 node(s)"),
                e.getMessage());
        env.put("SLURM_NODEID", "1");
        env.put("SLURM_PROCID", "x");
        assertTrue(assertThrows(DistException.class, () -> DistEnv.from(env)).getMessage()
                .contains("SLURM_PROCID=x is not an integer"));
    }
}
