package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.ForwardContext;
import dev.jtune.model.llama.LayerPolicy;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.trainer.optim.Gradients;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One micro-batch through the model's decoder stack ({@link LlamaModel#decode}): the summed fp32 token NLL of
 * logits {@code [:, :-1]} against labels {@code [:, 1:]}, and optionally the backward of
 * {@code sum / N * lossScale}, accumulating into the parameters' gradients. What this class adds to the model's
 * forward is only the loss, backward and a {@link LayerPolicy} around each layer call: a per-layer dropout seed,
 * the FSDP hooks, and the memory policy. With the diffusion objective ({@link Diffusion}) the micro-batch is noised
 * first, read with bidirectional attention, and its diffusion loss replaces the summed NLL.
 *
 * <p>Backward always walks the layers from last to first, each from a leaf copy of its input, so that a layer's
 * frozen projections can restore what their backward reads just before it runs
 * ({@link dev.jtune.model.llama.DecoderLayer#prepareBackward}: NF4 weights share one dequantization buffer per
 * projection across layers). Without checkpointing every layer's activations are kept from the forward. With
 * gradient checkpointing the decoder layers run without autograd, keeping only each layer's input; backward then
 * recomputes one layer with autograd from its detached input ({@link LlamaModel#layer}) and backpropagates the
 * upstream gradient through it, so at most one layer's activations are alive. Every intermediate lives in a
 * per-layer sub-manager closed right after.
 *
 * <p>The head and the loss run in chunks of trained tokens ({@link #headBackward}), as Liger's fused linear
 * cross-entropy and Apple's cut cross-entropy do: only the positions whose label is not ignored go through the final
 * norm and the head, a chunk at a time, and each chunk's backward runs at once, so at most one chunk's logits (and
 * their fp32 copy and gradient) are alive; the gradients of the head and the final norm accumulate chunk by chunk.
 * The same sum and gradients as the whole [tokens, vocab] logits, up to the order of fp32 sums. The diffusion
 * objective, whose loss normalises per row, takes the whole logits as before.
 */
final class ForwardBackward {
    private final LlamaModel model;
    private final boolean checkpointing;
    private final long seed;
    private final LayerHooks hooks;
    private final Eaft eaft; // null: plain NLL
    private final Diffusion diffusion; // null: next-token prediction
    private final long headChunk; // tokens per head chunk; 0: the whole logits at once; AUTO: by the vocabulary
    private static final long AUTO = -1;

    /**
     * Logits per head chunk, about 64 MiB in fp32: Llama 3's 128,256-token vocabulary gives chunks of 130 tokens,
     * Llama 2's 32,000 chunks of 524; as fast as the whole logits (bench/head-chunk.sh).
     */
    static final long HEAD_CHUNK_LOGITS = 1L << 24;

    /**
     * Logits per head chunk when the head's own weight trains (full fine-tuning; a tied embedding that trains): each
     * chunk's backward then adds a [vocab, hidden] gradient, which at 130 tokens a chunk cost 18% of a step
     * (bench/head-chunk.sh); at 520 none.
     */
    static final long TRAINED_HEAD_CHUNK_LOGITS = 1L << 26;

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

    ForwardBackward(LlamaModel model, boolean checkpointing, long seed) {
        this(model, checkpointing, seed, LayerHooks.NONE);
    }

    ForwardBackward(LlamaModel model, boolean checkpointing, long seed, LayerHooks hooks) {
        this(model, checkpointing, seed, hooks, null);
    }

    /** @param eaft Axolotl's EAFT weighting of the training loss ({@code use_eaft}), or null for the plain NLL */
    ForwardBackward(LlamaModel model, boolean checkpointing, long seed, LayerHooks hooks, Eaft eaft) {
        this(model, checkpointing, seed, hooks, eaft, null);
    }

    /**
     * @param diffusion Axolotl's diffusion objective in place of next-token prediction ({@link Diffusion}), or null;
     *     then {@code run}'s denominator is the step's micro-batch count and its result the micro-batch's loss
     */
    ForwardBackward(LlamaModel model, boolean checkpointing, long seed, LayerHooks hooks, Eaft eaft,
            Diffusion diffusion) {
        this.model = model;
        this.checkpointing = checkpointing;
        this.seed = seed;
        this.hooks = hooks;
        this.eaft = eaft;
        this.diffusion = diffusion;
        this.headChunk = AUTO;
    }

    private ForwardBackward(ForwardBackward base, long headChunk) {
        this.model = base.model;
        this.checkpointing = base.checkpointing;
        this.seed = base.seed;
        this.hooks = base.hooks;
        this.eaft = base.eaft;
        this.diffusion = base.diffusion;
        this.headChunk = headChunk;
    }

    /**
     * The same, with {@code tokens} trained tokens per head chunk, or 0 for the whole logits at once (the unchunked
     * path, which tests and bench/ compare against).
     */
    ForwardBackward withHeadChunk(long tokens) {
        if (tokens < 0) throw new IllegalArgumentException("head chunk: expected 0 (unchunked) or more, got " + tokens);
        return new ForwardBackward(this, tokens);
    }

    /** Trained tokens per head chunk, as the model's head is now (frozen or trained); 0: the whole logits at once. */
    long headChunk() {
        if (headChunk != AUTO) {
            return headChunk;
        }
        NDArray weight = model.config().tieWordEmbeddings() ? model.embedTokens()
                : model.linears().get("lm_head") instanceof DenseLinear d ? d.weight() : null;
        long logits = weight != null && Autograd.requiresGrad(weight) ? TRAINED_HEAD_CHUNK_LOGITS : HEAD_CHUNK_LOGITS;
        return Math.max(1, logits / model.config().vocabSize());
    }

    /**
     * The result of one micro-batch: summed NLL and the number of tokens it covers. With the diffusion objective:
     * in training the micro-batch's loss and 1; in evaluation its loss times its rows, and its rows (transformers'
     * eval loss weights each batch's loss by its size).
     */
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
            Inputs in = diffusion != null ? diffusionInputs(batch, backward ? step : ~step, micro, m)
                    : inputs(batch, m);
            if (!backward) {
                return Autograd.noGrad(() -> {
                    NDArray last = model.decode(in.ids(), in.context(), scoped(step, micro, m, null));
                    double value = chunked(in) ? headLoss(last, in, false, 0, 0).loss()
                            : nllSum(last, in, false).getFloat();
                    return in.noise() != null ? new Result(value * in.rows(), in.rows())
                            : new Result(value, in.trained());
                });
            }
            return Autograd.withGrad(() -> checkpointing
                    ? checkpointed(in, denominator, lossScale, step, micro, m)
                    : plain(in, denominator, lossScale, step, micro));
        }
    }

    /**
     * @param batch and {@code noise}: the diffusion objective's micro-batch and its forward process, else null
     * @param trainedAt the flat positions {@code row * length + i} whose (shifted) label is trained, in order, and
     *     {@code trainedLabels} their labels; null with the diffusion objective
     */
    private record Inputs(NDArray ids, ForwardContext context, NDArray labels, long rows, long length, long trained,
            Batch batch, DiffusionNoise noise, long[] trainedAt, long[] trainedLabels) {}

    private Inputs inputs(Batch b, NDManager m) {
        int rows = b.rows();
        int len = b.length();
        long[] ids = new long[rows * len];
        long[] pos = new long[rows * len];
        long[] seg = new long[rows * len];
        long[] labels = new long[rows * len];
        long trained = 0;
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < len; i++) {
                int at = r * len + i;
                ids[at] = b.inputIds()[at];
                pos[at] = b.positionIds()[at];
                seg[at] = b.segmentIds()[at];
                // Shift: position i predicts label i+1; the last position predicts nothing.
                labels[at] = i + 1 < len ? b.labels()[at + 1] : Kernels.IGNORE_INDEX;
                if (labels[at] != Kernels.IGNORE_INDEX) trained++;
            }
        }
        long[] trainedAt = new long[(int) trained];
        long[] trainedLabels = new long[(int) trained];
        for (int at = 0, t = 0; at < labels.length; at++) {
            if (labels[at] != Kernels.IGNORE_INDEX) {
                trainedAt[t] = at;
                trainedLabels[t++] = labels[at];
            }
        }
        Shape shape = new Shape(rows, len);
        NDArray segments = b.packed() ? m.create(seg, shape) : null;
        ForwardContext context = model.context(m.create(pos, shape), segments, null);
        return new Inputs(m.create(ids, shape), context, m.create(labels), rows, len, trained, null, null, trainedAt,
                trainedLabels);
    }

    /**
     * The diffusion objective's inputs: the noisy ids, positions 0..T-1 in every row (Axolotl calls the model with
     * input ids and the 4D mask only), and bidirectional attention within each sample; padding is a segment of its
     * own, which no real token sees.
     *
     * @param drawStep the draws' step key: the optimizer step in training, {@code ~step} in evaluation
     */
    private Inputs diffusionInputs(Batch b, long drawStep, int micro, NDManager m) {
        int rows = b.rows();
        int len = b.length();
        DiffusionNoise noise = diffusion.noise(b, drawStep, micro);
        long[] ids = new long[rows * len];
        long[] pos = new long[rows * len];
        long[] seg = new long[rows * len];
        for (int at = 0; at < ids.length; at++) {
            ids[at] = noise.noisy()[at];
            pos[at] = at % len;
            seg[at] = b.segmentIds()[at];
        }
        Shape shape = new Shape(rows, len);
        ForwardContext context = model.context(m.create(pos, shape), m.create(seg, shape), null).bidirectionalWithin();
        return new Inputs(m.create(ids, shape), context, null, rows, len, 1, b, noise, null, null);
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

    /** What precedes every run of a layer, forward or recompute: FSDP's gather, then the layer's dropout seed. */
    private void enter(int layer, long step, int micro) {
        hooks.before(layer);
        Autograd.manualSeed(mix(seed, step, micro, layer));
    }

    /** Each layer with autograd, as it is; its weights are released by the caller after backward. */
    private LayerPolicy direct(long step, int micro) {
        return (i, x, layer) -> {
            enter(i, step, micro);
            return layer.apply(x);
        };
    }

    /**
     * Each layer without autograd and in its own sub-manager, so that only its output outlives it, its weights
     * released right after. {@code inputs}, when not null, receives each layer's input (the recompute's starts).
     */
    private LayerPolicy scoped(long step, int micro, NDManager m, List<NDArray> inputs) {
        return (i, x, layer) -> {
            if (inputs != null) {
                inputs.add(x);
            }
            NDArray out;
            try (NDManager lm = m.newSubManager()) {
                NDArray xi = x.stopGradient();
                xi.attach(lm);
                enter(i, step, micro);
                out = Autograd.noGrad(() -> layer.apply(xi));
                out.attach(m);
            }
            hooks.after(i);
            return out;
        };
    }

    /**
     * Summed NLL (fp32 scalar) of the final hidden states: final norm, head, cross-entropy; in training with
     * {@code use_eaft} each token's NLL weighted as {@link Eaft} says (evaluation with EAFT is refused at load). With
     * the diffusion objective: the micro-batch's diffusion loss ({@link Diffusion#loss}).
     */
    private NDArray nllSum(NDArray hidden, Inputs in, boolean training) {
        NDArray logits = model.logits(model.finalNorm(hidden));
        if (in.noise() != null) {
            return diffusion.loss(logits, in.batch(), in.noise()).get(0);
        }
        NDArray flat = logits.reshape(in.rows() * in.length(), -1);
        return training && eaft != null ? Kernels.get().eaftNllSum(flat, in.labels(), eaft.alpha(), eaft.k()).get(0)
                : Kernels.get().crossEntropySum(flat, in.labels()).get(0);
    }

    /** Whether the head and loss run in chunks: always but with the diffusion objective or chunk 0 (tests). */
    private boolean chunked(Inputs in) {
        return in.noise() == null && headChunk() > 0;
    }

    /**
     * The head's part of a pass: the micro-batch's summed loss and, in training, the gradient of
     * {@code loss / denominator * lossScale} with respect to the final hidden states (the caller closes it; null when
     * none reached them).
     */
    private record HeadPass(double loss, NDArray upstream) {}

    /** The loss of the final hidden states {@code last} (a leaf) and its backward down to them. */
    private HeadPass headBackward(NDArray last, Inputs in, long denominator, double lossScale) {
        if (!chunked(in)) {
            NDArray sum = nllSum(last, in, true);
            double value = sum.getFloat();
            Autograd.backward(scaledLoss(sum, denominator, lossScale));
            return new HeadPass(value, Autograd.gradient(last));
        }
        HeadPass pass = headLoss(last, in, true, denominator, lossScale);
        // No trained token in this micro-batch: nothing reached the hidden states.
        return pass.upstream() != null ? pass : new HeadPass(pass.loss(), last.zerosLike());
    }

    /**
     * The summed loss of the trained positions of {@code last}, {@link #headChunk()} tokens at a time: final norm, head
     * (with the family's softcap) and cross-entropy (or EAFT in training) of one chunk, and in training its backward
     * right away from a detached leaf copy of the chunk's hidden states, so that the chunk's logits are freed before
     * the next chunk's are made; the head's and the final norm's gradients accumulate in their leaves. In training
     * the chunks' hidden-state gradients, joined, go back through the gather of trained positions into {@code last}'s
     * gradient, the pass's upstream (null when no token trains, and in evaluation).
     */
    private HeadPass headLoss(NDArray last, Inputs in, boolean training, long denominator, double lossScale) {
        long[] at = in.trainedAt();
        if (at.length == 0) {
            return new HeadPass(0, null);
        }
        long chunk = headChunk();
        long hidden = last.getShape().get(last.getShape().dimension() - 1);
        double value = 0;
        NDArray upstream = null;
        try (NDManager hm = last.getManager().newSubManager()) {
            NDArray flat = last.reshape(in.rows() * in.length(), hidden);
            flat.attach(hm);
            NDArray positions = hm.create(at);
            // x[positions]: in the graph from last in training, so one backward scatters the joined gradients.
            NDArray picked = flat.get(new NDIndex("{}", positions));
            NDList grads = new NDList();
            for (int start = 0, end; start < at.length; start = end) {
                end = (int) Math.min(at.length, start + chunk);
                try (NDManager cm = hm.newSubManager()) {
                    NDArray slice = picked.get(new NDIndex(start + ":" + end));
                    slice.attach(cm);
                    NDArray x = training ? leaf(slice) : slice;
                    NDArray labels = cm.create(Arrays.copyOfRange(in.trainedLabels(), start, end));
                    NDArray logits = model.logits(model.finalNorm(x));
                    NDArray sum = training && eaft != null
                            ? Kernels.get().eaftNllSum(logits, labels, eaft.alpha(), eaft.k()).get(0)
                            : Kernels.get().crossEntropySum(logits, labels).get(0);
                    value += sum.getFloat();
                    if (training) {
                        Autograd.backward(scaledLoss(sum, denominator, lossScale));
                        NDArray g = Autograd.gradient(x);
                        g.attach(hm);
                        grads.add(g);
                    }
                }
            }
            if (training) {
                NDArray joined = grads.size() == 1 ? grads.get(0) : NDArrays.concat(grads);
                Autograd.backward(picked, joined);
                upstream = Autograd.gradient(last);
                if (upstream != null) {
                    upstream.attach(last.getManager());
                }
            }
        }
        return new HeadPass(value, upstream);
    }

    private static NDArray scaledLoss(NDArray sum, long denominator, double lossScale) {
        NDArray loss = sum.div(scalar(sum, (float) denominator));
        return lossScale == 1.0 ? loss : loss.mul(scalar(sum, (float) lossScale));
    }

    /**
     * An fp32 0-d tensor made by libtorch (what DJL's {@code div(Number)} divides by, bit for bit). Not DJL's scalar
     * ops: they wrap the number in a tensor over Java memory and close it at once, while autograd keeps it for the
     * backward that follows, which then read freed memory whenever a garbage collection ran in between (an infinite
     * or slightly wrong gradient, depending on what reused the memory).
     */
    private static NDArray scalar(NDArray like, float value) {
        return like.getManager().full(new Shape(), value);
    }

    /**
     * Autograd through every layer, keeping each layer's activations, then backward layer by layer from the last:
     * each layer runs from a leaf copy of its input, so its backward can be preceded by
     * {@link dev.jtune.model.llama.DecoderLayer#prepareBackward} (a frozen NF4 projection refills the dequantization
     * buffer it shares with the other layers) and followed by the FSDP hook.
     */
    private Result plain(Inputs in, long denominator, double lossScale, long step, int micro) {
        List<NDArray> starts = new ArrayList<>();
        List<NDArray> ends = new ArrayList<>();
        NDArray[] embedded = new NDArray[1];
        LayerPolicy segmented = (i, x, layer) -> {
            if (i == 0) {
                embedded[0] = x;
            }
            NDArray xi = leaf(x);
            starts.add(xi);
            enter(i, step, micro);
            NDArray out = layer.apply(xi);
            ends.add(out);
            return out;
        };
        NDArray last = leaf(model.decode(in.ids(), in.context(), segmented));
        HeadPass head = headBackward(last, in, denominator, lossScale);
        double value = head.loss();
        NDArray upstream = head.upstream();
        for (int i = ends.size() - 1; i >= 0; i--) {
            model.layers().get(i).prepareBackward();
            Autograd.backward(ends.get(i), upstream);
            NDArray next = Autograd.gradient(starts.get(i));
            upstream.close();
            upstream = next;
            hooks.after(i);
        }
        backwardIntoEmbedding(embedded[0], upstream);
        return new Result(value, in.trained());
    }

    /** The rest of backward, from layer 0's input into the embedding, when it trains; frees the gradient. */
    private void backwardIntoEmbedding(NDArray embedded, NDArray upstream) {
        if (Autograd.requiresGrad(model.embedTokens())) {
            Autograd.backward(embedded, upstream);
        }
        upstream.close();
    }

    private Result checkpointed(Inputs in, long denominator, double lossScale, long step, int micro, NDManager m) {
        List<NDArray> layerInputs = new ArrayList<>();
        NDArray lastOut = model.decode(in.ids(), in.context(), scoped(step, micro, m, layerInputs));
        NDArray last = leaf(lastOut);
        HeadPass head = headBackward(last, in, denominator, lossScale);
        double value = head.loss();
        NDArray upstream = head.upstream();
        for (int i = layerInputs.size() - 1; i >= 0; i--) {
            try (NDManager lm = m.newSubManager()) {
                NDArray xi = leaf(layerInputs.get(i));
                xi.attach(lm);
                enter(i, step, micro);
                NDArray out = model.layer(i, xi, in.context());
                List<NDArray> sharded = hooks.shardedParameters(i);
                NDArray next;
                if (sharded.isEmpty()) {
                    Autograd.backward(out, upstream);
                    next = Autograd.gradient(xi);
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
        // Layer 0's input is the embedding's output, still in the graph.
        backwardIntoEmbedding(layerInputs.get(0), upstream);
        return new Result(value, in.trained());
    }

    /** A detached copy of {@code x}'s handle that requires grad: the start of a recomputed segment. */
    private static NDArray leaf(NDArray x) {
        NDArray d = x.stopGradient();
        d.setRequiresGradient(true);
        return d;
    }
}
