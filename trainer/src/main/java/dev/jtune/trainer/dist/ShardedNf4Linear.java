package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jtune.quant.Nf4Dequantizer;
import dev.jtune.quant.Nf4Linear;
import dev.jtune.quant.Nf4Tensor;

/**
 * A frozen NF4 projection (QLoRA's base) of which this rank holds one contiguous run of whole 64-value blocks: the
 * blocks are cut into W equal runs (the last zero-padded) and rank r keeps run r's packed codes ({@code blocksize / 2}
 * bytes a block) and absmax codes (1 byte a block). The small statistics (nested scales, offset, maps: about 1/16384
 * of the weight plus 1.1 KB) stay whole on every rank.
 *
 * <p>The gather ({@link ShardedProjection}'s lifecycle) brings the packed and absmax codes (uint8) and keeps them in
 * NF4 form until release; each forward dequantizes with {@link Nf4Dequantizer}, the kernel of {@link Nf4Linear}, so
 * outputs are bit for bit those of the unsharded layer.
 */
public final class ShardedNf4Linear extends ShardedProjection {
    private final Nf4Dequantizer stats;
    private final NDArray packedShard;
    private final NDArray codesShard;
    private NDArray packed;
    private NDArray codes;

    /** Keeps this rank's blocks of {@code whole} and closes {@code whole}. */
    ShardedNf4Linear(ProcessGroup group, Nf4Linear whole, NDManager parent, ShardedWeights owner) {
        this(group, quantized(whole), parent, owner);
    }

    private ShardedNf4Linear(ProcessGroup group, Nf4Tensor q, NDManager parent, ShardedWeights owner) {
        super(group, parent.newSubManager(), owner, q.shape()[0], q.shape()[1]);
        try {
            this.stats = new Nf4Dequantizer(q, manager);
            int blocks = q.blocks();
            int perRank = Math.toIntExact(ShardedLinear.chunk(blocks, group.worldSize()));
            int from = Math.min(group.rank() * perRank, blocks);
            int bytesPerBlock = q.blocksize() / 2;
            // Packed bytes of blocks [from, from + perRank); the last block may be short (and the run past the end).
            this.packedShard = Nf4Linear.uint8(manager, q.packed(), (long) from * bytesPerBlock,
                    (long) perRank * bytesPerBlock);
            this.codesShard = Nf4Linear.uint8(manager, q.absmaxCodes(), from, perRank);
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    private static Nf4Tensor quantized(Nf4Linear whole) {
        try (whole) {
            return whole.quantized();
        }
    }

    @Override
    void gather() {
        packed = gather(packedShard, stats.packedBytes());
        codes = gather(codesShard, stats.blocks());
    }

    /** Every rank's chunk concatenated, without the padding: the whole {@code length}-byte tensor. */
    private NDArray gather(NDArray shard, long length) {
        NDArray gathered = group.allGather(shard);
        if (gathered.getShape().get(0) == length) {
            gathered.attach(manager);
            return gathered;
        }
        NDArray whole = gathered.get(new NDIndex("0:" + length)).duplicate();
        whole.attach(manager);
        gathered.close();
        return whole;
    }

    @Override
    NDArray apply(NDArray x) {
        return stats.linear(x, packed, codes);
    }

    @Override
    void free() {
        packed.close();
        codes.close();
        packed = null;
        codes = null;
    }

    /** Bytes of this rank's packed and absmax codes plus the replicated statistics. */
    @Override
    long shardBytes() {
        return packedShard.getShape().size() + codesShard.getShape().size() + stats.nativeBytes();
    }

    /** Bytes of the whole NF4 weight ({@code Nf4Linear.nativeBytes()} of the unsharded layer). */
    @Override
    long fullBytes() {
        return gatherBytes() + stats.nativeBytes();
    }

    /** Bytes of the gathered packed and absmax codes. */
    @Override
    long gatherBytes() {
        return stats.packedBytes() + stats.blocks();
    }
}
