package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JtuneTensorMemory;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.ScriptModule;
import dev.jtune.model.engine.Torch;
import java.lang.foreign.MemorySegment;

/**
 * A tensor's memory for the collectives, which read and write it in place, and the kernels of
 * {@code dist.torchscript.py} for non-contiguous tensors (DJL's {@code set(Buffer)} would instead swap the tensor's storage for a Java buffer,
 * which views of the old storage would not see).
 */
final class DistKernels {
    private static final String RESOURCE = "dist.torchscript.py";
    private static volatile DistKernels instance;

    private final ScriptModule ops;

    private DistKernels(ScriptModule ops) {
        this.ops = ops;
    }

    static DistKernels get() {
        DistKernels k = instance;
        if (k == null) {
            synchronized (DistKernels.class) {
                k = instance;
                if (k == null) {
                    // Lives as long as the process, like the model's kernels.
                    NDManager manager = Torch.newManager();
                    k = new DistKernels(ScriptModule.compile(manager, "Ops", Kernels.source(DistKernels.class,
                            RESOURCE), RESOURCE));
                    instance = k;
                }
            }
        }
        return k;
    }

    /** The address of a contiguous tensor's first element (a device address for CUDA tensors). */
    static long address(NDArray x) {
        return JtuneTensorMemory.address((PtNDArray) x);
    }

    /** Bytes per element; refuses what DJL cannot describe (bf16 made by a kernel reports {@code unknown}). */
    static int elementSize(NDArray x) {
        int n = x.getDataType().getNumOfBytes();
        if (n <= 0 || x.getDataType() == ai.djl.ndarray.types.DataType.UNKNOWN) {
            throw new IllegalArgumentException("collectives need a dtype DJL knows, got " + x.getDataType()
                    + " (cast bf16 to float32 first)");
        }
        return n;
    }

    boolean isContiguous(NDArray x) {
        return ops.callLong("is_contiguous", x) != 0;
    }

    /** A contiguous copy of {@code x}, detached, in {@code x}'s manager. */
    NDArray contiguous(NDArray x) {
        return Torch.noGrad(() -> ops.call("contiguous", x));
    }

    /** {@code dst.copy_(src)} with autograd off. */
    void copy(NDArray dst, NDArray src) {
        Torch.noGrad(() -> ops.callLong("copy_", dst, src));
    }

    /** The host memory of a contiguous CPU tensor, {@code x.size() * elementSize} bytes. */
    MemorySegment hostMemory(NDArray x) {
        if (x.getDevice().isGpu()) {
            throw new IllegalArgumentException("the ring process group works on CPU tensors; " + x.getDevice()
                    + " tensors need NCCL (ProcessGroups.create with cuda=true)");
        }
        long bytes = x.size() * elementSize(x);
        if (bytes == 0) {
            return MemorySegment.NULL;
        }
        if (bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("collectives take tensors of at most 2 GiB (DJL's limit on a tensor's"
                    + " address), got " + x.getShape() + " " + x.getDataType() + "; split it");
        }
        return MemorySegment.ofAddress(address(x)).reinterpret(bytes);
    }
}
