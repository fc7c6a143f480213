package dev.jtune.trainer.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.model.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real thing on CPU: {@code ./launch.sh --nproc-per-node 2 CONFIG.yml} (two worker JVMs, the TCP store, the
 * ring) trains the quickstart's tiny model to the same per-step losses and the same adapter as one process with
 * the same global batch (twice the gradient accumulation).
 */
class DistributedTrainTest {
    @TempDir
    static Path tmp;

    @Test
    void twoProcessesTrainAsOneWithTheSameGlobalBatch() throws Exception {
        Path one = TinyLoraJob.config(tmp, "one", 2, 4, "");
        Path two = TinyLoraJob.config(tmp, "two", 1, 4, "");
        TinyLoraJob.Launch first = TinyLoraJob.Launch.start("--nproc-per-node", "1", one.toString());
        assertEquals(0, first.await(Duration.ofMinutes(2)), first.console());
        TinyLoraJob.Launch second = TinyLoraJob.Launch.start("--nproc-per-node", "2", two.toString());
        assertEquals(0, second.await(Duration.ofMinutes(2)), second.console());

        Path logs = tmp.resolve("two/logs");
        assertTrue(Files.isRegularFile(logs.resolve("rank-0.log")) && Files.isRegularFile(logs.resolve("rank-1.log")));
        List<Double> a = TinyLoraJob.losses(tmp.resolve("one"));
        List<Double> b = TinyLoraJob.losses(tmp.resolve("two"));
        assertEquals(4, a.size());
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) {
            assertEquals(a.get(i), b.get(i), 1e-5 * Math.abs(a.get(i)), "step " + (i + 1) + ": " + a + " vs " + b);
        }
        try (SafetensorsFile x = SafetensorsFile.open(tmp.resolve("one/adapter_model.safetensors"));
                SafetensorsFile y = SafetensorsFile.open(tmp.resolve("two/adapter_model.safetensors"))) {
            assertEquals(x.names(), y.names());
            for (String name : x.names()) {
                float[] p = x.floats(name);
                float[] q = y.floats(name);
                double worst = 0;
                double scale = 0;
                for (int i = 0; i < p.length; i++) {
                    worst = Math.max(worst, Math.abs(p[i] - q[i]));
                    scale = Math.max(scale, Math.abs(p[i]));
                }
                assertTrue(worst <= 1e-5 * Math.max(scale, 1e-3), name + ": max diff " + worst + " of " + scale);
            }
        }
    }
}
