package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.KernelLibrary;
import dev.jtune.model.engine.Torch;
import java.lang.foreign.MemorySegment;

/**
 * A tensor's memory for the collectives, which read and write it in place, and the kernels of
 * {@code dist.torchscript.py} for non-contiguous tensors (DJL's {@code set(Buffer)} would instead swap the tensor's storage for a Java buffer,
 * which views of the old storage would not see).
 */
final class DistKernels {
    private static final KernelLibrary LIBRARY = new KernelLibrary(DistKernels.class, "Ops", "dist.torchscript.py");
    private static final DistKernels INSTANCE = new DistKernels();

    private DistKernels() {}

    static DistKernels get() {
        return INSTANCE;
    }

    /** The address of a contiguous tensor's first element (a device address for CUDA tensors). */
    static long address(NDArray x) {
        return Torch.dataAddress(x);
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
        return LIBRARY.ops().callLong("is_contiguous", x) != 0;
    }

    /** A contiguous copy of {@code x}, detached, in {@code x}'s manager. */
    NDArray contiguous(NDArray x) {
        return Autograd.noGrad(() -> LIBRARY.ops().call("contiguous", x));
    }

    /** {@code dst.copy_(src)} with autograd off. */
    void copy(NDArray dst, NDArray src) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("copy_", dst, src));
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
