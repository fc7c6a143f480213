package dev.jtune.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Dtype;
import java.util.Arrays;

/**
 * The small statistics of one NF4 weight in native memory (nested scales, offset, both maps, block sizes, shape,
 * dtype), without its packed codes and absmax codes: those are supplied per call as native uint8 tensors, e.g.
 * all-gathered from shards that ranks hold (FSDP over a QLoRA base). The arithmetic is {@link Nf4Linear}'s kernel,
 * so the weight is bit for bit the one an {@link Nf4Linear} over the same {@link Nf4Tensor} dequantizes to.
 */
public final class Nf4Dequantizer implements AutoCloseable {
    private final NDManager manager;
    private final NDArray nestedAbsmax;
    private final NDArray quantMap;
    private final NDArray nestedMap;
    private final NDArray offset;
    private final int blocksize;
    private final int nestedBlocksize;
    private final long[] shape;
    private final Dtype dtype;
    private final long packedBytes;
    private final long blocks;

    /** Copies {@code q}'s statistics (not its codes) into native memory under a sub-manager of {@code parent}. */
    public Nf4Dequantizer(Nf4Tensor q, NDManager parent) {
        NDManager m = parent.newSubManager();
        try {
            this.nestedAbsmax = m.create(q.nestedAbsmax());
            this.quantMap = m.create(q.quantMap());
            this.nestedMap = m.create(q.nestedQuantMap());
            this.offset = m.create(new float[] {q.offset()}, new Shape());
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
        this.manager = m;
        this.blocksize = q.blocksize();
        this.nestedBlocksize = q.nestedBlocksize();
        this.shape = q.shape();
        this.dtype = q.dtype();
        this.packedBytes = q.packed().length;
        this.blocks = q.blocks();
    }

    /** The dense weight (shape, dtype of the tensor) from {@code packed} and {@code absmaxCodes}; joins packed's manager. */
    public NDArray weight(NDArray packed, NDArray absmaxCodes) {
        return Nf4Kernels.get().weight(weights(packed, absmaxCodes));
    }

    /** {@code x Wᵀ} as {@link Nf4Linear#forward} with W from {@code packed} and {@code absmaxCodes}; joins x's manager. */
    public NDArray linear(NDArray x, NDArray packed, NDArray absmaxCodes) {
        return Nf4Kernels.get().linear(x, weights(packed, absmaxCodes));
    }

    private Nf4Linear.Weights weights(NDArray packed, NDArray codes) {
        if (packed.getShape().size() != packedBytes || codes.getShape().size() != blocks) {
            throw new IllegalArgumentException("NF4 weight of shape " + Arrays.toString(shape) + " needs " + packedBytes
                    + " packed bytes and " + blocks + " absmax codes, got " + packed.getShape() + " and "
                    + codes.getShape());
        }
        return new Nf4Linear.Weights(packed, codes, nestedAbsmax, quantMap, nestedMap, offset, blocksize,
                nestedBlocksize, shape, dtype);
    }

    /** Bytes of packed codes the weight needs ({@code (numel + 1) / 2}). */
    public long packedBytes() {
        return packedBytes;
    }

    /** Number of absmax blocks (one uint8 code each). */
    public long blocks() {
        return blocks;
    }

    /** Elements per absmax block. */
    public int blocksize() {
        return blocksize;
    }

    /** Bytes of native memory these statistics hold. */
    public long nativeBytes() {
        return 4L * (nestedAbsmax.getShape().size() + quantMap.getShape().size() + nestedMap.getShape().size() + 1);
    }

    @Override
    public void close() {
        manager.close();
    }
}
