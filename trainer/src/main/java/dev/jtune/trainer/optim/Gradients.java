package dev.jtune.trainer.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import dev.jtune.model.engine.Autograd;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.function.Consumer;

/**
 * Access to the {@code .grad} of trainable tensors without DJL's side effects: DJL's
 * {@code getGradient()} makes a zeros array when no gradient exists and leaves a new handle in the
 * parameter's manager on every call; here each handle is closed as soon as it has been used.
 */
public final class Gradients {
    private Gradients() {}

    /**
     * Calls {@code use} with each parameter's gradient (null where backward has not reached it yet); the
     * handles are closed afterwards, the gradients themselves live on in their parameters.
     */
    public static void forEach(Collection<NDArray> params, Consumer<NDArray> use) {
        List<NDArray> grads = open(params);
        try {
            grads.forEach(use);
        } finally {
            close(grads);
        }
    }

    /** Opens a handle on every gradient (null entries for parameters without one); close with {@link #close}. */
    public static List<NDArray> open(Collection<NDArray> params) {
        List<NDArray> grads = new ArrayList<>(params.size());
        for (NDArray p : params) {
            grads.add(Autograd.gradient(p));
        }
        return grads;
    }

    /** Closes handles from {@link #open}. */
    public static void close(List<NDArray> grads) {
        for (NDArray g : grads) {
            if (g != null) {
                g.close();
            }
        }
    }

    /** Sets every existing gradient to zero, in place ({@code optimizer.zero_grad(set_to_none=False)}). */
    public static void zero(Collection<NDArray> params) {
        forEach(params, g -> {
            if (g != null) {
                OptimKernels.get().zeroInPlace(g);
            }
        });
    }

    /** True when every existing gradient holds only finite values. */
    public static boolean allFinite(Collection<NDArray> params) {
        boolean[] finite = {true};
        forEach(params, g -> {
            if (g != null && finite[0] && !OptimKernels.get().allFinite(g)) {
                finite[0] = false;
            }
        });
        return finite[0];
    }

    /** Multiplies every existing gradient by {@code factor} in place (fp32 scalar arithmetic, as torch). */
    public static void scale(Collection<NDArray> params, double factor) {
        forEach(params, g -> {
            if (g != null) {
                OptimKernels.get().scaleInPlace(g, factor);
            }
        });
    }

    /**
     * The gradients of {@code sum(out * upstream)} with respect to each of {@code inputs}, returned rather than
     * accumulated into their {@code .grad} ({@code torch.autograd.grad}); zeros for an input the graph does not
     * reach. The results join {@code out}'s manager.
     */
    public static NDList of(NDArray out, NDArray upstream, NDList inputs) {
        return OptimKernels.get().grads(out, upstream, inputs);
    }
}
