package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.trainer.train.TrainerOptions;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Main hands launcher flags to the launcher; train honours the launcher's JTUNE_RESUME. */
class LauncherFrontTest {
    @Test
    void launcherFlagsGoToTheLauncher() {
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        int code = Main.run(new String[] {"--nproc-per-node", "two", "c.yml"},
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        String e = err.toString(StandardCharsets.UTF_8);
        assertEquals(2, code, e);
        assertTrue(e.contains("jtune launcher: --nproc-per-node expects an integer, got 'two'"), e);
        assertTrue(e.contains("usage: ./launch.sh --nproc-per-node N"), e);
    }

    @Test
    void restartedWorkersResumeUnlessTheConfigSaysWhere() {
        TrainerOptions plain = TrainerOptions.defaults(1e-3);
        assertEquals(Optional.empty(), TrainCommand.resumeAsLauncherSays(plain, Map.of()).resumeFromCheckpoint());
        assertEquals(Optional.of("auto"),
                TrainCommand.resumeAsLauncherSays(plain, Map.of("JTUNE_RESUME", "auto")).resumeFromCheckpoint());
        TrainerOptions explicit = plain.toBuilder().resumeFromCheckpoint("out/checkpoint-4").build();
        assertEquals(Optional.of("out/checkpoint-4"),
                TrainCommand.resumeAsLauncherSays(explicit, Map.of("JTUNE_RESUME", "auto")).resumeFromCheckpoint());
    }
}
