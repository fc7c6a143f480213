package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.llama.RandomInit;
import dev.jtune.model.llama.RopeScaling;
import dev.jtune.trainer.optim.Gradients;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The chunked head and loss against the whole logits (bench/head-chunk.sh): one training step
 * ({@link ForwardBackward#run} with backward) of a 2-layer model with hidden size 256 and Llama 3's 128,256-token
 * vocabulary, every token trained, in this process: {@code HeadChunkBench TOKENS CHUNK DTYPE TRAIN [CKPT]} with CHUNK 0
 * for the whole logits (jtune before), -1 for the default chunk or a number of tokens, TRAIN {@code decoder} (head and
 * embedding frozen, as under an adapter) or {@code all}. Prints the RSS after loading, the peak RSS (VmHWM) over a
 * warm-up step and {@link #STEPS} measured steps, and the best of their wall and of their CPU times (the CPU time
 * tells a step paused from outside). Lives in the trainer's package (ForwardBackward is package-private); run each
 * configuration in a fresh JVM.
 */
public final class HeadChunkBench {
    static final int STEPS = 3;

    private HeadChunkBench() {}

    public static void main(String[] args) throws IOException {
        int tokens = Integer.parseInt(args[0]);
        long chunk = Long.parseLong(args[1]);
        Dtype dtype = Dtype.valueOf(args[2].toUpperCase());
        boolean all = args[3].equals("all");
        boolean ckpt = args.length > 4 && args[4].equals("ckpt");
        int len = Math.min(tokens, 2048);
        int rows = tokens / len;
        LlamaConfig c = new LlamaConfig("llama", 128_256, 256, 704, 2, 4, 2, 64, len, 1e-5, 500000.0,
                new RopeScaling.None(), false, Dtype.FP32, 0, List.of(1), 2, 0);
        try (NDManager m = Torch.newManager();
                LlamaModel model = LlamaModel.load(c, new RandomInit(c, 1).weights(), dtype, m)) {
            Map<String, NDArray> params = new LinkedHashMap<>(new FullFineTuning(model).parameters());
            if (!all) {
                params.keySet().removeIf(k -> k.contains("embed_tokens") || k.contains("lm_head"));
            }
            params.values().forEach(p -> p.setRequiresGradient(true));
            Random r = new Random(3);
            int n = rows * len;
            int[] ids = new int[n];
            int[] pos = new int[n];
            int[] mask = new int[n];
            for (int i = 0; i < n; i++) {
                ids[i] = r.nextInt(c.vocabSize());
                pos[i] = i % len;
                mask[i] = 1;
            }
            Batch b = new Batch(rows, len, ids, ids.clone(), pos, new int[n], mask, false);
            ForwardBackward base = new ForwardBackward(model, ckpt, 1);
            ForwardBackward fb = chunk < 0 ? base : base.withHeadChunk(chunk);
            long loaded = rss("VmRSS:");
            fb.run(b, b.trainedTokens(), 1, true, 0, 0, m); // warm-up: gradients allocated, kernels compiled
            long ms = Long.MAX_VALUE;
            long cpu = Long.MAX_VALUE;
            double loss = 0;
            for (int step = 1; step <= STEPS; step++) {
                Gradients.zero(params.values());
                long t = System.nanoTime();
                long cpu0 = cpuMillis();
                loss = fb.run(b, b.trainedTokens(), 1, true, step, 0, m).nllSum() / b.trainedTokens();
                ms = Math.min(ms, (System.nanoTime() - t) / 1_000_000);
                cpu = Math.min(cpu, cpuMillis() - cpu0);
            }
            System.out.printf("tokens %d (%d x %d), %s, train %s%s, head chunk %s: loss %.4f, best step of " + STEPS
                    + " %d ms (CPU %d ms),"
                    + " RSS after load %d MB, peak %d MB%n", n, rows, len, args[2], all ? "all" : "decoder",
                    ckpt ? ", checkpointing" : "", fb.headChunk() == 0 ? "none (whole logits)" : fb.headChunk(), loss,
                    ms, cpu, loaded >> 20, rss("VmHWM:") >> 20);
        }
    }

    /**
     * The process's user + system CPU time (all threads, libtorch's included), from /proc/self/stat in clock ticks of
     * 10 ms: a step paused from outside (SIGSTOP) shows a wall time far above it.
     */
    private static long cpuMillis() throws IOException {
        String stat = Files.readString(Path.of("/proc/self/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return (Long.parseLong(f[11]) + Long.parseLong(f[12])) * 10;
    }

    private static long rss(String key) throws IOException {
        for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (l.startsWith(key)) {
                return Long.parseLong(l.replaceAll("\\D", "")) * 1024;
            }
        }
        throw new IllegalStateException(key);
    }
}
