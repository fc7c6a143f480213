package ai.djl.pytorch.jni;

import ai.djl.pytorch.engine.PtNDArray;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * jtune's entry to the address of a tensor's memory, for collectives that read and write it in place (the ring on
 * CPU, NCCL on CUDA). TorchScript has no {@code data_ptr()}, and DJL's public {@code toByteBuffer(true)} moves CUDA
 * tensors to the host first; the native {@code torchDirectByteBuffer} underneath wraps {@code tensor.data_ptr()}
 * without moving it, after checking that the tensor is dense, contiguous and under 2 GiB.
 */
public final class JtuneTensorMemory {
    private JtuneTensorMemory() {}

    /**
     * The address of the first element of a dense contiguous tensor of at most 2 GiB: host memory for CPU tensors, a
     * device pointer for CUDA tensors (never to be dereferenced from Java). The tensor must outlive its use.
     */
    public static long address(PtNDArray x) {
        ByteBuffer b = PyTorchLibrary.LIB.torchDirectByteBuffer(x.getHandle());
        return MemorySegment.ofBuffer(b).address();
    }
}
