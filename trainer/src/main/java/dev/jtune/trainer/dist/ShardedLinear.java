package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;

/**
 * A frozen dense projection of which this rank holds one contiguous chunk (FSDP's {@code FULL_SHARD} of a base
 * weight): the weight [out, in] flattened row-major, zero-padded to a multiple of the world size W and cut into W
 * equal chunks; rank r keeps chunk r. Gathered whole for use and released after, as {@link ShardedProjection}
 * describes.
 */
public final class ShardedLinear extends ShardedProjection {
    private final NDArray shard;
    private final Dtype dtype;
    private NDArray full;

    /** Keeps this rank's chunk of {@code weight} [out, in] and closes {@code weight}. */
    ShardedLinear(ProcessGroup group, NDArray weight, ShardedWeights owner) {
        this(group, weight, owner, dim(weight.getShape(), 0), dim(weight.getShape(), 1));
    }

    private ShardedLinear(ProcessGroup group, NDArray weight, ShardedWeights owner, long out, long in) {
        super(group, weight.getManager().newSubManager(), owner, out, in);
        this.dtype = Kernels.get().dtypeOf(weight);
        long length = outFeatures() * inFeatures();
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

    private static long dim(Shape s, int axis) {
        if (s.dimension() != 2) {
            throw new IllegalArgumentException("linear weight must be 2-d, got " + s);
        }
        return s.get(axis);
    }

    /** Elements in each rank's chunk of {@code length} elements over {@code worldSize} ranks. */
    public static long chunk(long length, int worldSize) {
        return (length + worldSize - 1) / worldSize;
    }

    @Override
    void gather() {
        long length = outFeatures() * inFeatures();
        NDArray gathered = group.allGather(shard);
        NDArray used = gathered.getShape().get(0) == length ? gathered : gathered.get(new NDIndex("0:" + length));
        full = used.reshape(outFeatures(), inFeatures());
        full.attach(manager);
        if (used != gathered) used.close();
        gathered.close();
    }

    @Override
    NDArray apply(NDArray x) {
        return ai.djl.nn.core.Linear.linear(x, full).singletonOrThrow();
    }

    @Override
    void free() {
        full.close();
        full = null;
    }

    /** Bytes of this rank's chunk. */
    @Override
    long shardBytes() {
        return shard.getShape().size() * bytes(dtype);
    }

    /** Bytes of the whole weight. */
    @Override
    long fullBytes() {
        return outFeatures() * inFeatures() * bytes(dtype);
    }

    /** Bytes of the gathered weight: the whole weight. */
    @Override
    long gatherBytes() {
        return fullBytes();
    }

    static long bytes(Dtype d) {
        return d == Dtype.FP32 ? 4 : 2;
    }
}
