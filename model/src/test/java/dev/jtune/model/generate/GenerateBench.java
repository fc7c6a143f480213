package dev.jtune.model.generate;

import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.KvCache;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.llama.LlamaPresets;
import dev.jtune.model.llama.RandomInit;
import dev.jtune.model.llama.RopeScaling;
import java.util.List;
import java.util.Random;

/**
 * Not a test: prints tokens/s of greedy generation with a preallocated cache, a concatenating cache and no
 * cache, on the tiny preset and a hidden-512 model. Run with the model module's test classpath:
 * {@code java -cp ... dev.jtune.model.generate.GenerateBench [newTokens] [fp32|bf16]}.
 */
public final class GenerateBench {
    private GenerateBench() {}

    public static void main(String[] args) {
        int newTokens = args.length > 0 ? Integer.parseInt(args[0]) : 128;
        Dtype dtype = args.length > 1 ? Dtype.parse(args[1]) : Dtype.FP32;
        LlamaConfig medium = new LlamaConfig("llama", 8000, 512, 1408, 8, 8, 4, 64, 4096, 1e-5, 10000.0,
                new RopeScaling.None(), false, Dtype.FP32, 0, List.of(1), 2, 0);
        for (LlamaConfig config : List.of(LlamaPresets.tiny(300), medium)) {
            // Gain 10 (RandomInit.weights(gain)): peaked logits, as a trained model has.
            try (NDManager m = Torch.newManager();
                    LlamaModel model = LlamaModel.load(config, new RandomInit(config, 1).weights(10), dtype, m);
                    Generator g = new Generator(model, m)) {
                int[] prompt = new Random(3).ints(32, 3, config.vocabSize()).toArray();
                GenerationSettings s = GenerationSettings.greedy(newTokens, List.of());
                System.out.printf("hidden %d, %d layers, %s, prompt 32, %d new tokens%n", config.hiddenSize(),
                        config.numHiddenLayers(), dtype.label(), newTokens);
                for (int round = 0; round < 2; round++) { // the first round warms up libtorch and the JIT
                    for (KvCache.Layout layout : KvCache.Layout.values()) {
                        long t0 = System.nanoTime();
                        g.generate(prompt, s, layout, null);
                        report(round, layout.name().toLowerCase(), newTokens, System.nanoTime() - t0);
                    }
                    long t0 = System.nanoTime();
                    g.generateWithoutCache(prompt, s, null);
                    report(round, "no cache", newTokens, System.nanoTime() - t0);
                }
            }
        }
    }

    private static void report(int round, String what, int tokens, long nanos) {
        if (round > 0) {
            System.out.printf("  %-14s %8.1f tokens/s%n", what, tokens / (nanos / 1e9));
        }
    }
}
