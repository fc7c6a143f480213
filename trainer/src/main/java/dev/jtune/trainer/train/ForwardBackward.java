package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.DecoderLayer;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.llama.Rope;
import dev.jtune.trainer.optim.Gradients;
import java.util.ArrayList;
import java.util.List;

/**
 * One micro-batch through the model: the forward layer by layer (so that each layer's dropout draws from its
 * own seed and layers can be recomputed), the summed fp32 token NLL of logits {@code [:, :-1]} against labels
 * {@code [:, 1:]}, and optionally the backward of {@code sum / N * lossScale}, accumulating into the
 * parameters' gradients.
 *
 * <p>With gradient checkpointing the decoder layers run without autograd, keeping only each layer's input;
 * backward then walks the layers from last to first, recomputing one layer with autograd from its detached
 * input and backpropagating the upstream gradient through it (libtorch's {@code backward(grad)}), so at most
 * one layer's activations are alive. Every intermediate lives in a per-layer sub-manager closed right after.
 */
final class ForwardBackward {
    private final LlamaModel model;
    private final Rope rope;
    private final boolean checkpointing;
    private final long seed;
    private final LayerHooks hooks;

    /** FSDP's per-decoder-layer hooks; the defaults (no sharding) do nothing. */
    interface LayerHooks {
        LayerHooks NONE = new LayerHooks() {};

        /** Before a layer runs: its forward, or its recompute in backward. */
        default void before(int layer) {}

        /**
         * Once this pass no longer needs the layer's weights: after its no-grad forward, after its recompute's
         * backward (checkpointing), or after the whole backward (no checkpointing).
         */
        default void after(int layer) {}

        /**
         * The layer's trainable tensors whose gradients go to {@link #gradients} instead of accumulating in their
         * {@code .grad} (checkpointing only); empty for none.
         */
        default List<NDArray> shardedParameters(int layer) {
            return List.of();
        }

        /** The gradients of {@link #shardedParameters} from one recompute's backward, in that order. */
        default void gradients(int layer, NDList grads) {}
    }

    ForwardBackward(LlamaModel model, Rope rope, boolean checkpointing, long seed) {
        this(model, rope, checkpointing, seed, LayerHooks.NONE);
    }

    ForwardBackward(LlamaModel model, Rope rope, boolean checkpointing, long seed, LayerHooks hooks) {
        this.model = model;
        this.rope = rope;
        this.checkpointing = checkpointing;
        this.seed = seed;
        this.hooks = hooks;
    }

    /** The result of one micro-batch: summed NLL and the number of tokens it covers. */
    record Result(double nllSum, long trainedTokens) {}

    /**
     * Runs one micro-batch.
     *
     * @param denominator N, the trained tokens of the whole accumulated batch
     * @param lossScale the fp16 loss scale, 1 otherwise
     * @param backward false for evaluation (no autograd at all)
     * @param step 0-based optimizer step, for the dropout seeds
     * @param micro index of the micro-batch within the step
     */
    Result run(Batch batch, long denominator, double lossScale, boolean backward, long step, int micro,
            NDManager parent) {
        try (NDManager m = parent.newSubManager()) {
            Inputs in = inputs(batch, m);
            if (!backward) {
                return Torch.noGrad(() -> forwardLoss(in, step, micro, m));
            }
            // Not DJL's GradientCollector: it allows one collector per JVM, and ranks simulated by threads each
            // run backward at the same time. Grad mode is thread-local in libtorch.
            boolean was = JniUtils.isGradMode();
            JniUtils.setGradMode(true);
            try {
                return checkpointing
                        ? checkpointed(in, denominator, lossScale, step, micro, m)
                        : plain(in, denominator, lossScale, step, micro);
            } finally {
                JniUtils.setGradMode(was);
            }
        }
    }

    private record Inputs(NDArray ids, NDArray cos, NDArray sin, NDArray segments, NDArray labels, long rows,
            long length) {}

    private Inputs inputs(Batch b, NDManager m) {
        int rows = b.rows();
        int len = b.length();
        long[] ids = new long[rows * len];
        long[] pos = new long[rows * len];
        long[] seg = new long[rows * len];
        long[] labels = new long[rows * len];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < len; i++) {
                int at = r * len + i;
                ids[at] = b.inputIds()[at];
                pos[at] = b.positionIds()[at];
                seg[at] = b.segmentIds()[at];
                // Shift: position i predicts label i+1; the last position predicts nothing.
                labels[at] = i + 1 < len ? b.labels()[at + 1] : Kernels.IGNORE_INDEX;
            }
        }
        Shape shape = new Shape(rows, len);
        NDArray idArray = m.create(ids, shape);
        NDArray posArray = m.create(pos, shape);
        NDList cosSin = rope.cosSin(posArray, model.dtype());
        NDArray segments = b.packed() ? m.create(seg, shape) : null;
        return new Inputs(idArray, cosSin.get(0), cosSin.get(1), segments, m.create(labels), rows, len);
    }

    private void seedLayer(long step, int micro, int layer) {
        JniUtils.setSeed(mix(seed, step, micro, layer));
    }

    /** A 63-bit seed from (seed, step, micro, layer): splitmix64 rounds. */
    static long mix(long seed, long step, long micro, long layer) {
        long h = seed;
        for (long v : new long[] {step, micro, layer}) {
            h = splitmix(h ^ splitmix(v + 0x9E3779B97F4A7C15L));
        }
        return h & Long.MAX_VALUE;
    }

    private static long splitmix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private NDArray layer(int i, NDArray x, Inputs in, long step, int micro) {
        hooks.before(i);
        seedLayer(step, micro, i);
        return model.layers().get(i).forward(x, in.cos(), in.sin(), in.segments());
    }

    /** [sum NLL (fp32 scalar), logits] from the final hidden states. */
    private NDArray nllSum(NDArray hidden, Inputs in) {
        Kernels k = Kernels.get();
        NDArray h = k.rmsNorm(hidden, model.norm(), model.config().rmsNormEps());
        NDArray logits = model.lmHead().forward(h);
        NDArray flat = logits.reshape(in.rows() * in.length(), -1);
        NDList sc = k.crossEntropySum(flat, in.labels());
        return sc.get(0);
    }

    private Result forwardLoss(Inputs in, long step, int micro, NDManager m) {
        NDArray x = Kernels.get().embedding(in.ids(), model.embedTokens());
        for (int i = 0; i < model.layers().size(); i++) {
            // Evaluation keeps nothing per layer: each layer's intermediates go with its sub-manager.
            try (NDManager lm = m.newSubManager()) {
                NDArray xi = x.stopGradient();
                xi.attach(lm);
                NDArray out = layer(i, xi, in, step, micro);
                out.attach(m);
                x = out;
            }
            hooks.after(i);
        }
        NDArray sum = nllSum(x, in);
        return new Result(sum.getFloat(), trained(in));
    }

    private static long trained(Inputs in) {
        long n = 0;
        for (long l : in.labels().toLongArray()) {
            if (l != Kernels.IGNORE_INDEX) n++;
        }
        return n;
    }

    private static NDArray scaledLoss(NDArray sum, long denominator, double lossScale) {
        NDArray loss = sum.div((float) denominator);
        return lossScale == 1.0 ? loss : loss.mul((float) lossScale);
    }

    /** {@code GradientCollector.backward}: backward from {@code loss} with a gradient of ones. */
    private static void backward(NDArray loss) {
        try (NDArray ones = loss.onesLike()) {
            JniUtils.backward((PtNDArray) loss, (PtNDArray) ones, false, false);
        }
    }

    private Result plain(Inputs in, long denominator, double lossScale, long step, int micro) {
        NDArray x = Kernels.get().embedding(in.ids(), model.embedTokens());
        for (int i = 0; i < model.layers().size(); i++) {
            x = layer(i, x, in, step, micro);
        }
        NDArray sum = nllSum(x, in);
        double value = sum.getFloat();
        backward(scaledLoss(sum, denominator, lossScale));
        for (int i = 0; i < model.layers().size(); i++) {
            hooks.after(i);
        }
        return new Result(value, trained(in));
    }

    private Result checkpointed(Inputs in, long denominator, double lossScale, long step, int micro, NDManager m) {
        NDArray x0 = Kernels.get().embedding(in.ids(), model.embedTokens());
        int n = model.layers().size();
        List<NDArray> layerInputs = new ArrayList<>(n + 1);
        layerInputs.add(x0);
        Torch.noGrad(() -> {
            NDArray x = x0;
            for (int i = 0; i < n; i++) {
                try (NDManager lm = m.newSubManager()) {
                    NDArray xi = x.stopGradient();
                    xi.attach(lm);
                    NDArray out = layer(i, xi, in, step, micro);
                    out.attach(m);
                    x = out;
                }
                hooks.after(i);
                layerInputs.add(x);
            }
            return null;
        });
        NDArray last = leaf(layerInputs.get(n));
        NDArray sum = nllSum(last, in);
        double value = sum.getFloat();
        backward(scaledLoss(sum, denominator, lossScale));
        NDArray upstream = JniUtils.getGradient((PtNDArray) last);
        for (int i = n - 1; i >= 0; i--) {
            try (NDManager lm = m.newSubManager()) {
                NDArray xi = leaf(layerInputs.get(i));
                xi.attach(lm);
                NDArray out = layer(i, xi, in, step, micro);
                List<NDArray> sharded = hooks.shardedParameters(i);
                NDArray next;
                if (sharded.isEmpty()) {
                    JniUtils.backward((PtNDArray) out, (PtNDArray) upstream, false, false);
                    next = JniUtils.getGradient((PtNDArray) xi);
                } else {
                    NDList wrt = new NDList(xi);
                    wrt.addAll(sharded);
                    NDList grads = Gradients.of(out, upstream, wrt);
                    next = grads.get(0);
                    hooks.gradients(i, grads.subNDList(1));
                }
                next.attach(m);
                upstream.close();
                upstream = next;
            }
            hooks.after(i);
        }
        if (embeddingTrains()) {
            JniUtils.backward((PtNDArray) x0, (PtNDArray) upstream, false, false);
        }
        upstream.close();
        return new Result(value, trained(in));
    }

    /**
     * Whether backward through the embedding output reaches anything: whether the embedding weight (a leaf)
     * requires grad. Not asked of the output itself: DJL's requiresGrad is false for non-leaf results, and its
     * grad_fn name lookup dereferences a null grad_fn (frozen embedding, as under LoRA) and crashes the JVM.
     */
    private boolean embeddingTrains() {
        return JniUtils.requiresGrad((PtNDArray) model.embedTokens());
    }

    /** A detached copy of {@code x}'s handle that requires grad: the start of a recomputed segment. */
    private static NDArray leaf(NDArray x) {
        NDArray d = x.stopGradient();
        d.setRequiresGradient(true);
        return d;
    }

}
