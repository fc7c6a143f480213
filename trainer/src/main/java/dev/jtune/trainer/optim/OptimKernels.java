package dev.jtune.trainer.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDArrays;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.KernelLibrary;
import java.util.List;

/**
 * The TorchScript kernels of {@code optim.torchscript.py}: fused in-place optimizer updates, gradient norms
 * and finiteness checks. Every call runs with autograd switched off, as torch.optim does under no_grad.
 */
final class OptimKernels {
    private static final KernelLibrary LIBRARY = new KernelLibrary(OptimKernels.class, "Ops", "optim.torchscript.py");
    private static final OptimKernels INSTANCE = new OptimKernels();

    private OptimKernels() {}

    static OptimKernels get() {
        return INSTANCE;
    }

    void adamw(NDArray param, NDArray grad, NDArray expAvg, NDArray expAvgSq, double decay, boolean applyDecay,
            double oneMinusBeta1, double beta2, double oneMinusBeta2, double stepSize, double biasCorrection2Sqrt,
            double eps) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("adamw_", param, grad, expAvg, expAvgSq, decay, applyDecay, oneMinusBeta1, beta2,
                oneMinusBeta2, stepSize, biasCorrection2Sqrt, eps));
    }

    /** bitsandbytes' dynamic 8-bit map ({@code create_dynamic_map(signed)}): 256 sorted fp32 values, in {@code m}. */
    NDArray dynamicMap(boolean signed, NDManager m) {
        NDArray map = Autograd.noGrad(() -> LIBRARY.ops().call("dynamic_map", signed));
        map.attach(m);
        return map;
    }

    /** One bitsandbytes 8-bit blockwise AdamW update of one tensor, in place (see optim.torchscript.py). */
    void bnbAdam8bit(NDArray param, NDArray grad, NDArray state1, NDArray state2, NDArray absmax1, NDArray absmax2,
            NDArray code1, NDArray code2, Bnb.Scalars s) {
        bnbAdam8bit(param, grad, state1, state2, absmax1, absmax2, code1, code2, s, Bnb.CHUNK);
    }

    /** The same, {@code chunk} values (a multiple of 256) at a time. */
    void bnbAdam8bit(NDArray param, NDArray grad, NDArray state1, NDArray state2, NDArray absmax1, NDArray absmax2,
            NDArray code1, NDArray code2, Bnb.Scalars s, int chunk) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("bnb_adam8bit_", param, grad, state1, state2, absmax1, absmax2,
                code1, code2, (double) s.beta1(), (double) s.beta2(), (double) s.oneMinusBeta1(),
                (double) s.oneMinusBeta2(), (double) s.epsC2(), (double) s.stepSize(), (double) s.decay(),
                s.applyDecay(), (long) chunk));
    }

    /** One bitsandbytes 32-bit AdamW update, in place (see optim.torchscript.py). */
    void bnbAdam32(NDArray param, NDArray grad, NDArray state1, NDArray state2, Bnb.Scalars s) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("bnb_adam32_", param, grad, state1, state2, (double) s.beta1(),
                (double) s.beta2(), (double) s.oneMinusBeta1(), (double) s.oneMinusBeta2(), (double) s.epsC2(),
                (double) s.stepSize(), (double) s.decay(), s.applyDecay()));
    }

    /** One torchao AdamW8bit update of a tensor with 8-bit state, in place (see optim.torchscript.py). */
    void torchaoAdamW8bit(NDArray param, NDArray grad, NDArray codes1, NDArray codes2, NDArray scale1, NDArray scale2,
            NDArray qmap1, NDArray qmap2, double lr, double weightDecay, double beta1, double beta2, double eps,
            long step) {
        torchaoAdamW8bit(param, grad, codes1, codes2, scale1, scale2, qmap1, qmap2, lr, weightDecay, beta1, beta2, eps,
                step, Bnb.CHUNK);
    }

    /** The same, {@code chunk} values (a multiple of 256) at a time. */
    void torchaoAdamW8bit(NDArray param, NDArray grad, NDArray codes1, NDArray codes2, NDArray scale1, NDArray scale2,
            NDArray qmap1, NDArray qmap2, double lr, double weightDecay, double beta1, double beta2, double eps,
            long step, int chunk) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("torchao_adamw8bit_", param, grad, codes1, codes2, scale1, scale2,
                qmap1, qmap2, lr, weightDecay, beta1, beta2, eps, (double) step, (long) chunk));
    }

    /** torchao's 4-bit maps ({@code get_qmap_signed()}, {@code get_qmap_unsigned()}): 16 sorted fp32 values, in {@code m}. */
    NDArray torchaoQmap4(boolean signed, NDManager m) {
        NDArray map = Autograd.noGrad(() -> LIBRARY.ops().call("torchao_qmap4", signed));
        map.attach(m);
        return map;
    }

    /**
     * One torchao AdamW4bit update of a tensor with 4-bit state (packed codes, one byte per two values; one scale per
     * block of 128), in place, {@code chunk} values (a multiple of 128) at a time (see optim.torchscript.py).
     */
    void torchaoAdamW4bit(NDArray param, NDArray grad, NDArray codes1, NDArray codes2, NDArray scale1, NDArray scale2,
            NDArray qmap1, NDArray qmap2, double lr, double weightDecay, double beta1, double beta2, double eps,
            long step, int chunk) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("torchao_adamw4bit_", param, grad, codes1, codes2, scale1, scale2,
                qmap1, qmap2, lr, weightDecay, beta1, beta2, eps, (double) step, (long) chunk));
    }

    /** Axolotl's ReLoRA {@code magnitude_pruning_} of an fp32 tensor (or of uint8 codes), in place. */
    void reloraMagnitudePrune(NDArray x, double ratio, boolean codes) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong(codes ? "relora_magnitude_prune_u8_" : "relora_magnitude_prune_f32_",
                x, ratio));
    }

    /** One torchao AdamW8bit update of a tensor with fp32 state, in place. */
    void torchaoAdamW32(NDArray param, NDArray grad, NDArray m, NDArray v, double lr, double weightDecay,
            double beta1, double beta2, double eps, long step) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("torchao_adamw32_", param, grad, m, v, lr, weightDecay, beta1,
                beta2, eps, (double) step));
    }

    /** {@code code[c] * absmax[block]} for uint8 codes (blocks of 256), flat fp32 in the codes' manager. */
    NDArray dequantizeBlockwise(NDArray codes, NDArray absmax, NDArray code) {
        return Autograd.noGrad(() -> LIBRARY.ops().call("dequantize_blockwise", codes, absmax, code));
    }

    /** Blockwise 8-bit codes of {@code x} by the update's rule; {@code absmaxOut} receives the block absmax. */
    NDArray quantizeBlockwise(NDArray x, NDArray code, boolean signed, NDArray absmaxOut) {
        return Autograd.noGrad(() -> LIBRARY.ops().call("quantize_blockwise", x, code, signed, absmaxOut));
    }

    /**
     * The global L2 norm of {@code grads} as torch.nn.utils.clip_grad_norm_ computes it: the norm of the
     * stacked per-tensor norms. The result (fp32 scalar) joins {@code manager}.
     */
    NDArray totalNorm(List<NDArray> grads, NDManager manager) {
        return Autograd.noGrad(() -> {
            try (NDManager scratch = manager.newSubManager()) {
                NDList norms = new NDList(grads.size());
                for (NDArray g : grads) {
                    NDArray n = LIBRARY.ops().call("vector_norm", g);
                    n.attach(scratch);
                    norms.add(n);
                }
                NDArray stacked = NDArrays.stack(norms);
                NDArray total = LIBRARY.ops().call("stacked_norm", stacked);
                total.attach(manager);
                return total;
            }
        });
    }

    /** clamp(maxNorm / (total + 1e-6), max=1), fp32 scalar in total's manager. */
    NDArray clipCoef(NDArray total, double maxNorm) {
        return Autograd.noGrad(() -> LIBRARY.ops().call("clip_coef", total, maxNorm));
    }

    void mulInPlace(NDArray x, NDArray factor) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("mul_", x, factor));
    }

    void scaleInPlace(NDArray x, double factor) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("scale_", x, factor));
    }

    void copyInto(NDArray dst, NDArray src) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("copy_", dst, src));
    }

    void zeroInPlace(NDArray x) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("zero_", x));
    }

    boolean allFinite(NDArray x) {
        return Autograd.noGrad(() -> LIBRARY.ops().callLong("all_finite", x)) == 1;
    }

    /** Frees {@code x}'s storage; the handle stays the same leaf (0 elements until {@link #useStorage}). */
    void freeStorage(NDArray x) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("free_storage_", x));
    }

    /** Points {@code x} at {@code source}'s storage, shape and strides (no copy). */
    void useStorage(NDArray x, NDArray source) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("use_storage_", x, source));
    }

    /** Elements {@code x} has now (0 while its storage is freed); DJL's cached shape would not say. */
    long numel(NDArray x) {
        return LIBRARY.ops().callLong("numel", x);
    }

    /** {@code torch.autograd.grad(out, inputs, upstream, allow_unused=True)}, zeros for unreached inputs. */
    NDList grads(NDArray out, NDArray upstream, NDList inputs) {
        return LIBRARY.ops().callAll("grads", out, upstream, inputs);
    }
}
