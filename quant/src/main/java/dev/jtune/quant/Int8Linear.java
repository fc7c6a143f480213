package dev.jtune.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.llama.Linear;

/**
 * A frozen linear projection in bitsandbytes' LLM.int8() form ({@code load_in_8bit}: {@code Linear8bitLt} with
 * {@code has_fp16_weights=False}, {@code threshold=6.0}), as bitsandbytes trains over it on CUDA
 * ({@code MatMul8bitLt}):
 * <ul>
 *   <li>the weight is stored as int8 codes {@code CB} [out, in] and fp32 row absmax {@code SCB} [out]
 *       ({@link Int8Quantizer}): 1 byte a weight plus 4 bytes a row;
 *   <li>forward: the input (as fp16) is quantized row-wise to int8 by its absmax, leaving out the outlier columns
 *       (any |x| ≥ threshold); int8 × int8 products summed exactly (int32); dequantized as
 *       {@code fp16(C · rowAbsmax · SCB · 6.200012e-05f)}, cast to x's dtype; the outlier columns of x are then
 *       multiplied in x's dtype with the dequantized weight columns and added;
 *   <li>backward: x's gradient is {@code grad · W}, W the dequantized weight {@code CB · SCB/127} in x's dtype (the
 *       weight gets none) — bitsandbytes' backward, not the derivative of the quantized product.
 * </ul>
 *
 * <p>Memory in training, as {@link Nf4Linear}: the dequantized weight that the backward needs lives in a buffer
 * that the same projection of every layer shares ({@link Nf4Linear.SharedBuffers}); {@link #prepareBackward} writes
 * this layer's weight there again before its backward. A forward whose input needs no gradient (inference, or a
 * projection of frozen inputs) computes the int8 product only and touches no buffer.
 */
public final class Int8Linear implements Linear {
    /** bitsandbytes' and transformers' default outlier threshold ({@code llm_int8_threshold}). */
    public static final double DEFAULT_THRESHOLD = 6.0;

    /** The native tensors of one weight. */
    record Weights(NDArray codes, NDArray rowAbsmax, long[] shape, double threshold) {}

    private final NDManager manager;
    private final Weights weights;
    private final Nf4Linear.SharedBuffers.Slot shared; // null: a dequantized weight per forward with a gradient

    /**
     * Copies {@code q} into native memory under a sub-manager of {@code parent}.
     *
     * @param shared the model's buffers for the dequantized weights, or null for one per forward
     * @param name the module name, e.g. {@code model.layers.3.mlp.down_proj} (its role picks the buffer)
     * @param threshold the outlier threshold (0: no outlier columns)
     */
    public Int8Linear(Int8Tensor q, NDManager parent, Nf4Linear.SharedBuffers shared, String name, double threshold) {
        if (!(threshold >= 0)) {
            throw new IllegalArgumentException("the int8 outlier threshold must be >= 0, got " + threshold);
        }
        this.shared = shared == null ? null : shared.slot(name);
        NDManager m = parent.newSubManager();
        try {
            this.weights = new Weights(int8(m, q.codes(), q.shape()), m.create(q.rowAbsmax()), q.shape().clone(),
                    threshold);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
        this.manager = m;
    }

    /** The codes as a native int8 tensor, copied straight into its memory (no direct ByteBuffer in between). */
    private static NDArray int8(NDManager m, byte[] codes, long[] shape) {
        NDArray t = m.zeros(new Shape(shape), DataType.INT8);
        if (codes.length > 0) {
            java.lang.foreign.MemorySegment.copy(java.lang.foreign.MemorySegment.ofArray(codes), 0,
                    java.lang.foreign.MemorySegment.ofAddress(dev.jtune.model.engine.Torch.dataAddress(t))
                            .reinterpret(codes.length), 0, codes.length);
        }
        return t;
    }

    @Override
    public NDArray forward(NDArray x) {
        Int8Kernels k = Int8Kernels.get();
        boolean intMm = k.intMm();
        if (!k.needsGrad(x)) {
            return k.linear(x, weights, intMm);
        }
        if (shared == null) {
            // The weight joins x's memory: autograd holds it until the backward.
            NDArray w = k.weight(weights, dev.jtune.model.engine.Kernels.get().dtypeOf(x));
            w.attach(x.getManager());
            return k.linearGrad(x, w, w, weights, intMm, false);
        }
        shared.fit(x, weights.shape(), manager.getParentManager());
        boolean fill = shared.holder != this;
        shared.holder = this;
        return k.linearGrad(x, shared.buffer, shared.writer, weights, intMm, fill);
    }

    /** Writes this layer's dequantized weight into the shared buffer again if another layer's is there now. */
    @Override
    public void prepareBackward() {
        if (shared != null && shared.holder != this && shared.buffer != null) {
            Int8Kernels.get().dequantizeInto(shared.writer, weights);
            shared.holder = this;
        }
    }

    /** The dequantized weight [out, in] in {@code dtype} (the backward's), in this layer's manager; the caller closes it. */
    public NDArray dequantize(dev.jtune.model.engine.Dtype dtype) {
        return Int8Kernels.get().weight(weights, dtype);
    }

    /** The quantized weight, read back from native memory. */
    public Int8Tensor quantized() {
        return new Int8Tensor(weights.shape().clone(), weights.codes().toByteArray(), weights.rowAbsmax().toFloatArray());
    }

    /** The outlier threshold. */
    public double threshold() {
        return weights.threshold();
    }

    /** Bytes of native memory this layer holds: codes and row scales. */
    public long nativeBytes() {
        return weights.codes().getShape().size() * weights.codes().getDataType().getNumOfBytes()
                + weights.rowAbsmax().getShape().size() * weights.rowAbsmax().getDataType().getNumOfBytes();
    }

    @Override
    public long inFeatures() {
        return weights.shape()[1];
    }

    @Override
    public long outFeatures() {
        return weights.shape()[0];
    }

    @Override
    public void close() {
        manager.close();
    }
}
