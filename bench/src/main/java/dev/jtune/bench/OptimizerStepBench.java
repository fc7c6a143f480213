package dev.jtune.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Torch;
import dev.jtune.trainer.optim.AdamW;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * One AdamW step over a Llama-2-7B-sized projection (11008 x 4096 = 45M values, a LoRA-free full fine-tuning
 * tensor) per optimizer variant (adamw_torch, adamw_bnb_8bit, adamw_torch_8bit): best and median of N steps, and the
 * state bytes per value.
 *
 * <pre>bench/optim.sh [ROWS] [REPEATS]</pre>
 */
public final class OptimizerStepBench {
    private OptimizerStepBench() {}

    public static void main(String[] args) {
        long rows = args.length > 0 ? Long.parseLong(args[0]) : 11008;
        int repeats = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        long cols = 4096;
        Random r = new Random(3);
        float[] w = new float[(int) (rows * cols)];
        float[] g = new float[w.length];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextGaussian() * 0.02);
            g[i] = (float) (r.nextGaussian() * 1e-3);
        }
        // As training runs the kernels: TorchScript's graph optimizer off (see Torch.setGraphOptimization).
        Torch.setGraphOptimization(false);
        System.out.printf("tensor %d x %d (%d values), threads %d%n", rows, cols, w.length, Torch.threads());
        for (AdamW.Variant v : new AdamW.Variant[] {AdamW.Variant.TORCH, AdamW.Variant.BNB_8BIT,
            AdamW.Variant.TORCHAO_8BIT}) {
            try (NDManager m = Torch.newManager()) {
                NDArray p = m.create(w, new Shape(rows, cols));
                NDArray grad = m.create(g, new Shape(rows, cols));
                Map<String, NDArray> params = new LinkedHashMap<>();
                params.put("w", p);
                try (AdamW opt = new AdamW(params, new AdamW.Hyper(0.9, 0.999, 1e-8, 0.01, v), n -> true, m)) {
                    double[] ms = new double[repeats];
                    opt.step(1e-4, Map.of("w", grad)); // warm-up: compiles the kernels
                    for (int i = 0; i < repeats; i++) {
                        long t0 = System.nanoTime();
                        opt.step(1e-4, Map.of("w", grad));
                        ms[i] = (System.nanoTime() - t0) / 1e6;
                    }
                    Arrays.sort(ms);
                    System.out.printf("%-17s best %8.1f ms  median %8.1f ms  state %.3f bytes/value%n",
                            v.checkpointName(), ms[0], ms[repeats / 2], opt.stateBytes() / (double) w.length);
                }
            }
        }
    }
}
