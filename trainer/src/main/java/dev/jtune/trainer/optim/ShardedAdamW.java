package dev.jtune.trainer.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.safetensors.SafetensorsFile;
import dev.jtune.trainer.dist.ProcessGroup;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * AdamW with its state, the reduced gradients and (optionally) the trainable tensors themselves sharded over the
 * ranks, as FSDP does it: the tensors are grouped into units (FSDP's wrapped modules); each unit's tensors,
 * flattened in order into one vector of P elements and zero-padded to W·c (c = ceil(P / W)), are cut into W chunks,
 * and rank r owns elements {@code [r·c, (r+1)·c)} of every unit.
 *
 * <p>Without {@code shardParameters} there is one unit, and every rank keeps the tensors whole (ZeRO-2): per step
 * {@link #reduceScatter} sums every rank's full gradient and keeps this rank's chunk, and {@link #step} updates
 * the chunk and all-gathers the new values into the tensors.
 *
 * <p>With {@code shardParameters} each decoder layer's tensors ({@code ...layers.N....}) form a unit whose values
 * live only in the owned chunks (ZeRO-3 / FSDP {@code FULL_SHARD}): the tensors give up their storage (same
 * handles, still leaves that require grad) and get it back for a use by {@link #gather}, which all-gathers the
 * layer's chunks, until {@link #release}. Their gradients do not accumulate in {@code .grad}: the trainer hands each
 * recomputed layer's gradients to {@link #addGradients}, which reduce-scatters them into the layer's gradient chunk
 * at once, so no rank ever holds more than one layer's full gradients. Tensors outside the decoder layers (the root
 * unit: {@code lora_modules_to_save}, or embeddings, final norm and head in full fine-tuning) stay whole, as above.
 *
 * <p>Clipping uses the global norm (the all-reduced sum of the chunks' squared norms); the update is the same
 * elementwise AdamW as {@link AdamW} (one state entry per tensor piece, so weight decay groups and step counts stay
 * per tensor). {@link #gatherState} (a collective) returns the full state; checkpoints hold it in {@link AdamW}'s
 * format, independent of the world size and of the units, and {@link #load} takes each rank's chunks from it.
 *
 * <p>With 8-bit state ({@link AdamW.Variant#quantizes}) the state of a tensor is quantized in blocks of 256 values
 * from its first value, and a block must not be split between ranks: then each tensor starts at a multiple of 256 in
 * the unit's flat layout (zeros between tensors) and c is rounded up to a multiple of 256, so every piece is whole
 * blocks of its tensor (the last one possibly the tensor's partial tail block) and the sharded update is the
 * unsharded one, bit for bit. Which tensors keep 8-bit state is decided on the whole tensor's size, as unsharded.
 */
public final class ShardedAdamW implements Optimizer {
    private static final Pattern LAYER = Pattern.compile("(?:^|\\.)layers\\.(\\d+)\\.");
    private static final int ROOT = -1;

    /** One unit: its tensors, this rank's pieces of them, and its gradient chunk. */
    private final class Unit {
        final int layer;
        final boolean sharded;
        final Map<String, NDArray> params = new LinkedHashMap<>();
        /** name -> [tensor offset in the unit, piece from, piece to] (unit coordinates), for tensors with a piece. */
        final Map<String, long[]> offsets = new LinkedHashMap<>();
        /** Each tensor's first element in the unit's flat layout (a multiple of {@code align}). */
        final Map<String, Long> starts = new LinkedHashMap<>();
        long chunk;
        long from;
        NDArray grad;
        boolean whole = true;

        Unit(int layer, boolean sharded) {
            this.layer = layer;
            this.sharded = sharded;
        }

        void cut() {
            long size = 0;
            for (var e : params.entrySet()) {
                size = roundUp(size, align);
                starts.put(e.getKey(), size);
                size += e.getValue().getShape().size();
            }
            chunk = roundUp((size + group.worldSize() - 1) / group.worldSize(), align);
            from = Math.min(group.rank() * chunk, size);
            long to = Math.min(from + chunk, size);
            for (var e : params.entrySet()) {
                long n = e.getValue().getShape().size();
                long at = starts.get(e.getKey());
                long a = Math.max(at, from);
                long b = Math.min(at + n, to);
                firstOwner.put(e.getKey(), at >= from && at < to);
                if (a < b) {
                    offsets.put(e.getKey(), new long[] {at, a, b});
                    long lo = a - at;
                    long hi = b - at;
                    NDArray piece = Autograd.noGrad(() -> {
                        try (NDArray flat = e.getValue().stopGradient().reshape(n);
                                NDArray part = flat.get(new NDIndex(lo + ":" + hi))) {
                            return part.duplicate();
                        }
                    });
                    piece.attach(manager);
                    pieces.put(e.getKey(), piece);
                }
            }
        }

        /** This rank's chunk of per-tensor values {@code perTensor} (its pieces, zeros between and after). */
        NDArray chunkOf(Map<String, NDArray> perTensor, NDManager m) {
            List<NDArray> parts = new ArrayList<>();
            List<Long> at = new ArrayList<>();
            for (var e : offsets.entrySet()) {
                parts.add(perTensor.get(e.getKey()));
                at.add(e.getValue()[1] - from);
            }
            return Flat.placed(parts, at, chunk, m);
        }

        /** Whole per-tensor arrays (in {@code params} order) laid out in the unit's flat layout, W·c elements. */
        NDArray layout(List<NDArray> whole, NDManager m) {
            return Flat.placed(whole, new ArrayList<>(starts.values()), chunk * group.worldSize(), m);
        }

        /** The unit's values, gathered from every rank's pieces: [W·c]. */
        NDArray gatheredValues(NDManager m) {
            NDArray all = group.allGather(chunkOf(pieces, m));
            all.attach(m);
            return all;
        }

        void addGrad(NDArray chunkGrad) {
            chunkGrad.attach(manager);
            if (grad == null) {
                grad = chunkGrad;
            } else {
                NDArray sum = Autograd.noGrad(() -> grad.add(chunkGrad));
                sum.attach(manager);
                grad.close();
                chunkGrad.close();
                grad = sum;
            }
        }

        void dropGrad() {
            if (grad != null) {
                grad.close();
                grad = null;
            }
        }
    }

    private final ProcessGroup group;
    private final Map<String, NDArray> params;
    private final List<Unit> units = new ArrayList<>();
    private final Map<Integer, Unit> byLayer = new LinkedHashMap<>();
    private final Map<String, NDArray> pieces = new LinkedHashMap<>();
    private final Map<String, Boolean> firstOwner = new LinkedHashMap<>();
    private final NDManager manager;
    private final AdamW inner;
    /**
     * Alignment of tensors and chunks in the flat layout: 1, or {@link Bnb#BLOCK} with 8-bit state, so that every
     * piece of a tensor starts at a block boundary of that tensor and the blocks stay bitsandbytes' blocks (256 is
     * also a whole number of torchao's 4-bit blocks of 128, and even: its packed pairs stay whole).
     */
    private final long align;

    /** ZeRO-2: one unit, tensors whole on every rank. */
    public ShardedAdamW(Map<String, NDArray> params, AdamW.Hyper hyper, Predicate<String> decays, ProcessGroup group,
            NDManager parent) {
        this(params, hyper, decays, group, parent, false);
    }

    /**
     * @param shardParameters whether the decoder layers' tensors are sharded too (they give up their storage
     *     here, before this returns; {@link #gather} brings a layer's back)
     */
    public ShardedAdamW(Map<String, NDArray> params, AdamW.Hyper hyper, Predicate<String> decays, ProcessGroup group,
            NDManager parent, boolean shardParameters) {
        this.group = group;
        this.params = new LinkedHashMap<>(params);
        this.manager = parent.newSubManager();
        this.align = hyper.variant().quantizes() ? Bnb.BLOCK : 1;
        Unit root = null;
        for (var e : this.params.entrySet()) {
            e.getValue().getShape(); // DJL caches the shape: ask while the tensor is whole
            int layer = shardParameters ? unitOf(e.getKey()) : ROOT;
            Unit u = layer == ROOT ? root : byLayer.get(layer);
            if (u == null) {
                u = new Unit(layer, layer != ROOT);
                units.add(u);
                if (layer == ROOT) {
                    root = u;
                } else {
                    byLayer.put(layer, u);
                }
            }
            u.params.put(e.getKey(), e.getValue());
        }
        for (Unit u : units) {
            u.cut();
        }
        Map<String, Long> wholeSize = new LinkedHashMap<>();
        for (var e : this.params.entrySet()) {
            wholeSize.put(e.getKey(), e.getValue().getShape().size());
        }
        this.inner = new AdamW(pieces, hyper, decays, ProcessGroup.single(), manager, wholeSize);
        for (Unit u : units) {
            if (u.sharded) {
                free(u);
            }
        }
    }

    /** The decoder layer a trainable tensor belongs to ({@code ...layers.N....}), or -1 for the root unit. */
    public static int unitOf(String name) {
        Matcher m = LAYER.matcher(name);
        return m.find() ? Integer.parseInt(m.group(1)) : ROOT;
    }

    /** Whether some tensors live only as shards (then {@link #gather} before using a layer). */
    public boolean shardsParameters() {
        return !byLayer.isEmpty();
    }

    /** Bytes of trainable values this rank holds for good: its chunks (the root unit whole). */
    public long heldBytes() {
        return 4 * units.stream().mapToLong(u -> u.sharded ? u.chunk : Flat.size(u.params.values())).sum();
    }

    /** Bytes of all trainable values (what each rank holds without sharding). */
    public long totalBytes() {
        return 4 * Flat.size(params.values());
    }

    /** Layer {@code layer}'s sharded tensors, in order (empty when the layer has none). */
    public List<NDArray> layerParameters(int layer) {
        Unit u = byLayer.get(layer);
        return u == null ? List.of() : List.copyOf(u.params.values());
    }

    /** Gives layer {@code layer}'s tensors their values (a collective); no-op if they have them or are not sharded. */
    public void gather(int layer) {
        Unit u = byLayer.get(layer);
        if (u != null && !u.whole) {
            try (NDManager scratch = manager.newSubManager()) {
                NDArray all = u.gatheredValues(scratch);
                OptimKernels k = OptimKernels.get();
                for (var e : u.params.entrySet()) {
                    NDArray p = e.getValue();
                    long n = p.getShape().size();
                    long at = u.starts.get(e.getKey());
                    // A view of the gathered buffer: the tensor keeps the storage alive after the scratch closes.
                    NDArray view = all.get(new NDIndex(at + ":" + (at + n))).reshape(p.getShape());
                    view.attach(scratch);
                    k.useStorage(p, view);
                }
            }
            u.whole = true;
        }
    }

    /** Frees layer {@code layer}'s gathered values; no-op if not gathered or not sharded. */
    public void release(int layer) {
        Unit u = byLayer.get(layer);
        if (u != null && u.whole) {
            free(u);
        }
    }

    /** Gathers every sharded layer (a collective): the tensors are whole, e.g. to save or export them. */
    @Override
    public void gatherAll() {
        for (int layer : byLayer.keySet()) {
            gather(layer);
        }
    }

    /** Frees every sharded layer's gathered values. */
    @Override
    public void releaseAll() {
        for (int layer : byLayer.keySet()) {
            release(layer);
        }
    }

    private void free(Unit u) {
        OptimKernels k = OptimKernels.get();
        for (NDArray p : u.params.values()) {
            k.freeStorage(p);
        }
        u.whole = false;
    }

    /**
     * Sums layer {@code layer}'s gradients ({@code grads}, in {@link #layerParameters} order) over the ranks and adds
     * this rank's chunk of the sum into the layer's gradient chunk (a collective).
     */
    public void addGradients(int layer, NDList grads) {
        Unit u = byLayer.get(layer);
        if (u == null || grads.size() != u.params.size()) {
            throw new IllegalArgumentException("layer " + layer + ": " + grads.size() + " gradients for "
                    + (u == null ? 0 : u.params.size()) + " sharded tensors");
        }
        try (NDArray flat = u.layout(grads, manager)) {
            u.addGrad(group.reduceScatterSum(flat));
        }
    }

    /**
     * Sums the {@code .grad} of the tensors kept whole over the ranks and keeps this rank's chunk (their full
     * gradients are left as they are); the sharded layers' chunks came through {@link #addGradients}.
     */
    @Override
    public void reduceGradients() {
        for (Unit u : units) {
            if (!u.sharded) {
                u.dropGrad();
                try (NDManager scratch = manager.newSubManager()) {
                    List<NDArray> grads = Gradients.open(u.params.values());
                    try {
                        List<NDArray> parts = new ArrayList<>();
                        int i = 0;
                        for (NDArray p : u.params.values()) {
                            NDArray g = grads.get(i++);
                            parts.add(g != null ? g : scratch.zeros(p.getShape()));
                        }
                        try (NDArray flat = u.layout(parts, manager)) {
                            u.addGrad(group.reduceScatterSum(flat));
                        }
                    } finally {
                        Gradients.close(grads);
                    }
                }
            } else if (u.grad == null) {
                u.addGrad(manager.zeros(new Shape(u.chunk))); // no pass reached the layer
            }
        }
    }

    /** Multiplies the gradient chunks by {@code factor} (fp16 unscaling). */
    @Override
    public void scaleGradients(double factor) {
        for (Unit u : units) {
            OptimKernels.get().scaleInPlace(u.grad, factor);
        }
    }

    /** Whether every rank's gradient chunks are finite. */
    @Override
    public boolean gradientsFinite() {
        boolean finite = units.stream().allMatch(u -> OptimKernels.get().allFinite(u.grad));
        try (NDArray flag = manager.create(new float[] {finite ? 0f : 1f})) {
            group.allReduceSum(flag);
            return flag.getFloat(0) == 0f;
        }
    }

    /**
     * {@code clip_grad_norm_} over the sharded gradient: the global L2 norm is the square root of the all-reduced
     * sum of the chunks' squared norms; every chunk is multiplied by {@code clamp(maxNorm / (norm + 1e-6), max=1)}.
     * Returns the norm before clipping; {@code maxNorm <= 0} only measures.
     */
    @Override
    public double clipGradients(double maxNorm) {
        try (NDManager scratch = manager.newSubManager()) {
            NDArray sq = scratch.zeros(new Shape(1));
            for (Unit u : units) {
                NDArray total = sq;
                sq = Autograd.noGrad(() -> {
                    try (NDArray squares = u.grad.square(); NDArray sum = squares.sum();
                            NDArray one = sum.reshape(1)) {
                        return total.add(one);
                    }
                });
                sq.attach(scratch);
            }
            group.allReduceSum(sq);
            NDArray total = sq.sqrt().reshape(new Shape());
            total.attach(scratch);
            double norm = total.getFloat();
            if (maxNorm > 0) {
                NDArray coef = OptimKernels.get().clipCoef(total, maxNorm);
                coef.attach(scratch);
                for (Unit u : units) {
                    OptimKernels.get().mulInPlace(u.grad, coef);
                }
            }
            return norm;
        }
    }

    /**
     * Updates the owned chunks; the tensors kept whole get the new values by an all-gather, the sharded layers at
     * their next {@link #gather} (a layer gathered now is gathered again).
     */
    @Override
    public void step(double lr) {
        try (NDManager scratch = manager.newSubManager()) {
            Map<String, NDArray> grads = new LinkedHashMap<>();
            for (Unit u : units) {
                for (var e : u.offsets.entrySet()) {
                    long[] o = e.getValue();
                    NDArray g = u.grad.get(new NDIndex((o[1] - u.from) + ":" + (o[2] - u.from)));
                    g.attach(scratch);
                    grads.put(e.getKey(), g);
                }
            }
            inner.step(lr, grads);
            for (Unit u : units) {
                if (!u.sharded) {
                    Flat.writeValues(u.params.values(), u.gatheredValues(scratch), new ArrayList<>(u.starts.values()));
                } else if (u.whole) {
                    free(u);
                    gather(u.layer);
                }
            }
        }
        units.forEach(Unit::dropGrad);
    }

    private static long roundUp(long n, long to) {
        return (n + to - 1) / to * to;
    }

    /**
     * The full optimizer state, gathered from every rank (a collective; every rank gets it), per tensor in
     * {@link AdamW}'s channel form: {@code {exp_avg, exp_avg_sq}} for fp32 state, {@code {state1, state2, absmax1,
     * absmax2}} per element for 8-bit state.
     */
    public record State(Map<String, long[]> shapes, Map<String, float[][]> channels, Map<String, Long> steps) {
        /** Channel 0 by tensor: {@code exp_avg} for fp32 state, the {@code state1} codes for 8-bit state. */
        public Map<String, float[]> expAvg() {
            Map<String, float[]> out = new LinkedHashMap<>();
            channels.forEach((name, c) -> out.put(name, c[0]));
            return out;
        }
    }

    @Override
    public StateWriter gatherState() {
        State state = fullState();
        return file -> write(file, state);
    }

    @Override
    public void zeroGradients() {
        Gradients.zero(params.values());
    }

    /** Nothing to compare: every element of a sharded tensor has one owner. */
    @Override
    public void checkReplicas(long step) {}

    /** Gathers the full state from the ranks' chunks (a collective). */
    public State fullState() {
        try (NDManager scratch = manager.newSubManager()) {
            // Each tensor's step count comes from the rank owning its first element.
            double[] counts = new double[params.size()];
            int i = 0;
            for (String name : params.keySet()) {
                counts[i++] = firstOwner.get(name) ? inner.step(name) : 0;
            }
            NDArray c = scratch.create(counts);
            group.allReduceSum(c);
            double[] summed = c.toDoubleArray();
            // Which tensors keep 8-bit state depends on the whole tensor: the same on every rank.
            Map<String, Integer> channelCount = new LinkedHashMap<>();
            for (var e : params.entrySet()) {
                boolean eight = inner.hyper().variant().eightBit(e.getValue().getShape().size());
                channelCount.put(e.getKey(), eight ? 4 : 2);
            }
            int channels = channelCount.values().stream().mapToInt(Integer::intValue).max().orElse(2);
            Map<String, float[][]> mine = new LinkedHashMap<>();
            for (String name : pieces.keySet()) {
                mine.put(name, inner.channels(name));
            }
            Map<String, float[][]> full = new LinkedHashMap<>();
            for (String name : params.keySet()) {
                full.put(name, new float[channelCount.get(name)][]);
            }
            for (Unit u : units) {
                for (int ch = 0; ch < channels; ch++) {
                    Map<String, NDArray> part = new LinkedHashMap<>();
                    for (var e : u.offsets.entrySet()) {
                        float[][] own = mine.get(e.getKey());
                        long[] o = e.getValue();
                        part.put(e.getKey(), ch < own.length ? scratch.create(own[ch])
                                : scratch.zeros(new Shape(o[2] - o[1])));
                    }
                    NDArray all = group.allGather(u.chunkOf(part, scratch));
                    all.attach(scratch);
                    float[] values = all.toFloatArray();
                    for (var e : u.params.entrySet()) {
                        float[][] target = full.get(e.getKey());
                        if (ch < target.length) {
                            int at = Math.toIntExact(u.starts.get(e.getKey()));
                            int n = Math.toIntExact(e.getValue().getShape().size());
                            target[ch] = Arrays.copyOfRange(values, at, at + n);
                        }
                    }
                }
            }
            Map<String, long[]> shapes = new LinkedHashMap<>();
            Map<String, Long> steps = new LinkedHashMap<>();
            i = 0;
            for (var e : params.entrySet()) {
                shapes.put(e.getKey(), e.getValue().getShape().getShape());
                steps.put(e.getKey(), (long) summed[i++]);
            }
            return new State(shapes, full, steps);
        }
    }

    /** Writes the full state in {@link AdamW#save}'s format. */
    private void write(Path file, State state) {
        AdamW.write(file, inner.hyper(), state.shapes(), state.channels(), state.steps());
    }

    /** Takes this rank's chunks of a state written by {@link AdamW#save} or {@link #write}. */
    @Override
    public void load(Path file) {
        try (SafetensorsFile in = SafetensorsFile.open(file)) {
            JsonNode stepJson = AdamW.readSteps(in, file);
            AdamW.checkVariant(in, file, inner.hyper());
            for (Unit u : units) {
                for (var e : u.offsets.entrySet()) {
                    String name = e.getKey();
                    long[] o = e.getValue();
                    float[][] all = AdamW.readChannels(in, file, name, params.get(name).getShape().size(),
                            inner.eightBit(name), inner.hyper().variant());
                    float[][] piece = new float[all.length][];
                    for (int k = 0; k < all.length; k++) {
                        piece[k] = Arrays.copyOfRange(all[k], (int) (o[1] - o[0]), (int) (o[2] - o[0]));
                    }
                    inner.restoreChannels(name, piece, AdamW.stepOf(stepJson, file, name));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
    }

    /** Bytes of optimizer state this rank holds (its pieces' moments). */
    public long stateBytes() {
        return inner.stateBytes();
    }

    @Override
    public void close() {
        units.forEach(Unit::dropGrad);
        manager.close();
    }
}
