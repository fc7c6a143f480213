package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Kill and resume in child JVMs: SIGKILL then resume gives the uninterrupted losses; SIGTERM checkpoints. */
class ResumeTest {
    /** Only a hang guard: the children end by themselves, however long a busy machine takes. */
    private static final long HANG_GUARD_S = 600;

    /** {@code pauseAfter}: "none", or the checkpoint after which the child waits to be signalled (see TinyTrainingMain). */
    private static Process start(Path out, String resume, String pauseAfter, Path log) throws IOException {
        String java = ProcessHandle.current().info().command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        ProcessBuilder pb = new ProcessBuilder(java, "-Xss4m", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), TinyTrainingMain.class.getName(), out.toString(),
                Integer.toString(TinyTrainingMain.MAX_STEPS), resume, pauseAfter);
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

    /** Waits until the child says it paused after {@code checkpoint-step}: a line, not a duration. */
    private static void awaitPause(Process p, long step, Path log) throws Exception {
        String paused = TinyTrainingMain.pausedLine(step);
        while (!Files.readAllLines(log).contains(paused)) {
            if (!p.isAlive()) {
                throw new AssertionError("child ended before it paused; log:\n" + Files.readString(log));
            }
            Thread.sleep(20);
        }
    }

    private static List<JsonNode> stepLines(Path out) throws IOException {
        List<JsonNode> lines = new ArrayList<>();
        for (JsonNode n : TrainerTest.metrics(out)) {
            if (n.has("loss")) lines.add(n);
        }
        return lines;
    }

    @Test
    void sigkillThenResumeGivesTheUninterruptedLossesAndSigtermCheckpoints(@TempDir Path tmp) throws Exception {
        Path whole = tmp.resolve("whole");
        Path killed = tmp.resolve("killed");
        Path termed = tmp.resolve("termed");

        // Start the interrupted runs first, so that the children overlap.
        Process victim = start(killed, "none", "4", tmp.resolve("killed.log"));
        Process term = start(termed, "none", "2", tmp.resolve("termed.log"));
        Process reference = start(whole, "none", "none", tmp.resolve("whole.log"));

        awaitPause(victim, 4, tmp.resolve("killed.log")); // checkpoint-4 is complete, step 5 under way
        victim.destroyForcibly(); // SIGKILL
        victim.waitFor();

        awaitPause(term, 2, tmp.resolve("termed.log")); // checkpoint-2 is complete, step 3 under way
        term.destroy(); // SIGTERM: the trainer stops at the end of step 3
        assertEquals(0, finish(term, tmp.resolve("termed.log")), Files.readString(tmp.resolve("termed.log")));

        Process resumed = start(killed, "auto", "none", tmp.resolve("resumed.log"));
        assertEquals(0, finish(resumed, tmp.resolve("resumed.log")), Files.readString(tmp.resolve("resumed.log")));
        assertEquals(0, finish(reference, tmp.resolve("whole.log")), Files.readString(tmp.resolve("whole.log")));

        String resumedLog = Files.readString(tmp.resolve("resumed.log"));
        assertTrue(resumedLog.contains("resuming from"), resumedLog);
        List<JsonNode> expected = stepLines(whole);
        List<JsonNode> actual = stepLines(killed);
        assertEquals(TinyTrainingMain.MAX_STEPS, expected.size());
        assertEquals(expected.size(), actual.size(), "steps logged after resume");
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(i + 1, actual.get(i).get("step").asLong());
            for (String key : List.of("loss", "grad_norm", "learning_rate")) {
                // Bit for bit: the JSON doubles are printed in full.
                assertEquals(expected.get(i).get(key).asDouble(), actual.get(i).get(key).asDouble(), 0.0,
                        key + " at step " + (i + 1));
            }
        }

        // SIGTERM: exit code 0 above, and a complete checkpoint at the step where it stopped.
        String termLog = Files.readString(tmp.resolve("termed.log"));
        assertTrue(termLog.contains("SIGTERM: checkpoint saved at step"), termLog);
        Path last = Checkpoints.latest(termed).orElseThrow();
        long stoppedAt = Checkpoints.step(last).orElseThrow();
        assertEquals(3, stoppedAt, "stopped at the end of the step during which SIGTERM came");
        List<JsonNode> termSteps = stepLines(termed);
        assertEquals(stoppedAt, termSteps.get(termSteps.size() - 1).get("step").asLong());
        assertEquals(stoppedAt, TrainerTest.metrics(termed).size() == 0 ? -1
                : new com.fasterxml.jackson.databind.ObjectMapper().readTree(last.resolve("trainer_state.json")
                        .toFile()).get("global_step").asLong());
    }
}
