package dev.jtune.trainer.train;

import ai.djl.ndarray.NDManager;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.llama.RopeScaling;
import dev.jtune.testkit.TinyLlama;
import dev.jtune.trainer.optim.Gradients;
import java.util.List;

/**
 * Not a test: prints the RSS growth of one forward/backward with and without gradient checkpointing on a
 * model with many layers and long rows ({@code java ... CheckpointingBench [layers] [length]}). Run each mode
 * in a fresh JVM for clean numbers: {@code CheckpointingBench 16 1024 plain}, then {@code ... checkpointed}.
 */
public final class CheckpointingBench {
    private CheckpointingBench() {}

    public static void main(String[] args) {
        int layers = args.length > 0 ? Integer.parseInt(args[0]) : 16;
        int length = args.length > 1 ? Integer.parseInt(args[1]) : 1024;
        boolean checkpointed = args.length > 2 && args[2].equals("checkpointed");
        LlamaConfig c = new LlamaConfig("llama", TinyLlama.VOCAB, 256, 704, layers, 4, 2, 64, 4096, 1e-5, 10000.0,
                new RopeScaling.None(), false, Dtype.FP32, 0, List.of(1), 2, 0);
        try (NDManager m = Torch.newManager();
                LlamaModel model = LlamaModel.load(c, TinyLlama.weights(c, 1), Dtype.FP32, m)) {
            FullFineTuning ft = new FullFineTuning(model);
            ft.parameters().values().forEach(p -> p.setRequiresGradient(true));
            Batch b = TinySetup.batches(1, 1, 2, length).get(0);
            ForwardBackward fb = new ForwardBackward(model, checkpointed, 1);
            // Warm up (gradients allocated, kernels compiled), then measure the peak RSS of one more step.
            fb.run(b, b.trainedTokens(), 1, true, 0, 0, m);
            Gradients.zero(ft.parameters().values());
            long before = Progress.rssBytes();
            long peakBefore = peak();
            long t = System.nanoTime();
            fb.run(b, b.trainedTokens(), 1, true, 1, 0, m);
            long ms = (System.nanoTime() - t) / 1_000_000;
            System.out.printf("%s: %d layers, 2 x %d tokens: step %d ms, RSS %d MB -> peak %d MB (VmHWM before %d MB)%n",
                    checkpointed ? "checkpointed" : "plain", layers, b.length(), ms, before >> 20, peak() >> 20,
                    peakBefore >> 20);
        }
    }

    private static long peak() {
        try {
            for (String l : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
                if (l.startsWith("VmHWM:")) return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024;
            }
        } catch (java.io.IOException e) {
            // not Linux
        }
        return 0;
    }
}
