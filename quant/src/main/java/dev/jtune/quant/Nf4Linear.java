package dev.jtune.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.llama.Linear;
import java.util.List;

/**
 * A frozen linear projection whose weight [out, in] is stored in NF4 with double quantization (QLoRA's base layer).
 *
 * <p>Holds only the quantized form in native memory: the packed codes (0.5 byte a weight), one uint8 absmax code per
 * 64 weights, one fp32 nested scale per 16384 weights, the offset and the two small maps. {@link #forward}
 * dequantizes to the stored dtype in libtorch, casts to the input's dtype and multiplies; the weight never
 * requires a gradient, the input does get one.
 *
 * <p>Memory in training: autograd keeps, for the input's gradient, the weight the product used. With
 * {@link SharedBuffers} (what {@link Nf4#linearFactory} gives every model) that weight is a buffer the same
 * projection of every decoder layer shares, so a forward pass with autograd holds one layer's dense weights, not the
 * model's; before a layer's backward, {@link #prepareBackward} writes this layer's weight there again (bitsandbytes'
 * {@code MatMul4Bit} dequantizes again in its backward too). Without shared buffers each call dequantizes into a
 * weight of its own.
 */
public final class Nf4Linear implements Linear {
    /** The native tensors of one NF4 weight. */
    record Weights(NDArray packed, NDArray codes, NDArray nestedAbsmax, NDArray quantMap, NDArray nestedMap,
            NDArray offset, int blocksize, int nestedBlocksize, long[] shape, Dtype dtype) {
        List<NDArray> arrays() {
            return List.of(packed, codes, nestedAbsmax, quantMap, nestedMap, offset);
        }
    }

    private NDManager manager;
    private Weights weights;
    private final SharedBuffers.Slot shared; // null: a dequantized weight per call
    private Nf4CpuDequantizer cpu; // made at the first CPU dequantization

    /**
     * The dequantization buffers of one model: one per projection role (the module name without its layer index,
     * e.g. {@code model.layers.*.self_attn.q_proj}), allocated at the first forward in the input's dtype and kept
     * with the model's memory. Not for concurrent use (one model, one thread of forward and backward). The 8-bit
     * base ({@link Int8Linear}) keeps its dequantized weights in the same kind of buffers.
     */
    public static final class SharedBuffers {
        private final java.util.Map<String, Slot> byRole = new java.util.HashMap<>();

        /** The slot of module {@code name}'s role. */
        Slot slot(String name) {
            return byRole.computeIfAbsent(name.replaceAll("\\.layers\\.\\d+\\.", ".layers.*."), k -> new Slot());
        }

        /** One role's buffer, the writer alias onto it, and which projection's weight it holds now. */
        static final class Slot {
            NDArray buffer;
            NDArray writer;
            private Dtype dtype;
            Linear holder; // the projection whose weight the buffer holds now

            /** The buffer for a product with {@code x}, (re)allocated in {@code home} when missing or unfit. */
            void fit(NDArray x, long[] shape, NDManager home) {
                // DJL's own dtype (bf16 reads as UNKNOWN, fp32 and fp16 as themselves) tells the compute dtypes apart
                // without a kernel call on every projection's forward.
                if (buffer != null && buffer.getDataType() == x.getDataType()
                        && java.util.Arrays.equals(buffer.getShape().getShape(), shape)) {
                    return;
                }
                Nf4Kernels k = Nf4Kernels.get();
                if (buffer != null) {
                    buffer.close();
                    writer.close();
                }
                buffer = k.buffer(x, shape);
                buffer.attach(home);
                writer = k.writer(buffer);
                dtype = dev.jtune.model.engine.Kernels.get().dtypeOf(buffer);
                holder = null;
            }
        }
    }

    /**
     * Copies {@code q} (2-d, [out, in]) into native memory under a sub-manager of {@code parent}.
     *
     * @throws IllegalArgumentException if {@code q} is not 2-d
     */
    public Nf4Linear(Nf4Tensor q, NDManager parent) {
        this(q, parent, null);
    }

    /**
     * As {@link #Nf4Linear(Nf4Tensor, NDManager)}, dequantizing into {@code shared}'s buffer for this module's role.
     *
     * @param name the module name, e.g. {@code model.layers.3.mlp.down_proj}
     */
    public Nf4Linear(Nf4Tensor q, NDManager parent, SharedBuffers shared, String name) {
        this(q, parent, shared == null ? null : shared.slot(name));
    }

    private Nf4Linear(Nf4Tensor q, NDManager parent, SharedBuffers.Slot shared) {
        this.shared = shared;
        long[] shape = q.shape();
        if (shape.length != 2) {
            throw new IllegalArgumentException("an NF4 linear weight must be 2-d, got shape "
                    + java.util.Arrays.toString(shape));
        }
        NDManager m = parent.newSubManager();
        try {
            this.weights = new Weights(
                    bytes(m, q.packed()),
                    bytes(m, q.absmaxCodes()),
                    m.create(q.nestedAbsmax()),
                    m.create(q.quantMap()),
                    m.create(q.nestedQuantMap()),
                    m.create(new float[] {q.offset()}, new Shape()),
                    q.blocksize(), q.nestedBlocksize(), shape, q.dtype());
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
        this.manager = m;
    }

    private static NDArray bytes(NDManager m, byte[] b) {
        return uint8(m, b, 0, b.length);
    }

    /**
     * {@code length} bytes of {@code src} from {@code from} (zeros past its end) as a native uint8 tensor, copied
     * straight into the tensor's memory: a direct ByteBuffer in between would stay allocated until a garbage
     * collection frees it, and a 7B model's codes are 3.3 GB of them.
     */
    public static NDArray uint8(NDManager m, byte[] src, long from, long length) {
        int n = Math.toIntExact(length);
        NDArray t = m.zeros(new Shape(n), DataType.UINT8);
        int start = (int) Math.min(from, src.length);
        int end = (int) Math.min(from + length, src.length);
        if (end > start && n > 0) {
            java.lang.foreign.MemorySegment.copy(java.lang.foreign.MemorySegment.ofArray(src), start,
                    java.lang.foreign.MemorySegment.ofAddress(dev.jtune.model.engine.Torch.dataAddress(t)).reinterpret(n),
                    0, end - start);
        }
        return t;
    }

    @Override
    public NDArray forward(NDArray x) {
        if (shared == null) {
            return Nf4Kernels.get().linear(x, weights);
        }
        shared.fit(x, weights.shape(), manager.getParentManager());
        shared.holder = this;
        if (Nf4CpuDequantizer.applies(shared.buffer, weights)) {
            cpu().into(shared.buffer, shared.dtype, weights);
            return ai.djl.nn.core.Linear.linear(x, shared.buffer).singletonOrThrow();
        }
        return Nf4Kernels.get().linearShared(x, shared.buffer, shared.writer, weights);
    }

    /** The CPU dequantizer of this weight (its small statistics read into Java once). */
    private Nf4CpuDequantizer cpu() {
        if (cpu == null) {
            cpu = new Nf4CpuDequantizer(weights);
        }
        return cpu;
    }

    /** Writes this layer's weight into the shared buffer again if another layer's is there now. */
    @Override
    public void prepareBackward() {
        if (shared != null && shared.holder != this && shared.buffer != null) {
            if (Nf4CpuDequantizer.applies(shared.buffer, weights)) {
                cpu().into(shared.buffer, shared.dtype, weights);
            } else {
                Nf4Kernels.get().dequantizeInto(shared.writer, weights);
            }
            shared.holder = this;
        }
    }

    /**
     * Replaces the quantized weight by {@code q} (same shape), as bitsandbytes re-quantizes a {@code Params4bit} whose
     * data was replaced (Axolotl's ReLoRA merge); the old native tensors are freed.
     */
    public void requantize(Nf4Tensor q) {
        if (!java.util.Arrays.equals(q.shape(), weights.shape())) {
            throw new IllegalArgumentException("requantize: shape " + java.util.Arrays.toString(q.shape())
                    + " differs from " + java.util.Arrays.toString(weights.shape()));
        }
        NDManager parent = manager.getParentManager();
        NDManager m = parent.newSubManager();
        Weights fresh = new Weights(bytes(m, q.packed()), bytes(m, q.absmaxCodes()), m.create(q.nestedAbsmax()),
                m.create(q.quantMap()), m.create(q.nestedQuantMap()), m.create(new float[] {q.offset()}, new Shape()),
                q.blocksize(), q.nestedBlocksize(), q.shape(), q.dtype());
        manager.close();
        manager = m;
        weights = fresh;
        cpu = null;
        if (shared != null && shared.holder == this) {
            shared.holder = null; // the buffer holds the old weight
        }
    }

    /** The dequantized weight [out, in] in the stored dtype, in this layer's manager; the caller closes it. */
    public NDArray dequantize() {
        return Nf4Kernels.get().weight(weights);
    }

    /** The native tensors (tests of the CPU dequantizer). */
    Weights weightsForTest() {
        return weights;
    }

    /** The quantized weight, read back from native memory (for saving). */
    public Nf4Tensor quantized() {
        return new Nf4Tensor(weights.shape(), weights.dtype(), weights.blocksize(),
                weights.packed().toByteArray(), weights.codes().toByteArray(), weights.nestedBlocksize(),
                weights.nestedAbsmax().toFloatArray(), weights.offset().toFloatArray()[0],
                weights.quantMap().toFloatArray(), weights.nestedMap().toFloatArray());
    }

    /** Bytes of native memory this layer holds: the sum of its tensors' sizes. */
    public long nativeBytes() {
        long sum = 0;
        for (NDArray a : weights.arrays()) {
            sum += a.getShape().size() * a.getDataType().getNumOfBytes();
        }
        return sum;
    }

    /** The dtype the weight is dequantized to before the cast to the input's dtype. */
    public Dtype dtype() {
        return weights.dtype();
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
