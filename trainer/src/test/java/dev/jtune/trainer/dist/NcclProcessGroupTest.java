package dev.jtune.trainer.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Torch;
import java.time.Duration;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * NCCL: on a machine without CUDA or libnccl a clear error, never a crash; with CUDA and NCCL (run by hand with
 * {@code ./mvnw -Pcuda}), a world of one on GPU 0 through every call of the binding.
 */
class NcclProcessGroupTest {
    private static final DistEnv TWO = new DistEnv(0, 0, 2, 2, "127.0.0.1", 0);

    @Test
    void withoutCudaOrNcclCreationFailsWithAClearMessage() {
        Assumptions.assumeTrue(Torch.engine().getGpuCount() == 0, "CUDA is present: the CUDA test covers it");
        DistException e = assertThrows(DistException.class,
                () -> NcclProcessGroup.create(TWO, new MemoryStore(), "n", Duration.ofSeconds(1)));
        String m = e.getMessage();
        assertTrue(m.contains("libnccl not found") || m.contains("no CUDA device") || m.contains("libcudart not found"), m);
        // the process goes on: the CPU path still works after the failed attempt
        assertInstanceOf(RingProcessGroup.class, ProcessGroups.create(DistEnv.SINGLE, new MemoryStore(), "p",
                Duration.ofSeconds(1), false));
    }

    @Test
    void factoryChoosesByDevice() {
        ProcessGroup cpu = ProcessGroups.create(DistEnv.SINGLE, new MemoryStore(), "p", Duration.ofSeconds(1), false);
        assertInstanceOf(RingProcessGroup.class, cpu);
        ProcessGroup cuda1 = ProcessGroups.create(DistEnv.SINGLE, new MemoryStore(), "p", Duration.ofSeconds(1), true);
        assertEquals(1, cuda1.worldSize()); // a world of one needs no NCCL
        try (NDManager m = Torch.newManager()) {
            assertEquals(Nccl.FLOAT32, NcclProcessGroup.dtype(m.create(new float[1]))); // the class loads on CPU
        }
    }

    /** Runs only where libtorch sees a GPU and NCCL loads: every NCCL binding, world of one (nranks 1). */
    @Test
    void onCudaEveryBindingWorksInAWorldOfOne() {
        Assumptions.assumeTrue(Torch.engine().getGpuCount() > 0, "no CUDA device");
        MemoryStore store = new MemoryStore();
        DistEnv one = new DistEnv(0, 0, 1, 1, "127.0.0.1", 0);
        try (NcclProcessGroup pg = NcclProcessGroup.create(one, store, "g", Duration.ofSeconds(30));
                NDManager m = Torch.engine().newBaseManager(Device.gpu(0))) {
            NDArray x = m.create(new float[] {1, 2, 3, 4}, new Shape(2, 2));
            pg.allReduceSum(x);
            assertArrayEquals(new float[] {1, 2, 3, 4}, x.toFloatArray());
            assertArrayEquals(new float[] {1, 2, 3, 4}, pg.allGather(x).toFloatArray());
            assertArrayEquals(new float[] {1, 2, 3, 4}, pg.reduceScatterSum(x).toFloatArray());
            pg.broadcast(x, 0);
            pg.barrier();
            assertArrayEquals(new float[] {1, 2, 3, 4}, x.toFloatArray());
        }
    }
}
