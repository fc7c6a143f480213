package dev.jtune.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.quant.Nf4;
import dev.jtune.quant.Nf4Quantizer;

/**
 * PEFT's LoftQ initialisation ({@code init_lora_weights="loftq"}, Axolotl's {@code peft: {loftq_config: {loftq_bits:
 * 4}}} with {@code adapter: lora}; PEFT's utils/loftq_utils.py {@code loftq_init} and tuners/lora/layer.py
 * {@code LoraLayer.loftq_init}): for each adapted module with weight W (taken in fp32),
 * <pre>
 *   res = W
 *   repeat loftq_iter times:
 *     Q = dequantize(NF4(res))            bitsandbytes Params4bit, blocksize 64, compress_statistics=False
 *     res = W - Q
 *     L, R = U·sqrt(S[:r]), sqrt(S[:r])·Vh of svd(res)   (rank r = lora_r)
 *     (unless last) res = W - L·R
 *   base weight := Q (in the model's dtype);  lora_A := R;  lora_B := L
 * </pre>
 * so the layer starts as {@code Q + scaling·L·R}: PEFT does not divide by the LoRA scaling. The base stays a dense
 * weight (the quantized-then-dequantized values), as PEFT leaves it. Only 4-bit is ported (PEFT's 8-bit path goes
 * through bitsandbytes' Int8Params).
 */
public final class Loftq {
    private Loftq() {}

    /** Applies LoftQ to every adapted module of {@code lora}; returns how many. */
    public static int apply(LoraModel lora, int bits, int iterations) {
        int n = 0;
        for (var e : lora.adapters().entrySet()) {
            apply(e.getValue(), e.getKey(), bits, iterations);
            n++;
        }
        return n;
    }

    /**
     * Applies LoftQ to one module (its base must be a dense weight).
     *
     * @throws IllegalArgumentException for bits other than 4, iterations below 1, or a base that is not dense
     */
    public static void apply(LoraLinear l, String name, int bits, int iterations) {
        if (bits != 4) {
            throw new IllegalArgumentException("peft.loftq_config.loftq_bits: " + bits + " is not supported: jtune ports"
                    + " PEFT's 4-bit (NF4) LoftQ");
        }
        if (iterations < 1) {
            throw new IllegalArgumentException("loftq_iter must be at least 1, got " + iterations);
        }
        if (!(l.base() instanceof DenseLinear dense)) {
            throw new IllegalArgumentException("LoftQ on " + name + ": the base is " + l.base().getClass().getSimpleName()
                    + "; LoftQ initialises from a 16/32-bit weight (adapter: lora without load_in_4bit/load_in_8bit)");
        }
        NDArray weight = dense.weight();
        long[] shape = weight.getShape().getShape();
        int r = l.rank();
        try (NDManager scratch = weight.getManager().newSubManager()) {
            NDArray w32 = Kernels.get().dtypeOf(weight) == Dtype.FP32 ? weight : Kernels.get().cast(weight, Dtype.FP32);
            if (w32 != weight) w32.attach(scratch);
            float[] w = w32.toFloatArray();
            float[] res = w.clone();
            float[] q = null;
            NDArray lArr = null;
            NDArray rArr = null;
            for (int i = 0; i < iterations; i++) {
                q = Nf4Quantizer.roundTripPlain(res, Nf4.BLOCKSIZE);
                for (int j = 0; j < res.length; j++) res[j] = w[j] - q[j];
                NDList lr = LoraKernels.loftqFactors(scratch.create(res, weight.getShape()), r);
                lr.attach(scratch);
                lArr = lr.get(0);
                rArr = lr.get(1);
                if (i + 1 == iterations) break;
                float[] lrProduct = lArr.matMul(rArr).toFloatArray();
                for (int j = 0; j < res.length; j++) res[j] = w[j] - lrProduct[j];
            }
            LoraKernels.copyInto(weight, scratch.create(q, weight.getShape())); // .to(dtype): rounds once
            LoraKernels.copyInto(l.loraA(), rArr);
            LoraKernels.copyInto(l.loraB(), lArr);
            if (shape.length != 2) throw new IllegalStateException("2-d weight expected");
        }
    }
}
