package dev.jtune.trainer.dist;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.function.Consumer;

/**
 * The CPU process group: a ring over TCP written in Java, in the manner of Gloo's ring all-reduce (reduce-scatter
 * then all-gather over n chunks). Collectives run directly on the tensors' memory (their address comes from DJL's native
 * layer, see {@code JtuneTensorMemory}), so a contiguous fp32 tensor is reduced without a copy on either side of the socket.
 *
 * <p>Ranks on one host move large messages through a {@code /dev/shm} file instead of loopback TCP (set
 * {@code JTUNE_RING_SHM=0} to keep to TCP); see {@link Ring}.
 *
 * <p>Why not an existing engine: neither Open MPI nor MPICH is installed here or on CI (Debian; only an MPICH
 * {@code .deb} sits in apt's cache), so using one would mean a native package on every user's machine, and MPI wants
 * to start the processes itself ({@code mpirun}), which is the launcher's job in jtune. Gloo has no C API reachable
 * through the foreign function API. A ring over loopback TCP reaches a good fraction of memory bandwidth (see
 * bench/README.md), which is what a CPU run needs.
 *
 * <p>Sums: fp32, fp64, int32, int64. Every chunk is summed once, on one rank, in a fixed order (see {@link Ring}), and
 * then copied to the others, so all ranks hold bit-identical results; the order depends on the world size, not on
 * timing, so runs are reproducible. allGather and broadcast move bytes and take any dtype DJL can allocate.
 * Non-contiguous tensors go through a contiguous copy. Methods are synchronized; a failure (peer gone, timeout,
 * mismatched collectives) raises {@link DistException} and leaves the group unusable.
 */
public final class RingProcessGroup implements ProcessGroup {
    private final int rank;
    private final int world;
    private final Ring ring;

    private RingProcessGroup(int rank, int world, Ring ring) {
        this.rank = rank;
        this.world = world;
        this.ring = ring;
    }

    /**
     * Joins the ring of {@code env}'s world: binds a port on the interface that routes to {@code MASTER_ADDR},
     * publishes it in {@code store} under {@code prefix}, and connects to both neighbours.
     *
     * @param prefix store-key namespace of this group (include the launcher's restart generation)
     * @param timeout for setup (every rank must arrive within it) and for any collective that makes no progress
     * @throws DistException naming the rank that did not arrive
     */
    public static RingProcessGroup create(DistEnv env, Store store, String prefix, Duration timeout) {
        return create(env, store, prefix, timeout, timeout);
    }

    /** As above, with setup's timeout apart from a stalled collective's (for tests of the latter). */
    static RingProcessGroup create(DistEnv env, Store store, String prefix, Duration setupTimeout,
            Duration collectiveTimeout) {
        if (env.worldSize() == 1) {
            return new RingProcessGroup(0, 1, null);
        }
        return new RingProcessGroup(env.rank(), env.worldSize(),
                Ring.connect(env.rank(), env.worldSize(), store, prefix, env.masterAddr(), setupTimeout,
                        collectiveTimeout, Ring.sharedMemoryFromEnv()));
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
        Ring.Sum type = sumType(x);
        if (ring == null) {
            return;
        }
        long count = x.size();
        inPlace(x, mem -> ring.allReduce(mem, count, type));
    }

    @Override
    public synchronized NDArray allGather(NDArray x) {
        Shape s = x.getShape();
        Shape outShape = s.dimension() == 0 ? new Shape(world)
                : new Shape(concat(s.get(0) * world, s.slice(1).getShape()));
        DistKernels k = DistKernels.get();
        int esize = DistKernels.elementSize(x);
        NDArray out = x.getManager().create(outShape, x.getDataType(), x.getDevice());
        try {
            MemorySegment all = k.hostMemory(out);
            long block = x.size() * esize;
            read(x, mem -> MemorySegment.copy(mem, 0, all, rank * block, block));
            if (ring != null) {
                ring.allGather(all, x.size(), esize);
            }
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    @Override
    public synchronized NDArray reduceScatterSum(NDArray x) {
        Ring.Sum type = sumType(x);
        Shape s = x.getShape();
        if (s.dimension() == 0 || s.get(0) % world != 0) {
            throw new IllegalArgumentException("reduceScatterSum needs dimension 0 divisible by the world size "
                    + world + ", got shape " + s);
        }
        Shape outShape = new Shape(concat(s.get(0) / world, s.slice(1).getShape()));
        long blockElems = x.size() / world;
        int esize = Ring.size(type);
        long blockBytes = blockElems * esize;
        NDArray out = x.getManager().create(outShape, x.getDataType(), x.getDevice());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment result = DistKernels.get().hostMemory(out);
            if (ring == null) {
                read(x, mem -> MemorySegment.copy(mem, 0, result, 0, blockBytes));
                return out;
            }
            // The reduction overwrites every block but this rank's final one; x stays as it was.
            MemorySegment work = arena.allocate(Math.max(1, x.size() * esize), 64);
            read(x, mem -> MemorySegment.copy(mem, 0, work, 0, x.size() * esize));
            ring.reduceScatter(work, blockElems, type);
            MemorySegment.copy(work, rank * blockBytes, result, 0, blockBytes);
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    @Override
    public synchronized void broadcast(NDArray x, int root) {
        if (root < 0 || root >= world) {
            throw new IllegalArgumentException("broadcast root " + root + " is not a rank of a world of " + world);
        }
        if (ring == null) {
            return;
        }
        DistKernels.elementSize(x); // fails early on a tensor libtorch cannot describe
        inPlace(x, mem -> ring.broadcast(mem, root));
    }

    @Override
    public synchronized void barrier() {
        if (ring != null) {
            ring.barrier();
        }
    }

    @Override
    public synchronized void close() {
        if (ring != null) {
            ring.close();
        }
    }

    private static Ring.Sum sumType(NDArray x) {
        DataType t = x.getDataType();
        return switch (t) {
            case FLOAT32 -> Ring.Sum.F32;
            case FLOAT64 -> Ring.Sum.F64;
            case INT32 -> Ring.Sum.I32;
            case INT64 -> Ring.Sum.I64;
            default -> throw new IllegalArgumentException("the ring sums float32, float64, int32 and int64 tensors, not "
                    + t + " (cast to float32 first)");
        };
    }

    /** Runs {@code body} on {@code x}'s memory and leaves what it wrote in {@code x}. */
    private static void inPlace(NDArray x, Consumer<MemorySegment> body) {
        DistKernels k = DistKernels.get();
        if (k.isContiguous(x)) {
            body.accept(k.hostMemory(x));
            return;
        }
        try (NDArray tmp = k.contiguous(x)) {
            body.accept(k.hostMemory(tmp));
            k.copy(x, tmp);
        }
    }

    /** Runs {@code body} on {@code x}'s memory (or a contiguous copy), reading only. */
    private static void read(NDArray x, Consumer<MemorySegment> body) {
        DistKernels k = DistKernels.get();
        if (k.isContiguous(x)) {
            body.accept(k.hostMemory(x));
            return;
        }
        try (NDArray tmp = k.contiguous(x)) {
            body.accept(k.hostMemory(tmp));
        }
    }

    private static long[] concat(long first, long[] rest) {
        long[] d = new long[rest.length + 1];
        d[0] = first;
        System.arraycopy(rest, 0, d, 1, rest.length);
        return d;
    }
}
