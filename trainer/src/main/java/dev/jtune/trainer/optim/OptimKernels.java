package dev.jtune.trainer.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDArrays;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.ScriptModule;
import dev.jtune.model.engine.Torch;
import java.util.List;

/**
 * The TorchScript kernels of {@code optim.torchscript.py}: fused in-place optimizer updates, gradient norms
 * and finiteness checks. Every call runs with autograd switched off, as torch.optim does under no_grad.
 */
final class OptimKernels {
    private static final String RESOURCE = "optim.torchscript.py";
    private static volatile OptimKernels instance;

    private final ScriptModule ops;

    private OptimKernels(ScriptModule ops) {
        this.ops = ops;
    }

    static OptimKernels get() {
        OptimKernels k = instance;
        if (k == null) {
            synchronized (OptimKernels.class) {
                k = instance;
                if (k == null) {
                    // Lives as long as the process, like the model's kernels.
                    NDManager manager = Torch.newManager();
                    k = new OptimKernels(ScriptModule.compile(manager, "Ops", Kernels.source(OptimKernels.class,
                            RESOURCE), RESOURCE));
                    instance = k;
                }
            }
        }
        return k;
    }

    void adamw(NDArray param, NDArray grad, NDArray expAvg, NDArray expAvgSq, double decay, boolean applyDecay,
            double oneMinusBeta1, double beta2, double oneMinusBeta2, double stepSize, double biasCorrection2Sqrt,
            double eps) {
        Torch.noGrad(() -> ops.callLong("adamw_", param, grad, expAvg, expAvgSq, decay, applyDecay, oneMinusBeta1, beta2,
                oneMinusBeta2, stepSize, biasCorrection2Sqrt, eps));
    }

    /**
     * The global L2 norm of {@code grads} as torch.nn.utils.clip_grad_norm_ computes it: the norm of the
     * stacked per-tensor norms. The result (fp32 scalar) joins {@code manager}.
     */
    NDArray totalNorm(List<NDArray> grads, NDManager manager) {
        return Torch.noGrad(() -> {
            try (NDManager scratch = manager.newSubManager()) {
                NDList norms = new NDList(grads.size());
                for (NDArray g : grads) {
                    NDArray n = ops.call("vector_norm", g);
                    n.attach(scratch);
                    norms.add(n);
                }
                NDArray stacked = NDArrays.stack(norms);
                NDArray total = ops.call("stacked_norm", stacked);
                total.attach(manager);
                return total;
            }
        });
    }

    /** clamp(maxNorm / (total + 1e-6), max=1), fp32 scalar in total's manager. */
    NDArray clipCoef(NDArray total, double maxNorm) {
        return Torch.noGrad(() -> ops.call("clip_coef", total, maxNorm));
    }

    void mulInPlace(NDArray x, NDArray factor) {
        Torch.noGrad(() -> ops.callLong("mul_", x, factor));
    }

    void scaleInPlace(NDArray x, double factor) {
        Torch.noGrad(() -> ops.callLong("scale_", x, factor));
    }

    void copyInto(NDArray dst, NDArray src) {
        Torch.noGrad(() -> ops.callLong("copy_", dst, src));
    }

    void zeroInPlace(NDArray x) {
        Torch.noGrad(() -> ops.callLong("zero_", x));
    }

    boolean allFinite(NDArray x) {
        return Torch.noGrad(() -> ops.callLong("all_finite", x)) == 1;
    }

    /** Frees {@code x}'s storage; the handle stays the same leaf (0 elements until {@link #useStorage}). */
    void freeStorage(NDArray x) {
        Torch.noGrad(() -> ops.callLong("free_storage_", x));
    }

    /** Points {@code x} at {@code source}'s storage, shape and strides (no copy). */
    void useStorage(NDArray x, NDArray source) {
        Torch.noGrad(() -> ops.callLong("use_storage_", x, source));
    }

    /** Elements {@code x} has now (0 while its storage is freed); DJL's cached shape would not say. */
    long numel(NDArray x) {
        return ops.callLong("numel", x);
    }

    /** {@code torch.autograd.grad(out, inputs, upstream, allow_unused=True)}, zeros for unreached inputs. */
    NDList grads(NDArray out, NDArray upstream, NDList inputs) {
        return ops.callAll("grads", out, upstream, inputs);
    }
}
