package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jtune.quant.Nf4Dequantizer;
import dev.jtune.quant.Nf4Linear;
import dev.jtune.quant.Nf4Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A frozen NF4 projection (QLoRA's base) of which this rank holds one contiguous run of whole 64-value blocks: the
 * blocks are cut into W equal runs (the last zero-padded) and rank r keeps run r's packed codes ({@code blocksize / 2}
 * bytes a block) and absmax codes (1 byte a block). The small statistics (nested scales, offset, maps: about 1/16384
 * of the weight plus 1.1 KB) stay whole on every rank.
 *
 * <p>Same lifecycle as {@link ShardedLinear}: {@link #forward} all-gathers the packed and absmax codes (uint8) on
 * first use and keeps them, in NF4 form, until {@link #release()}; each forward dequantizes with {@link
 * Nf4Dequantizer}, the kernel of {@link Nf4Linear}, so outputs are bit for bit those of the unsharded layer.
 */
public final class ShardedNf4Linear implements ShardedProjection {
    private final ProcessGroup group;
    private final NDManager manager;
    private final Nf4Dequantizer stats;
    private final NDArray packedShard;
    private final NDArray codesShard;
    private final long out;
    private final long in;
    private final ShardedWeights owner;
    private NDArray packed;
    private NDArray codes;

    /** Keeps this rank's blocks of {@code whole} and closes {@code whole}. */
    ShardedNf4Linear(ProcessGroup group, Nf4Linear whole, NDManager parent, ShardedWeights owner) {
        Nf4Tensor q;
        try (whole) {
            q = whole.quantized();
        }
        long[] shape = q.shape();
        this.group = group;
        this.owner = owner;
        this.out = shape[0];
        this.in = shape[1];
        this.manager = parent.newSubManager();
        try {
            this.stats = new Nf4Dequantizer(q, manager);
            int blocks = q.blocks();
            int perRank = Math.toIntExact(ShardedLinear.chunk(blocks, group.worldSize()));
            int from = Math.min(group.rank() * perRank, blocks);
            int bytesPerBlock = q.blocksize() / 2;
            // Packed bytes of blocks [from, from + perRank); the last block may be short (and the run past the end).
            this.packedShard = uint8(manager, q.packed(), (long) from * bytesPerBlock, (long) perRank * bytesPerBlock);
            this.codesShard = uint8(manager, q.absmaxCodes(), from, perRank);
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /** {@code length} bytes of {@code src} from {@code from} (zeros past its end) as a native uint8 tensor. */
    private static NDArray uint8(NDManager m, byte[] src, long from, long length) {
        int n = Math.toIntExact(length);
        byte[] chunk = new byte[n];
        int start = (int) Math.min(from, src.length);
        int end = (int) Math.min(from + length, src.length);
        System.arraycopy(src, start, chunk, 0, end - start);
        ByteBuffer buf = ByteBuffer.allocateDirect(n).order(ByteOrder.nativeOrder());
        buf.put(chunk).flip();
        return m.create(buf, new Shape(n), DataType.UINT8);
    }

    @Override
    public NDArray forward(NDArray x) {
        if (packed == null) {
            packed = gather(packedShard, stats.packedBytes());
            codes = gather(codesShard, stats.blocks());
            owner.gathered(gatherBytes());
        }
        return stats.linear(x, packed, codes);
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
    public void release() {
        if (packed != null) {
            packed.close();
            codes.close();
            packed = null;
            codes = null;
            owner.released(gatherBytes());
        }
    }

    @Override
    public boolean gathered() {
        return packed != null;
    }

    /** Bytes of this rank's packed and absmax codes plus the replicated statistics. */
    @Override
    public long shardBytes() {
        return packedShard.getShape().size() + codesShard.getShape().size() + stats.nativeBytes();
    }

    /** Bytes of the whole NF4 weight ({@code Nf4Linear.nativeBytes()} of the unsharded layer). */
    @Override
    public long fullBytes() {
        return gatherBytes() + stats.nativeBytes();
    }

    /** Bytes of the gathered packed and absmax codes. */
    @Override
    public long gatherBytes() {
        return stats.packedBytes() + stats.blocks();
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

    @Override
    public String toString() {
        return "ShardedNf4Linear" + Arrays.toString(new long[] {out, in}) + " rank " + group.rank() + "/"
                + group.worldSize();
    }
}
