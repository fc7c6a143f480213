package dev.jtune.trainer.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The ring between two real processes (child JVMs) on loopback, sharing a directory store. */
class RingProcessesTest {
    /** Only a hang guard: the children end by themselves (or by the kill), however long a busy machine takes. */
    private static final long HANG_GUARD_S = 600;

    private static Process start(Path store, int rank, String mode, Path log) throws IOException {
        String java = ProcessHandle.current().info().command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        ProcessBuilder pb = new ProcessBuilder(java, "-Xss4m", "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("java.class.path"), RingWorkerMain.class.getName(), store.toString(),
                Integer.toString(rank), mode);
        pb.environment().put("DJL_OFFLINE", "true");
        pb.redirectErrorStream(true).redirectOutput(log.toFile());
        return pb.start();
    }

    private static int finish(Process p, Path log) throws Exception {
        if (!p.waitFor(HANG_GUARD_S, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("child did not finish; log:\n" + Files.readString(log));
        }
        return p.exitValue();
    }

    private static String line(Path log, String prefix) throws IOException {
        return Files.readAllLines(log).stream().filter(l -> l.startsWith(prefix)).findFirst().orElse(null);
    }

    @Test
    void everyCollectiveAcrossTwoProcessesIsCorrectAndBitIdentical(@TempDir Path tmp) throws Exception {
        Path store = Files.createDirectory(tmp.resolve("store"));
        Path log0 = tmp.resolve("r0.log");
        Path log1 = tmp.resolve("r1.log");
        Process p0 = start(store, 0, "all", log0);
        Process p1 = start(store, 1, "all", log1);
        assertEquals(0, finish(p0, log0), Files.readString(log0));
        assertEquals(0, finish(p1, log1), Files.readString(log1));
        String d0 = line(log0, "ok ");
        String d1 = line(log1, "ok ");
        assertTrue(d0 != null && d0.length() > 60, Files.readString(log0));
        assertEquals(d0, d1, "the ranks' results differ");
    }

    @Test
    void aKilledPeerFailsTheSurvivorInsteadOfHanging(@TempDir Path tmp) throws Exception {
        Path store = Files.createDirectory(tmp.resolve("store"));
        Path log0 = tmp.resolve("r0.log");
        Path log1 = tmp.resolve("r1.log");
        Process p0 = start(store, 0, "die", log0);
        Process p1 = start(store, 1, "die", log1);
        try {
            // Wait for a line, not a duration: rank 1 says "ready" after the barrier, with rank 0 then in (or on its
            // way into) an all-reduce that needs rank 1. Either way the kill must reach it as a lost connection.
            while (line(log1, "ready") == null) {
                assertTrue(p1.isAlive(), "rank 1 ended before it got ready:\n" + Files.readString(log1));
                Thread.sleep(20);
            }
            p1.destroyForcibly().waitFor();
            assertEquals(3, finish(p0, log0), Files.readString(log0));
            String failed = line(log0, "failed: ");
            assertTrue(failed != null && failed.contains("rank 1"), Files.readString(log0));
            // The group timeout (RingWorkerMain) is only a hang guard: a failure waited out would say so.
            assertTrue(!failed.contains("is it stuck"), "waited out: " + failed);
        } finally {
            p0.destroyForcibly();
            p1.destroyForcibly();
        }
    }
}
