package dev.jtune.trainer.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.safetensors.SafetensorsFile;
import dev.jtune.trainer.dist.ProcessGroup;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * AdamW with its state and the reduced gradients sharded over the ranks (FSDP / ZeRO-2 style): the trainable
 * tensors, flattened in order into one vector of P elements and zero-padded to W·c (c = ceil(P / W)), are cut
 * into W chunks; rank r owns elements {@code [r·c, (r+1)·c)}.
 *
 * <p>Per step: {@link #reduceScatter} sums every rank's full gradient and keeps this rank's chunk; clipping
 * uses the global norm (the all-reduced sum of the chunks' squared norms); {@link #step} updates the owned
 * chunk with the same elementwise AdamW as {@link AdamW} (one state entry per parameter piece, so weight decay
 * groups and step counts stay per parameter) and all-gathers the updated vector back into the full parameters,
 * which every rank keeps whole for its forward (adapters are small).
 *
 * <p>{@link #gatherState} (a collective) returns the full state; checkpoints hold it in {@link AdamW}'s format,
 * independent of the world size, and {@link #load} takes each rank's chunk from such a file.
 */
public final class ShardedAdamW implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final ProcessGroup group;
    private final Map<String, NDArray> params;
    private final Map<String, long[]> offsets = new LinkedHashMap<>(); // name -> [param offset, piece from, piece to]
    private final Map<String, NDArray> pieces = new LinkedHashMap<>();
    private final Map<String, Boolean> firstOwner = new LinkedHashMap<>();
    private final long size;
    private final long chunk;
    private final long from;
    private final NDManager manager;
    private final AdamW inner;
    private NDArray grad;

    public ShardedAdamW(Map<String, NDArray> params, AdamW.Hyper hyper, Predicate<String> decays, ProcessGroup group,
            NDManager parent) {
        this.group = group;
        this.params = new LinkedHashMap<>(params);
        this.size = Flat.size(params.values());
        this.chunk = (size + group.worldSize() - 1) / group.worldSize();
        this.from = Math.min(group.rank() * chunk, size);
        long to = Math.min(from + chunk, size);
        this.manager = parent.newSubManager();
        long at = 0;
        for (var e : this.params.entrySet()) {
            long n = e.getValue().getShape().size();
            long a = Math.max(at, from);
            long b = Math.min(at + n, to);
            firstOwner.put(e.getKey(), at >= from && at < to);
            if (a < b) {
                offsets.put(e.getKey(), new long[] {at, a, b});
                long lo = a - at;
                long hi = b - at;
                NDArray piece = Torch.noGrad(() -> {
                    try (NDArray flat = e.getValue().stopGradient().reshape(n);
                            NDArray part = flat.get(new NDIndex(lo + ":" + hi))) {
                        return part.duplicate();
                    }
                });
                piece.attach(manager);
                pieces.put(e.getKey(), piece);
            }
            at += n;
        }
        this.inner = new AdamW(pieces, hyper, decays, manager);
    }

    /** Elements this rank owns (c; the last ranks may own padding). */
    public long chunkSize() {
        return chunk;
    }

    /** Sums the parameters' gradients over the ranks and keeps this rank's chunk; the full gradients are left as they are. */
    public void reduceScatter() {
        dropGrad();
        try (NDArray flat = Flat.gradients(params.values(), chunk * group.worldSize(), manager)) {
            grad = group.reduceScatterSum(flat);
            grad.attach(manager);
        }
    }

    /** Multiplies the gradient chunk by {@code factor} (fp16 unscaling). */
    public void scaleGradient(double factor) {
        OptimKernels.get().scaleInPlace(grad, factor);
    }

    /** Whether every rank's gradient chunk is finite. */
    public boolean gradientFinite() {
        try (NDArray flag = manager.create(new float[] {OptimKernels.get().allFinite(grad) ? 0f : 1f})) {
            group.allReduceSum(flag);
            return flag.getFloat(0) == 0f;
        }
    }

    /**
     * {@code clip_grad_norm_} over the sharded gradient: the global L2 norm is the square root of the all-reduced
     * sum of the chunks' squared norms; every chunk is multiplied by {@code clamp(maxNorm / (norm + 1e-6), max=1)}.
     * Returns the norm before clipping; {@code maxNorm <= 0} only measures.
     */
    public double clip(double maxNorm) {
        try (NDManager scratch = manager.newSubManager()) {
            NDArray sq = Torch.noGrad(() -> grad.square().sum().reshape(1));
            sq.attach(scratch);
            group.allReduceSum(sq);
            NDArray total = sq.sqrt().reshape(new Shape());
            total.attach(scratch);
            double norm = total.getFloat();
            if (maxNorm > 0) {
                NDArray coef = OptimKernels.get().clipCoef(total, maxNorm);
                coef.attach(scratch);
                OptimKernels.get().mulInPlace(grad, coef);
            }
            return norm;
        }
    }

    /** Updates the owned chunk and all-gathers the new values into every rank's full parameters. */
    public void step(double lr) {
        try (NDManager scratch = manager.newSubManager()) {
            Map<String, NDArray> grads = new LinkedHashMap<>();
            for (var e : offsets.entrySet()) {
                long[] o = e.getValue();
                NDArray g = grad.get(new NDIndex((o[1] - from) + ":" + (o[2] - from)));
                g.attach(scratch);
                grads.put(e.getKey(), g);
            }
            inner.step(lr, grads);
            NDArray mine = concat(pieces, scratch);
            NDArray all = group.allGather(mine);
            all.attach(scratch);
            Flat.writeValues(params.values(), all);
        }
        dropGrad();
    }

    /** The owned pieces concatenated and zero-padded to c elements, in {@code m}. */
    private NDArray concat(Map<String, NDArray> parts, NDManager m) {
        NDList list = new NDList();
        long n = 0;
        for (NDArray p : parts.values()) {
            list.add(p);
            n += p.getShape().size();
        }
        if (n < chunk) {
            list.add(m.zeros(new Shape(chunk - n)));
        }
        NDArray out = list.size() == 1 ? list.get(0).duplicate() : NDArrays.concat(list);
        out.attach(m);
        return out;
    }

    private void dropGrad() {
        if (grad != null) {
            grad.close();
            grad = null;
        }
    }

    /** The full optimizer state, gathered from every rank (a collective; every rank gets it). */
    public record State(Map<String, long[]> shapes, Map<String, float[]> expAvg, Map<String, float[]> expAvgSq,
            Map<String, Long> steps) {}

    /** Gathers the full state from the ranks' chunks. */
    public State gatherState() {
        try (NDManager scratch = manager.newSubManager()) {
            float[] m = gathered(inner.expAvg(), scratch);
            float[] v = gathered(inner.expAvgSq(), scratch);
            // Each parameter's step count comes from the rank owning its first element.
            double[] counts = new double[params.size()];
            int i = 0;
            for (String name : params.keySet()) {
                counts[i++] = firstOwner.get(name) ? inner.step(name) : 0;
            }
            NDArray c = scratch.create(counts);
            group.allReduceSum(c);
            double[] summed = c.toDoubleArray();
            Map<String, long[]> shapes = new LinkedHashMap<>();
            Map<String, float[]> em = new LinkedHashMap<>();
            Map<String, float[]> ev = new LinkedHashMap<>();
            Map<String, Long> steps = new LinkedHashMap<>();
            int at = 0;
            i = 0;
            for (var e : params.entrySet()) {
                int n = Math.toIntExact(e.getValue().getShape().size());
                shapes.put(e.getKey(), e.getValue().getShape().getShape());
                em.put(e.getKey(), Arrays.copyOfRange(m, at, at + n));
                ev.put(e.getKey(), Arrays.copyOfRange(v, at, at + n));
                steps.put(e.getKey(), (long) summed[i++]);
                at += n;
            }
            return new State(shapes, em, ev, steps);
        }
    }

    private float[] gathered(Map<String, NDArray> moments, NDManager scratch) {
        NDArray all = group.allGather(concat(moments, scratch));
        all.attach(scratch);
        return all.toFloatArray();
    }

    /** Writes the full state in {@link AdamW#save}'s format (call {@link #gatherState} on every rank first). */
    public void write(Path file, State state) {
        AdamW.write(file, inner.hyper(), state.shapes(), state.expAvg(), state.expAvgSq(), state.steps());
    }

    /** Takes this rank's chunk of a state written by {@link AdamW#save} or {@link #write}. */
    public void load(Path file) {
        try (SafetensorsFile in = SafetensorsFile.open(file)) {
            String stepText = in.metadata().get("steps");
            if (stepText == null) {
                throw new IllegalArgumentException(file + ": no 'steps' in the metadata; not a jtune optimizer state");
            }
            JsonNode stepJson = JSON.readTree(stepText);
            for (var e : offsets.entrySet()) {
                String name = e.getKey();
                long[] o = e.getValue();
                float[][] mv = new float[2][];
                int k = 0;
                for (String suffix : List.of(".exp_avg", ".exp_avg_sq")) {
                    if (!in.contains(name + suffix)) {
                        throw new IllegalArgumentException(file + ": missing tensor " + name + suffix
                                + " (was the checkpoint made with other trainable parameters?)");
                    }
                    float[] all = in.floats(name + suffix);
                    if (all.length != params.get(name).getShape().size()) {
                        throw new IllegalArgumentException(file + ": " + name + suffix + " has " + all.length
                                + " values, the parameter " + params.get(name).getShape().size());
                    }
                    mv[k++] = Arrays.copyOfRange(all, (int) (o[1] - o[0]), (int) (o[2] - o[0]));
                }
                JsonNode s = stepJson.get(name);
                if (s == null || !s.canConvertToLong()) {
                    throw new IllegalArgumentException(file + ": metadata 'steps' lacks " + name);
                }
                inner.restore(name, mv[0], mv[1], s.asLong());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        dropGrad();
        manager.close();
    }
}
