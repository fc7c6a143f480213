package dev.jtune.trainer.dist;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import java.lang.foreign.MemorySegment;
import java.time.Duration;

/**
 * The CUDA process group: NCCL's collectives on the tensors' device memory, through the foreign function API (see
 * {@link Nccl}; nothing is loaded before {@link #create}, so this class is harmless on CPU machines).
 *
 * <p>Rank 0 makes the NCCL unique id and publishes it in the {@link Store} under {@code prefix/nccl/id}; every rank
 * selects device {@code LOCAL_RANK} and joins with {@code ncclCommInitRank}. Device addresses come from DJL's native
 * layer ({@code Torch.dataAddress}: the tensor's {@code data_ptr()}; TorchScript has no
 * {@code data_ptr}). Every collective is enqueued on the legacy default stream (stream 0), where DJL's libtorch ops
 * run too, so it follows the ops that produced its input; it is then synchronized with {@code cudaStreamSynchronize},
 * which keeps the semantics of the CPU ring (the result is there when the call returns) at the price of overlap.
 * Sums: fp32, fp64, fp16, bf16 (made by a kernel), int32, int64, in NCCL's order (ranks agree, as NCCL's ring/tree
 * reductions are deterministic for a fixed topology). Non-contiguous tensors are refused.
 *
 * <p>Untested in CI (no GPU there); see {@code NcclProcessGroupTest}, which runs only where CUDA and NCCL are.
 */
public final class NcclProcessGroup implements ProcessGroup {
    private final int rank;
    private final int world;
    private final Nccl nccl;
    private final MemorySegment comm;
    private final NDManager scratch;
    private boolean closed;

    private NcclProcessGroup(int rank, int world, Nccl nccl, MemorySegment comm, NDManager scratch) {
        this.rank = rank;
        this.world = world;
        this.nccl = nccl;
        this.comm = comm;
        this.scratch = scratch;
    }

    /**
     * Joins the NCCL communicator of {@code env}'s world on device {@code gpu(LOCAL_RANK)}.
     *
     * @throws DistException when libnccl or libcudart is missing, there is no CUDA device, or rank 0's id does not
     *     arrive within {@code timeout}
     */
    public static NcclProcessGroup create(DistEnv env, Store store, String prefix, Duration timeout) {
        Nccl nccl = Nccl.get();
        int gpus = Torch.engine().getGpuCount();
        if (gpus == 0) {
            throw new DistException("no CUDA device visible to libtorch (found " + nccl.ncclPath + ", but this is a CPU"
                    + " build or machine; build with ./mvnw -Pcuda and check CUDA_VISIBLE_DEVICES, or use the ring)");
        }
        if (env.localRank() >= gpus) {
            throw new DistException("LOCAL_RANK " + env.localRank() + " but only " + gpus + " CUDA devices are visible");
        }
        nccl.setDevice(env.localRank());
        String key = prefix + "/nccl/id";
        byte[] id;
        if (env.rank() == 0) {
            id = nccl.uniqueId();
            store.set(key, id);
        } else {
            try {
                id = store.get(key, timeout);
            } catch (DistException e) {
                throw new DistException("rank 0 did not publish the NCCL id within " + timeout + " (store key " + key
                        + ")", e);
            }
        }
        if (id.length != Nccl.UNIQUE_ID_BYTES) {
            throw new DistException("store key " + key + " holds " + id.length + " bytes, not an NCCL id");
        }
        MemorySegment comm = nccl.commInitRank(env.worldSize(), id, env.rank());
        NDManager scratch = Torch.engine().newBaseManager(Device.gpu(env.localRank()));
        return new NcclProcessGroup(env.rank(), env.worldSize(), nccl, comm, scratch);
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int worldSize() {
        return world;
    }

    @Override
    public synchronized void allReduceSum(NDArray x) {
        long p = address(x);
        if (x.size() > 0) {
            nccl.allReduce(p, p, x.size(), dtype(x), comm);
            nccl.synchronize();
        }
    }

    @Override
    public synchronized NDArray allGather(NDArray x) {
        Shape s = x.getShape();
        Shape outShape = s.dimension() == 0 ? new Shape(world) : new Shape(concat(s.get(0) * world, s.slice(1).getShape()));
        int type = dtype(x);
        NDArray out = x.getManager().create(outShape, x.getDataType(), x.getDevice());
        if (x.size() > 0) {
            nccl.allGather(address(x), address(out), x.size(), type, comm);
            nccl.synchronize();
        }
        return out;
    }

    @Override
    public synchronized NDArray reduceScatterSum(NDArray x) {
        Shape s = x.getShape();
        if (s.dimension() == 0 || s.get(0) % world != 0) {
            throw new IllegalArgumentException("reduceScatterSum needs dimension 0 divisible by the world size "
                    + world + ", got shape " + s);
        }
        int type = dtype(x);
        NDArray out = x.getManager().create(new Shape(concat(s.get(0) / world, s.slice(1).getShape())),
                x.getDataType(), x.getDevice());
        if (out.size() > 0) {
            nccl.reduceScatter(address(x), address(out), out.size(), type, comm);
            nccl.synchronize();
        }
        return out;
    }

    @Override
    public synchronized void broadcast(NDArray x, int root) {
        if (root < 0 || root >= world) {
            throw new IllegalArgumentException("broadcast root " + root + " is not a rank of a world of " + world);
        }
        long p = address(x);
        if (x.size() > 0) {
            nccl.broadcast(p, p, x.size(), dtype(x), root, comm);
            nccl.synchronize();
        }
    }

    @Override
    public synchronized void barrier() {
        try (NDManager m = scratch.newSubManager()) {
            NDArray one = m.ones(new Shape(1), DataType.FLOAT32);
            allReduceSum(one);
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            nccl.commDestroy(comm);
            scratch.close();
        }
    }

    private static long address(NDArray x) {
        if (!x.getDevice().isGpu()) {
            throw new IllegalArgumentException("the NCCL process group works on CUDA tensors, got one on "
                    + x.getDevice() + " (CPU tensors use the ring process group)");
        }
        if (x.size() == 0) {
            return 0;
        }
        if (!DistKernels.get().isContiguous(x)) {
            throw new IllegalArgumentException("NCCL collectives need a contiguous tensor, got shape " + x.getShape());
        }
        return DistKernels.address(x);
    }

    /** ncclDataType_t of {@code x}. */
    static int dtype(NDArray x) {
        return switch (x.getDataType()) {
            case FLOAT32 -> Nccl.FLOAT32;
            case FLOAT64 -> Nccl.FLOAT64;
            case FLOAT16 -> Nccl.FLOAT16;
            case INT32 -> Nccl.INT32;
            case INT64 -> Nccl.INT64;
            case UNKNOWN -> {
                // bf16 made by a kernel: DJL cannot name it, libtorch can
                if (Kernels.get().dtypeOf(x) == Dtype.BF16) {
                    yield Nccl.BFLOAT16;
                }
                throw new IllegalArgumentException("NCCL collectives: unsupported dtype of tensor " + x.getShape());
            }
            default -> throw new IllegalArgumentException("NCCL collectives take float32/64, float16, bfloat16, int32"
                    + " and int64 tensors, not " + x.getDataType());
        };
    }

    private static long[] concat(long first, long[] rest) {
        long[] d = new long[rest.length + 1];
        d[0] = first;
        System.arraycopy(rest, 0, d, 1, rest.length);
        return d;
    }
}
