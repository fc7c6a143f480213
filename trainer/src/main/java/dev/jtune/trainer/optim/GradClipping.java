package dev.jtune.trainer.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Objects;

/**
 * {@code torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=2)}: the global L2 norm over all
 * gradients (the norm of the per-tensor norms), then every gradient multiplied in place by
 * {@code clamp(max_norm / (total_norm + 1e-6), max=1.0)} — also when that factor is 1, as torch does.
 */
public final class GradClipping {
    private GradClipping() {}

    /**
     * Clips in place and returns the norm before clipping (what transformers logs as {@code grad_norm}).
     * With {@code maxNorm <= 0} only measures. Parameters without a gradient are skipped.
     */
    public static double clip(Collection<NDArray> params, double maxNorm, NDManager scratchParent) {
        Objects.requireNonNull(scratchParent, "scratchParent");
        List<NDArray> grads = Gradients.open(params);
        try (NDManager scratch = scratchParent.newSubManager()) {
            List<NDArray> present = new ArrayList<>();
            for (NDArray g : grads) {
                if (g != null) {
                    present.add(g);
                }
            }
            if (present.isEmpty()) {
                return 0.0;
            }
            OptimKernels k = OptimKernels.get();
            NDArray total = k.totalNorm(present, scratch);
            double norm = Tensors.floats(total)[0]; // bf16 gradients give a bf16 norm, as torch's
            if (maxNorm > 0) {
                NDArray coef = k.clipCoef(total, maxNorm);
                for (NDArray g : present) {
                    k.mulInPlace(g, coef);
                }
            }
            return norm;
        } finally {
            Gradients.close(grads);
        }
    }
}
