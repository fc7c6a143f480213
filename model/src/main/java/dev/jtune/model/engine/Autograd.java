package dev.jtune.model.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import java.util.function.Supplier;

/**
 * libtorch's autograd as jtune uses it: grad mode (thread-local), backward from a tensor with an upstream
 * gradient, the gradients accumulated in leaves, and the generator's seed. The only place outside the engine's
 * own bridge that touches DJL's JNI for these, so that recipes stay free of DJL's internals.
 *
 * <p>Not DJL's {@code GradientCollector}: it allows one collector per JVM, while ranks simulated by threads each
 * run backward at the same time, and grad mode is thread-local in libtorch.
 */
public final class Autograd {
    private Autograd() {}

    /**
     * Runs {@code body} with grad mode off, restoring it afterwards: in-place updates of leaves that require grad,
     * and forward passes whose graph nobody will walk back.
     */
    public static <T> T noGrad(Supplier<T> body) {
        return withGradMode(false, body);
    }

    /** Runs {@code body} with grad mode on (recording the graph for backward), restoring it afterwards. */
    public static <T> T withGrad(Supplier<T> body) {
        return withGradMode(true, body);
    }

    private static <T> T withGradMode(boolean on, Supplier<T> body) {
        boolean was = JniUtils.isGradMode();
        JniUtils.setGradMode(on);
        try {
            return body.get();
        } finally {
            JniUtils.setGradMode(was);
        }
    }

    /**
     * Backpropagates {@code upstream} (the gradient of some scalar with respect to {@code out}, same shape)
     * through {@code out}'s graph, accumulating into the {@code .grad} of every leaf that requires grad; the
     * graph is freed.
     */
    public static void backward(NDArray out, NDArray upstream) {
        JniUtils.backward((PtNDArray) out, (PtNDArray) upstream, false, false);
    }

    /** Backward from a scalar {@code loss} with a gradient of one ({@code loss.backward()}). */
    public static void backward(NDArray loss) {
        try (NDArray ones = loss.onesLike()) {
            backward(loss, ones);
        }
    }

    /**
     * A new handle on {@code leaf}'s accumulated gradient, or null where backward has not reached it; the caller
     * closes the handle (the gradient lives on in the leaf). Unlike DJL's {@code getGradient()}, nothing is made
     * when there is no gradient.
     */
    public static NDArray gradient(NDArray leaf) {
        return JniUtils.getGradient((PtNDArray) leaf);
    }

    /**
     * Whether {@code leaf} requires grad. Ask leaves only: for a non-leaf result DJL reports false, and its
     * grad_fn lookup dereferences a null grad_fn (a frozen input) and crashes the JVM.
     */
    public static boolean requiresGrad(NDArray leaf) {
        return JniUtils.requiresGrad((PtNDArray) leaf);
    }

    /** Seeds libtorch's default generator ({@code torch.manual_seed}): dropout masks drawn after it follow. */
    public static void manualSeed(long seed) {
        JniUtils.setSeed(seed);
    }
}
