package dev.jtune.trainer.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.model.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
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
        assertSameTraining("one", "two", "");
    }

    /**
     * QLoRA with {@code fsdp: [full_shard]}: each worker holds half of every layer's NF4 codes and half of the
     * adapter, and trains as one process with both workers' batches.
     */
    @Test
    void twoFsdpProcessesOverAnNf4BaseTrainAsOne() throws Exception {
        String qlora = "load_in_4bit: true\n";
        TinyLoraJob.Launch fsdp = assertSameTraining("qlora-one", "qlora-fsdp", qlora, "fsdp:\n  - full_shard\n");
        assertTrue(fsdp.out().contains(" base in NF4")
                && fsdp.out().contains("FSDP (trainable tensors, gradients and optimizer state sharded)")
                && fsdp.out().contains("trainable tensors held: ")
                && fsdp.out().contains("base weights sharded"), fsdp.out());
    }

    /**
     * Trains config {@code one} (gradient accumulation 2) in one worker and {@code two} (accumulation 1) in two,
     * both with the YAML lines {@code extra} (and {@code twoOnly} for the second), and compares losses and
     * adapters; returns the two-worker launch.
     */
    private static TinyLoraJob.Launch assertSameTraining(String one, String two, String extra, String... twoOnly)
            throws Exception {
        Path cfgOne = TinyLoraJob.config(tmp, one, 2, 4, extra);
        Path cfgTwo = TinyLoraJob.config(tmp, two, 1, 4, extra + String.join("", twoOnly));
        TinyLoraJob.Launch first = TinyLoraJob.Launch.start("--nproc-per-node", "1", cfgOne.toString());
        assertEquals(0, first.await(), first.console());
        TinyLoraJob.Launch second = TinyLoraJob.Launch.start("--nproc-per-node", "2", cfgTwo.toString());
        assertEquals(0, second.await(), second.console());

        Path logs = tmp.resolve(two + "/logs");
        assertTrue(Files.isRegularFile(logs.resolve("rank-0.log")) && Files.isRegularFile(logs.resolve("rank-1.log")));
        List<Double> a = TinyLoraJob.losses(tmp.resolve(one));
        List<Double> b = TinyLoraJob.losses(tmp.resolve(two));
        assertEquals(4, a.size());
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) {
            assertEquals(a.get(i), b.get(i), 1e-5 * Math.abs(a.get(i)), "step " + (i + 1) + ": " + a + " vs " + b);
        }
        try (SafetensorsFile x = SafetensorsFile.open(tmp.resolve(one + "/adapter_model.safetensors"));
                SafetensorsFile y = SafetensorsFile.open(tmp.resolve(two + "/adapter_model.safetensors"))) {
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
        return second;
    }
}
