package dev.jtune.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.quant.Nf4;
import java.util.Locale;
import java.util.Random;

/**
 * NF4 dequantization speed (issue 14, part 5): one Llama-2-7B MLP projection (11008 x 4096) quantized from bf16, then
 * its forward in a QLoRA layer (dequantize into the shared buffer + matmul) for a few tokens, and dequantization alone
 * ({@code prepareBackward} after another layer used the buffer); best and median of N.
 *
 * <pre>bench/dequant.sh [TOKENS] [REPEATS]</pre>
 */
public final class DequantBench {
    private DequantBench() {}

    public static void main(String[] args) throws Exception {
        int tokens = args.length > 0 ? Integer.parseInt(args[0]) : 256;
        int repeats = args.length > 1 ? Integer.parseInt(args[1]) : 7;
        long out = 11008;
        long in = 4096;
        Random r = new Random(1);
        float[] w = new float[(int) (out * in)];
        for (int i = 0; i < w.length; i++) {
            // bf16 values, as a bf16 checkpoint holds them (the quantizer takes the compute dtype's values).
            w[i] = dev.jtune.model.safetensors.HalfFloats.bfloat16ToFloat(
                    dev.jtune.model.safetensors.HalfFloats.floatToBFloat16((float) (r.nextGaussian() * 0.02)));
        }
        float[] x = new float[(int) (tokens * in)];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        Kernels k = Kernels.get();
        try (NDManager m = Torch.newManager()) {
            var factory = Nf4.linearFactory();
            var a = factory.createFromValues("model.layers.0.mlp.up_proj", out, in, () -> w.clone(), Dtype.BF16, m);
            var b = factory.createFromValues("model.layers.1.mlp.up_proj", out, in, () -> w.clone(), Dtype.BF16, m);
            NDArray xs = k.cast(m.create(x, new Shape(1, tokens, in)), Dtype.BF16);
            double[] forward = new double[repeats];
            double[] dequant = new double[repeats];
            for (int i = 0; i < repeats; i++) {
                try (NDManager step = m.newSubManager()) {
                    NDArray xi = xs.duplicate();
                    xi.attach(step);
                    long t0 = System.nanoTime();
                    a.forward(xi);
                    forward[i] = (System.nanoTime() - t0) / 1e6;
                    b.forward(xi);
                    long t1 = System.nanoTime();
                    a.prepareBackward(); // refills the buffer that b's forward overwrote: one dequantization
                    dequant[i] = (System.nanoTime() - t1) / 1e6;
                }
            }
            java.util.Arrays.sort(forward);
            java.util.Arrays.sort(dequant);
            System.out.printf(Locale.ROOT, "NF4 %dx%d bf16, %d tokens, %d threads: forward (dequantize + matmul) best %.1f ms"
                    + " median %.1f ms; dequantize alone best %.1f ms median %.1f ms (%.0f M values/s); load average %s%n",
                    out, in, tokens, Torch.threads(), forward[0], forward[repeats / 2], dequant[0], dequant[repeats / 2],
                    out * in / dequant[0] / 1e3, LoadBench.loadAverage());
        }
    }
}
