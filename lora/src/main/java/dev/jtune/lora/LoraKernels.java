package dev.jtune.lora;

import ai.djl.ndarray.NDArray;
import dev.jtune.model.engine.KernelLibrary;
import dev.jtune.model.engine.ScriptModule;

/** The typed face of {@code lora.torchscript.py}; compiled once per process, differentiable. */
final class LoraKernels {
    private static final KernelLibrary LIBRARY = new KernelLibrary(LoraKernels.class, "LoraOps", "lora.torchscript.py");

    private LoraKernels() {}

    private static ScriptModule ops() {
        return LIBRARY.ops();
    }

    /** {@code (baseOut + linear(linear(dropout(x as a's dtype), a), b) * scaling)} in baseOut's dtype. */
    static NDArray loraForward(NDArray x, NDArray baseOut, NDArray a, NDArray b, double p, boolean train,
            double scaling) {
        return ops().call("lora_forward", x, baseOut, a, b, p, train, scaling, scalesExactly(scaling));
    }

    /** As {@link #loraForward} in training with dropout {@code p}, the values kept where {@code keep} is true. */
    static NDArray loraForwardMasked(NDArray x, NDArray baseOut, NDArray a, NDArray b, NDArray keep, double p,
            double scaling) {
        return ops().call("lora_forward_masked", x, baseOut, a, b, keep, p, scaling, scalesExactly(scaling));
    }

    /**
     * Whether multiplying by {@code scaling} is exact in fp32 and bf16 (a power of two of a normal fp32 exponent): then
     * the kernel scales the rank-r intermediate instead of the [.., out] product, with PEFT's bits at r/out the cost.
     */
    static boolean scalesExactly(double scaling) {
        int e = Math.getExponent(scaling);
        return scaling > 0 && e >= Float.MIN_EXPONENT && e <= Float.MAX_EXPONENT && scaling == Math.scalb(1.0, e);
    }

    /** One draw from libtorch's generator (on {@code anchor}'s device): a dropout mask's seed. */
    static long drawSeed(NDArray anchor) {
        return dev.jtune.model.engine.Autograd.noGrad(() -> ops().callLong("draw_seed", anchor));
    }

    /** PEFT's LoftQ low-rank factors of {@code res} [out, in]: L [out, r] and R [r, in], fp32. */
    static ai.djl.ndarray.NDList loftqFactors(NDArray res, int r) {
        return dev.jtune.model.engine.Autograd.noGrad(() -> ops().callAll("loftq_factors", res, (long) r));
    }

    /** {@code dst.copy_(src)} without autograd. */
    static void copyInto(NDArray dst, NDArray src) {
        dev.jtune.model.engine.Autograd.noGrad(() -> ops().callLong("copy_into", dst, src));
    }

    /** {@code linear(x, weight)} computed in weight's dtype, returned in x's dtype. */
    static NDArray linearIn(NDArray x, NDArray weight) {
        return ops().call("linear_in", x, weight);
    }
}
