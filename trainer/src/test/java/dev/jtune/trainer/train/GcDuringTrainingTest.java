package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jtune.trainer.dist.ThreadProcessGroup;
import dev.jtune.trainer.optim.AdamW;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Garbage collection never changes what training computes. Tensors that DJL makes from Java values live in Java
 * direct memory, which the collector frees once the DJL array is closed; libtorch must never still hold such a
 * tensor then. DJL's scalar ops ({@code x.div(n)}, {@code x.mul(2f)}) wrap the number so and close it at once, while
 * autograd keeps it for backward: with a collection between forward and backward, backward read freed memory. That
 * was the loss's division by the token count (ForwardBackward), the zero of Replicas.materializeGradients and the
 * test adapter's scale (TinySetup): a rare DataParallelTest mismatch at step 4 on a busy machine, and with the
 * collector running throughout, infinite gradient norms at step 1 or 2.
 *
 * <p>Here the collector runs back to back while two ranks train (the data-parallel path, which also materializes
 * zero gradients), and the run must equal one without it bit for bit. It passes whatever the collector's timing;
 * a regression fails it when a collection lands in such a window, which running it throughout makes near certain.
 */
class GcDuringTrainingTest {
    @TempDir
    Path tmp;

    private static TrainerOptions options() {
        return TrainerOptions.defaults(3e-3).toBuilder().gradientAccumulationSteps(1).maxSteps(3)
                .lrScheduler("constant").warmupSteps(0).loggingSteps(1).saveSteps(2).maxGradNorm(0.05)
                .adam(new AdamW.Hyper(0.9, 0.999, 1e-8, 0.01)).handleSigterm(false).build();
    }

    private List<DataParallelTest.RankRun> run(String name) throws Exception {
        return ThreadProcessGroup.run(2, g -> DataParallelTest.train(g, options(), tmp.resolve(name + g.rank()), false));
    }

    @Test
    void collectionsDuringTrainingChangeNothing() throws Exception {
        List<DataParallelTest.RankRun> quiet = run("quiet");

        AtomicBoolean done = new AtomicBoolean();
        Thread collector = Thread.ofPlatform().daemon().start(() -> {
            while (!done.get()) {
                System.gc();
                Thread.onSpinWait();
            }
        });
        List<DataParallelTest.RankRun> collected;
        try {
            collected = run("collected");
        } finally {
            done.set(true);
            collector.join();
        }

        for (int r = 0; r < 2; r++) {
            assertEquals(quiet.get(r).losses(), collected.get(r).losses(), "rank " + r + " losses");
            for (var e : quiet.get(r).params().entrySet()) {
                assertArrayEquals(e.getValue(), collected.get(r).params().get(e.getKey()), "rank " + r + " " + e.getKey());
            }
        }
    }
}
