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
        java.util.List<Deferred> pending = DEFERRED.get();
        // A deferred step walks graph nodes this walk also visits (the layer's norms, its residual): keep them.
        JniUtils.backward((PtNDArray) out, (PtNDArray) upstream, !pending.isEmpty(), false);
        drain(pending);
    }

    /**
     * A piece of backward that libtorch's autograd cannot express from Java, where a gradient must be transformed by
     * something that depends on its own values (fp8 training quantizes each projection's output gradient with a
     * scale taken from that gradient's maximum: torchao's autograd function). Its forward made a leaf where the
     * gradient stops; once {@link #ready} the gradient there is complete, and {@link #run} continues backward from
     * it ({@link #backwardRetaining}).
     */
    public interface Deferred {
        /** Whether the stopped gradient has arrived (every later step of backward has run). */
        boolean ready();

        /** Continues backward from the stopped gradient, then frees what the step held. */
        void run();

        /** Whether its tensors are gone (a forward nobody walked back): dropped without running. */
        boolean released();
    }

    private static final ThreadLocal<java.util.List<Deferred>> DEFERRED =
            ThreadLocal.withInitial(java.util.ArrayList::new);

    /**
     * Registers a deferred step of this thread's next backward passes. Steps run after each {@link #backward} call,
     * the latest registered first (the reverse of forward: a step's gradient can only come from later ones), each as
     * soon as its gradient has arrived; ranks simulated by threads keep their own.
     */
    public static void defer(Deferred step) {
        java.util.List<Deferred> pending = DEFERRED.get();
        pending.removeIf(Deferred::released);
        pending.add(step);
    }

    private static void drain(java.util.List<Deferred> pending) {
        for (int i = pending.size() - 1; i >= 0; i--) {
            Deferred d = pending.get(i);
            if (d.released()) {
                pending.remove(i);
            } else if (d.ready()) {
                pending.remove(i);
                d.run();
                i = Math.min(i, pending.size()); // run may not add steps, but stay in bounds
            }
        }
    }

    /** Backward from {@code out} with {@code upstream}, keeping the graph for other deferred steps (no drain). */
    public static void backwardRetaining(NDArray out, NDArray upstream) {
        JniUtils.backward((PtNDArray) out, (PtNDArray) upstream, true, false);
    }

    /** Whether grad mode is on in this thread (a forward records its graph). */
    public static boolean gradMode() {
        return JniUtils.isGradMode();
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
