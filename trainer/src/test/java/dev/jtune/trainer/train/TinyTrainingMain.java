package dev.jtune.trainer.train;

import ai.djl.ndarray.NDManager;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.testkit.TinyLlama;
import java.nio.file.Path;
import java.util.List;

/**
 * A child-process training run for the kill/resume tests:
 * {@code TinyTrainingMain OUT_DIR MAX_STEPS RESUME(auto|none) SLOW_MS_PER_BATCH}.
 */
public final class TinyTrainingMain {
    private TinyTrainingMain() {}

    static final int MAX_STEPS = 10;

    public static void main(String[] args) throws Exception {
        Path out = Path.of(args[0]);
        long maxSteps = Long.parseLong(args[1]);
        String resume = args[2].equals("none") ? null : args[2];
        long slowMs = Long.parseLong(args[3]);
        List<Batch> train = TinySetup.batches(11, 8, 2, 20);
        BatchPlan plan = new BatchPlan() {
            @Override
            public int batchesPerEpoch() {
                return train.size();
            }

            @Override
            public Batch batch(int epoch, int index) {
                if (slowMs > 0) {
                    try {
                        Thread.sleep(slowMs);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
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
}
