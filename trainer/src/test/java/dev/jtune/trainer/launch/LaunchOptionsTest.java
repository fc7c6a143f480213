package dev.jtune.trainer.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class LaunchOptionsTest {
    @Test
    void flagsThenTheWorkerCommand() {
        var o = LaunchOptions.parse(new String[] {"--nproc-per-node", "4", "--nnodes=2", "--node-rank", "1",
                "--master-addr", "n0", "--master-port", "1234", "--max-restarts", "3", "--rdzv-timeout", "60",
                "cfg.yml", "--extra", "x"}, Map.of());
        assertEquals(new LaunchOptions(4, 2, 1, "n0", 1234, 3, Duration.ofSeconds(60), Optional.empty(),
                LaunchOptions.DEFAULT_MAIN, List.of("cfg.yml", "--extra", "x")), o);
        assertEquals(8, o.worldSize());
    }

    @Test
    void defaults() {
        var single = LaunchOptions.parse(new String[] {"--nproc-per-node", "2", "cfg.yml"}, Map.of());
        assertEquals(1, single.nnodes());
        assertEquals(0, single.masterPort(), "a single node takes a free port");
        assertEquals("127.0.0.1", single.masterAddr());
        assertEquals(Duration.ofSeconds(300), single.rdzvTimeout());
        var multi = LaunchOptions.parse(new String[] {"--nproc-per-node", "2", "--nnodes", "2", "cfg.yml"}, Map.of());
        assertEquals(29500, multi.masterPort());
    }

    @Test
    void slurmDefaultsForOneLauncherPerNode() {
        var env = Map.of("SLURM_PROCID", "1", "SLURM_NTASKS", "3", "SLURM_NNODES", "3", "SLURM_NODEID", "1",
                "SLURM_JOB_NODELIST", "a[3-5]");
        var o = LaunchOptions.parse(new String[] {"--nproc-per-node", "8", "cfg.yml"}, env);
        assertEquals(3, o.nnodes());
        assertEquals(1, o.nodeRank());
        assertEquals("a3", o.masterAddr());
        assertEquals(29500, o.masterPort());
    }

    @Test
    void recognisedAsALauncherCommand() {
        assertTrue(LaunchOptions.isLauncherCommand(new String[] {"--nproc-per-node", "2", "c.yml"}));
        assertTrue(LaunchOptions.isLauncherCommand(new String[] {"--nnodes=2"}));
        assertTrue(LaunchOptions.isLauncherCommand(new String[] {"--standalone", "--nproc-per-node", "2", "c.yml"}));
        assertFalse(LaunchOptions.isLauncherCommand(new String[] {"c.yml"}));
        assertFalse(LaunchOptions.isLauncherCommand(new String[] {"--help"}));
    }

    @Test
    void badFlagsAreClearErrors() {
        assertEquals("--nproc-per-node N is required (workers on this node, e.g. one per GPU)",
                assertThrows(IllegalArgumentException.class,
                        () -> LaunchOptions.parse(new String[] {"--nnodes", "1", "c.yml"}, Map.of())).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LaunchOptions.parse(
                new String[] {"--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "2", "c.yml"}, Map.of()))
                .getMessage().contains("--node-rank must be in [0, 2) for --nnodes 2, got 2"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LaunchOptions.parse(
                new String[] {"--nproc-per-node", "two", "c.yml"}, Map.of()))
                .getMessage().contains("--nproc-per-node expects an integer, got 'two'"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LaunchOptions.parse(
                new String[] {"--nproc-per-node", "2", "--max-restart", "1", "c.yml"}, Map.of()))
                .getMessage().contains("unknown launcher flag --max-restart"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LaunchOptions.parse(
                new String[] {"--nproc-per-node", "2"}, Map.of()))
                .getMessage().contains("no worker command"));
    }
}
