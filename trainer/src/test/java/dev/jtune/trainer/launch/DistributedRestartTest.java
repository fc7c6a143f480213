package dev.jtune.trainer.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A worker of a real two-process training job dies (SIGKILL, right after the job's first checkpoint): without
 * restarts the launcher fails naming the rank and showing its log; with {@code --max-restarts 1} the restarted
 * group resumes from the checkpoint and ends with exactly the per-step losses of a run that was never interrupted,
 * whether the killed worker was rank 1 or rank 0, the one that writes checkpoints and metrics.
 *
 * <p>The interrupted jobs run {@link PausingTrainWorker}: rank 0 stops right after saving checkpoint-2 and says
 * so, and the test kills a worker only then, so the kill always lands at the same point of the run (a test that
 * polled for the checkpoint raced the remaining steps).
 *
 * <p>Rank 1's JVM is found by the pid the launcher prints for it ({@code started worker rank 1 ... as pid P}):
 * both workers have the same command line, and their environment (RANK) is not visible through
 * {@link ProcessHandle}. Before the kill the pid is checked to be one of this JVM's descendants.
 */
class DistributedRestartTest {
    private static final int STEPS = 5;
    private static final String CHECKPOINTS = "save_steps: 2\n";
    private static final int KILL_AFTER = 2; // the first checkpoint (save_steps 2)
    private static final Pattern RESUMED = Pattern.compile("resuming from \\S*checkpoint-(\\d+) at step (\\d+)");

    @TempDir
    static Path tmp;

    @Test
    void aKilledWorkerFailsTheJobNamingItsRank() throws Exception {
        Path cfg = TinyLoraJob.config(tmp, "killed", 1, STEPS, CHECKPOINTS);
        TinyLoraJob.Launch job = TinyLoraJob.Launch.start("--nproc-per-node", "2", "--main-class",
                PausingTrainWorker.class.getName(), Integer.toString(KILL_AFTER), cfg.toString());
        killAfterFirstCheckpoint(job, 1);
        int code = job.await();
        assertEquals(1, code, job.console());
        assertTrue(job.err().contains("worker rank 1 (local rank 1 on node 0) failed with exit code 137 (killed by "
                + "signal 9); last lines of " + tmp.resolve("killed/logs/rank-1.log")), job.err());
        // The report quotes rank 1's log, which starts with the launcher's header for the attempt.
        assertTrue(job.err().contains("  | ==== jtune launcher: rank 1 (local rank 1 on node 0), attempt 0 ===="),
                job.err());
        assertFalse(job.err().contains("restarting"), job.err());
        assertEquals(KILL_AFTER, TinyLoraJob.losses(tmp.resolve("killed")).size(), "the job was cut short");
    }

    @Test
    void aRestartedGroupResumesFromTheCheckpointAndTrainsAsIfUninterrupted() throws Exception {
        assertRestartResumes("restarted", 1);
    }

    /** Rank 0 is the one that writes checkpoints and metrics: losing it mid-run must not lose or corrupt them. */
    @Test
    void losingRankZeroTheWriterAlsoResumes() throws Exception {
        assertRestartResumes("rank0-killed", 0);
    }

    private static List<Double> uninterrupted;

    /** The per-step losses of the job run without interruption (once per class). */
    private static synchronized List<Double> uninterrupted() throws Exception {
        if (uninterrupted == null) {
            Path whole = TinyLoraJob.config(tmp, "whole", 1, STEPS, CHECKPOINTS);
            TinyLoraJob.Launch reference = TinyLoraJob.Launch.start("--nproc-per-node", "2", whole.toString());
            assertEquals(0, reference.await(), reference.console());
            uninterrupted = TinyLoraJob.losses(tmp.resolve("whole"));
            assertEquals(STEPS, uninterrupted.size(), uninterrupted.toString());
        }
        return uninterrupted;
    }

    private static void assertRestartResumes(String name, int killed) throws Exception {
        List<Double> a = uninterrupted();
        Path cfg = TinyLoraJob.config(tmp, name, 1, STEPS, CHECKPOINTS);
        TinyLoraJob.Launch job = TinyLoraJob.Launch.start("--nproc-per-node", "2", "--max-restarts", "1",
                "--main-class", PausingTrainWorker.class.getName(), Integer.toString(KILL_AFTER), cfg.toString());
        killAfterFirstCheckpoint(job, killed);
        assertEquals(0, job.await(), job.console());
        assertTrue(job.err().contains("worker rank " + killed + " (local rank " + killed
                + " on node 0) failed with exit code 137"), job.err());
        assertTrue(job.err().contains("restarting the worker group (restart 1 of 1)"), job.err());
        Matcher resumed = RESUMED.matcher(job.out());
        assertTrue(resumed.find(), "rank 0 resumed: " + job.out());
        int from = Integer.parseInt(resumed.group(2));
        assertEquals(KILL_AFTER, from, "resumed from the checkpoint before the kill: " + resumed.group());

        List<Double> b = TinyLoraJob.losses(tmp.resolve(name));
        assertEquals(STEPS, b.size(), "one loss per step, the interrupted steps' lines replaced: " + b);
        // fp32 on CPU resumes bit for bit (the Trainer's promise), so the restart leaves no trace in the losses.
        assertEquals(a, b, "step losses, uninterrupted vs rank " + killed + " killed at step 2+ and restarted");
        try (var left = Files.list(tmp.resolve(name))) {
            assertEquals(List.of(), left.map(p -> p.getFileName().toString()).filter(n -> n.contains(".tmp-")).toList(),
                    "no partial checkpoint left behind");
        }
    }

    /**
     * SIGKILLs rank {@code rank}'s worker JVM once rank 0 has paused right after saving checkpoint-2. When that is
     * rank 0, rank 1 is frozen first (SIGSTOP): it waits for rank 0 in a collective and would otherwise fail on the
     * lost connection and exit, racing the launcher's notice of the kill for which failure it reports. Frozen, it
     * can only end by the launcher's stop (SIGTERM, then SIGKILL after the grace period), which follows the report.
     */
    private static void killAfterFirstCheckpoint(TinyLoraJob.Launch job, int rank) throws Exception {
        job.awaitLine(PausingTrainWorker.pausedLine(KILL_AFTER));
        if (rank == 0) {
            long survivor = worker(job, 1).pid();
            Process stop = new ProcessBuilder("sh", "-c", "kill -STOP " + survivor).inheritIO().start();
            assertEquals(0, stop.waitFor(), "SIGSTOP to rank 1 (pid " + survivor + ")");
        }
        ProcessHandle victim = worker(job, rank);
        assertTrue(victim.destroyForcibly(), "SIGKILL to " + victim.pid());
        victim.onExit().get(TinyLoraJob.HANG_GUARD.toSeconds(), TimeUnit.SECONDS);
    }

    /** Rank {@code rank}'s worker JVM of the first attempt, by the pid the launcher printed for it. */
    private static ProcessHandle worker(TinyLoraJob.Launch job, int rank) {
        Matcher m = Pattern.compile("started worker rank " + rank + " \\(local rank \\d+ on node 0\\) as pid (\\d+)")
                .matcher(job.out());
        assertTrue(m.find(), "the launcher named rank " + rank + "'s pid: " + job.out());
        long pid = Long.parseLong(m.group(1));
        return ProcessHandle.current().descendants().filter(h -> h.pid() == pid).findFirst()
                .orElseThrow(() -> new AssertionError("pid " + pid + " is no live worker of this test"));
    }
}
