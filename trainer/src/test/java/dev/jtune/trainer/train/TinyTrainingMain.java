package dev.jtune.trainer.train;

import ai.djl.ndarray.NDManager;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.testkit.TinyLlama;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * A child-process training run for the kill/resume tests:
 * {@code TinyTrainingMain OUT_DIR MAX_STEPS RESUME(auto|none) PAUSE(none|N)}.
 *
 * <p>With PAUSE N the run stops at the first batch it fetches once {@code checkpoint-N} is complete (so inside
 * step N+1), prints {@code paused after checkpoint-N}, and waits there: until a SIGTERM has reached the trainer's
 * handler, then it goes on (the trainer then stops at the end of that step), or for ever (for a SIGKILL). The test
 * acts on that line, so where the child is when it is killed or signalled never depends on timing.
 */
public final class TinyTrainingMain {
    private TinyTrainingMain() {}

    static final int MAX_STEPS = 10;

    static String pausedLine(long step) {
        return "paused after checkpoint-" + step;
    }

    public static void main(String[] args) throws Exception {
        Path out = Path.of(args[0]);
        long maxSteps = Long.parseLong(args[1]);
        String resume = args[2].equals("none") ? null : args[2];
        long pauseAfter = args[3].equals("none") ? -1 : Long.parseLong(args[3]);
        List<Batch> train = TinySetup.batches(11, 8, 2, 20);
        CountDownLatch termReachedTrainer = new CountDownLatch(1);
        BatchPlan plan = new BatchPlan() {
            private boolean paused;

            @Override
            public int batchesPerEpoch() {
                return train.size();
            }

            @Override
            public Batch batch(int epoch, int index) {
                if (pauseAfter >= 0 && !paused && checkpointed(out) >= pauseAfter) {
                    paused = true;
                    pause(pauseAfter, termReachedTrainer);
                }
                return train.get(index);
            }
        };
        TrainerOptions o = TrainerOptions.defaults(2e-3).toBuilder().gradientAccumulationSteps(2).maxSteps(maxSteps)
                .warmupSteps(2).loggingSteps(1).saveSteps(2).resumeFromCheckpoint(resume)
                .adam(new dev.jtune.trainer.optim.AdamW.Hyper(0.9, 0.999, 1e-8, 0.01)).build();
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            TrainingResult r = Trainer.run(o, new FullFineTuning(model), plan, null, out, System.out);
            System.out.println("done at step " + r.globalStep() + (r.interrupted() ? " (interrupted)" : ""));
        }
        System.exit(0);
    }

    private static long checkpointed(Path out) {
        try {
            return Checkpoints.latest(out).map(c -> Checkpoints.step(c).orElseThrow()).orElse(-1L);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /**
     * Chains a handler behind the trainer's (installed by now: this runs inside Trainer.run) that releases the
     * pause once the trainer's own handler has set its stop flag, then says where it waits, and waits.
     */
    private static void pause(long step, CountDownLatch termReachedTrainer) {
        SignalHandler[] trainers = new SignalHandler[1];
        trainers[0] = Signal.handle(new Signal("TERM"), sig -> {
            trainers[0].handle(sig);
            termReachedTrainer.countDown();
        });
        System.out.println(pausedLine(step));
        System.out.flush();
        try {
            termReachedTrainer.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
