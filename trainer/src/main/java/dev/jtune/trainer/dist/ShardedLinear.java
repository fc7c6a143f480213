package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;

/**
 * A frozen dense projection of which this rank holds one contiguous chunk (FSDP's {@code FULL_SHARD} of a base
 * weight): the weight [out, in] flattened row-major, zero-padded to a multiple of the world size W and cut into W
 * equal chunks; rank r keeps chunk r.
 *
 * <p>{@link #forward} all-gathers the full weight on first use and keeps it until {@link #release()}, which the
 * trainer calls once the layer is done with (after its no-grad forward, after the backward of its recompute), so
 * that at most one decoder layer's weights are whole at a time. Every rank must run the same forwards in the same
 * order, as the gather is a collective.
 */
public final class ShardedLinear implements ShardedProjection {
    private final ProcessGroup group;
    private final NDManager manager;
    private final NDArray shard;
    private final long out;
    private final long in;
    private final Dtype dtype;
    private final ShardedWeights owner;
    private NDArray full;

    /** Keeps this rank's chunk of {@code weight} [out, in] and closes {@code weight}. */
    ShardedLinear(ProcessGroup group, NDArray weight, ShardedWeights owner) {
        Shape s = weight.getShape();
        if (s.dimension() != 2) {
            throw new IllegalArgumentException("linear weight must be 2-d, got " + s);
        }
        this.group = group;
        this.owner = owner;
        this.out = s.get(0);
        this.in = s.get(1);
        this.dtype = Kernels.get().dtypeOf(weight);
        this.manager = weight.getManager().newSubManager();
        long length = out * in;
        int w = group.worldSize();
        long chunk = chunk(length, w);
        long from = Math.min(group.rank() * chunk, length);
        long to = Math.min(from + chunk, length);
        NDArray flat = weight.reshape(length);
        NDArray mine = flat.get(new NDIndex(from + ":" + to));
        if (to - from < chunk) {
            NDArray pad = Kernels.get().cast(weight.getManager().zeros(new Shape(chunk - (to - from))), dtype);
            NDArray padded = mine.concat(pad);
            pad.close();
            mine.close();
            mine = padded;
        }
        // A copy, so that the full weight's storage goes when the weight is closed.
        this.shard = mine.duplicate();
        shard.attach(manager);
        mine.close();
        flat.close();
        weight.close();
    }

    /** Elements in each rank's chunk of {@code length} elements over {@code worldSize} ranks. */
    public static long chunk(long length, int worldSize) {
        return (length + worldSize - 1) / worldSize;
    }

    @Override
    public NDArray forward(NDArray x) {
        if (full == null) {
            NDArray gathered = group.allGather(shard);
            NDArray used = gathered.getShape().get(0) == out * in ? gathered
                    : gathered.get(new NDIndex("0:" + out * in));
            full = used.reshape(out, in);
            full.attach(manager);
            if (used != gathered) used.close();
            gathered.close();
            owner.gathered(gatherBytes());
        }
        return ai.djl.nn.core.Linear.linear(x, full).singletonOrThrow();
    }

    /** Frees the gathered weight (autograd keeps what a pending backward still needs). No-op if not gathered. */
    @Override
    public void release() {
        if (full != null) {
            full.close();
            full = null;
            owner.released(gatherBytes());
        }
    }

    /** Whether the full weight is gathered now. */
    @Override
    public boolean gathered() {
        return full != null;
    }

    /** Bytes of this rank's chunk. */
    @Override
    public long shardBytes() {
        return shard.getShape().size() * bytes(dtype);
    }

    /** Bytes of the whole weight. */
    @Override
    public long fullBytes() {
        return out * in * bytes(dtype);
    }

    /** Bytes of the gathered weight: the whole weight. */
    @Override
    public long gatherBytes() {
        return fullBytes();
    }

    static long bytes(Dtype d) {
        return d == Dtype.FP32 ? 4 : 2;
    }

    @Override
    public long inFeatures() {
        return in;
    }

    @Override
    public long outFeatures() {
        return out;
    }

    @Override
    public void close() {
        release();
        manager.close();
    }
}
