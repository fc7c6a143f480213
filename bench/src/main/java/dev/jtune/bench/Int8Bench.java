package dev.jtune.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.quant.Int8;
import java.util.Locale;
import java.util.Random;

/**
 * LLM.int8() ({@code load_in_8bit}) forward speed against the dense bf16 product: one projection OUT x IN quantized from
 * bf16, TOKENS tokens, best and median of REPEATS; without autograd (the int8 product) and with it (the int8 product
 * plus the dense product whose backward is bitsandbytes' input gradient). {@code -Djtune.int8.intMm=false} sums the
 * int8 products in float64 instead of {@code torch._int_mm}.
 *
 * <pre>bench/int8.sh [TOKENS] [REPEATS] [OUT] [IN]</pre>
 */
public final class Int8Bench {
    private Int8Bench() {}

    public static void main(String[] args) throws Exception {
        int tokens = args.length > 0 ? Integer.parseInt(args[0]) : 256;
        int repeats = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        long out = args.length > 2 ? Long.parseLong(args[2]) : 11008;
        long in = args.length > 3 ? Long.parseLong(args[3]) : 4096;
        Random r = new Random(1);
        float[] w = new float[(int) (out * in)];
        for (int i = 0; i < w.length; i++) {
            w[i] = dev.jtune.model.safetensors.HalfFloats.bfloat16ToFloat(
                    dev.jtune.model.safetensors.HalfFloats.floatToBFloat16((float) (r.nextGaussian() * 0.02)));
        }
        float[] x = new float[(int) (tokens * in)];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        Kernels k = Kernels.get();
        try (NDManager m = Torch.newManager()) {
            long q0 = System.nanoTime();
            var int8 = Int8.linearFactory().createFromValues("model.layers.0.mlp.up_proj", out, in, () -> w.clone(),
                    Dtype.BF16, m);
            double quantizeMs = (System.nanoTime() - q0) / 1e6;
            var dense = new DenseLinear(k.cast(m.create(w, new Shape(out, in)), Dtype.BF16));
            NDArray xs = k.cast(m.create(x, new Shape(1, tokens, in)), Dtype.BF16);
            double[] plain = new double[repeats];
            double[] withGrad = new double[repeats];
            double[] bf16 = new double[repeats];
            for (int i = 0; i < repeats; i++) {
                try (NDManager step = m.newSubManager()) {
                    NDArray xi = xs.duplicate();
                    xi.attach(step);
                    long t0 = System.nanoTime();
                    int8.forward(xi);
                    plain[i] = (System.nanoTime() - t0) / 1e6;
                    long t1 = System.nanoTime();
                    dense.forward(xi);
                    bf16[i] = (System.nanoTime() - t1) / 1e6;
                    NDArray xg = xs.duplicate();
                    xg.attach(step);
                    xg.setRequiresGradient(true);
                    long t2 = System.nanoTime();
                    Autograd.withGrad(() -> int8.forward(xg));
                    withGrad[i] = (System.nanoTime() - t2) / 1e6;
                }
            }
            java.util.Arrays.sort(plain);
            java.util.Arrays.sort(withGrad);
            java.util.Arrays.sort(bf16);
            System.out.printf(Locale.ROOT, "LLM.int8 %dx%d from bf16, %d tokens, %d threads, int32 sums via %s:"
                    + " quantize (Java) %.0f ms; forward int8 best %.1f ms median %.1f ms; with autograd best %.1f ms"
                    + " median %.1f ms; dense bf16 best %.1f ms median %.1f ms; load average %s%n",
                    out, in, tokens, Torch.threads(),
                    "false".equals(System.getProperty("jtune.int8.intMm")) ? "float64" : "torch._int_mm (if available)",
                    quantizeMs, plain[0], plain[repeats / 2], withGrad[0], withGrad[repeats / 2], bf16[0],
                    bf16[repeats / 2], LoadBench.loadAverage());
        }
    }
}
