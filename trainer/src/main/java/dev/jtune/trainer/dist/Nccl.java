package dev.jtune.trainer.dist;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * libnccl's C API (and the two libcudart calls it needs) through the foreign function API, bound on first use.
 * Signatures transcribed from nccl.h (NCCL 2.x): {@code ncclGetUniqueId(ncclUniqueId*)},
 * {@code ncclCommInitRank(ncclComm_t*, int nranks, ncclUniqueId id, int rank)} (the 128-byte id by value),
 * {@code ncclAllReduce(const void*, void*, size_t count, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t)},
 * {@code ncclAllGather(const void*, void*, size_t sendcount, ncclDataType_t, ncclComm_t, cudaStream_t)},
 * {@code ncclReduceScatter(const void*, void*, size_t recvcount, ncclDataType_t, ncclRedOp_t, ncclComm_t,
 * cudaStream_t)}, {@code ncclBroadcast(const void*, void*, size_t, ncclDataType_t, int root, ncclComm_t,
 * cudaStream_t)}, {@code ncclCommDestroy(ncclComm_t)}, {@code const char* ncclGetErrorString(ncclResult_t)}; from
 * cuda_runtime_api.h {@code cudaSetDevice(int)} and {@code cudaStreamSynchronize(cudaStream_t)}.
 *
 * <p>Where the libraries come from, first found wins: {@code $JTUNE_NCCL_LIB} / {@code $JTUNE_CUDART_LIB} (paths);
 * a {@code libnccl.so*} / {@code libcudart*.so*} in DJL's libtorch cache folders ({@code $DJL_CACHE_DIR/pytorch/*} or
 * {@code ~/.djl.ai/pytorch/*}, where pytorch-native-cu128 unpacks); then the dynamic linker's search path
 * ({@code libnccl.so.2}, {@code libcudart.so.12}). Nothing is loaded until a CUDA process group is made, so CPU-only
 * machines never touch these libraries.
 */
final class Nccl {
    /** ncclDataType_t. */
    static final int INT32 = 2;
    static final int INT64 = 4;
    static final int FLOAT16 = 6;
    static final int FLOAT32 = 7;
    static final int FLOAT64 = 8;
    static final int BFLOAT16 = 9;
    /** ncclRedOp_t ncclSum. */
    static final int SUM = 0;
    static final int UNIQUE_ID_BYTES = 128;

    private static final MemoryLayout UNIQUE_ID = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(UNIQUE_ID_BYTES, JAVA_BYTE).withName("internal"));

    final String ncclPath;
    private final MethodHandle getUniqueId;
    private final MethodHandle commInitRank;
    private final MethodHandle allReduce;
    private final MethodHandle allGather;
    private final MethodHandle reduceScatter;
    private final MethodHandle broadcast;
    private final MethodHandle commDestroy;
    private final MethodHandle getErrorString;
    private final MethodHandle setDevice;
    private final MethodHandle streamSynchronize;

    private static volatile Nccl instance;

    private Nccl(String ncclPath, SymbolLookup nccl, SymbolLookup cudart) {
        this.ncclPath = ncclPath;
        Linker l = Linker.nativeLinker();
        getUniqueId = l.downcallHandle(find(nccl, "ncclGetUniqueId"), FunctionDescriptor.of(JAVA_INT, ADDRESS));
        commInitRank = l.downcallHandle(find(nccl, "ncclCommInitRank"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, UNIQUE_ID, JAVA_INT));
        allReduce = l.downcallHandle(find(nccl, "ncclAllReduce"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
        allGather = l.downcallHandle(find(nccl, "ncclAllGather"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS));
        reduceScatter = l.downcallHandle(find(nccl, "ncclReduceScatter"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
        broadcast = l.downcallHandle(find(nccl, "ncclBroadcast"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
        commDestroy = l.downcallHandle(find(nccl, "ncclCommDestroy"), FunctionDescriptor.of(JAVA_INT, ADDRESS));
        getErrorString = l.downcallHandle(find(nccl, "ncclGetErrorString"), FunctionDescriptor.of(ADDRESS, JAVA_INT));
        setDevice = l.downcallHandle(find(cudart, "cudaSetDevice"), FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        streamSynchronize = l.downcallHandle(find(cudart, "cudaStreamSynchronize"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS));
    }

    /**
     * The bindings, loading the libraries on first call.
     *
     * @throws DistException saying which library was not found and where it was looked for
     */
    static Nccl get() {
        Nccl n = instance;
        if (n == null) {
            synchronized (Nccl.class) {
                n = instance;
                if (n == null) {
                    n = load();
                    instance = n;
                }
            }
        }
        return n;
    }

    private static Nccl load() {
        Arena global = Arena.global();
        List<String> tried = new ArrayList<>();
        Loaded nccl = open("JTUNE_NCCL_LIB", "libnccl", "libnccl.so.2", tried, global);
        if (nccl == null) {
            throw new DistException("libnccl not found (tried " + String.join(", ", tried) + "): the CUDA process "
                    + "group needs NCCL 2 — install it (e.g. Debian/Ubuntu libnccl2) or set JTUNE_NCCL_LIB to "
                    + "libnccl.so.2; CPU runs use the ring process group and need no NCCL");
        }
        List<String> triedCuda = new ArrayList<>();
        Loaded cudart = open("JTUNE_CUDART_LIB", "libcudart", "libcudart.so.12", triedCuda, global);
        if (cudart == null) {
            throw new DistException("libcudart not found (tried " + String.join(", ", triedCuda) + "): no CUDA "
                    + "runtime on this machine; set JTUNE_CUDART_LIB or run on CPU");
        }
        return new Nccl(nccl.path, nccl.lookup, cudart.lookup);
    }

    private record Loaded(String path, SymbolLookup lookup) {}

    private static Loaded open(String envVar, String filePrefix, String soname, List<String> tried, Arena arena) {
        List<String> candidates = new ArrayList<>();
        String env = System.getenv(envVar);
        if (env != null && !env.isBlank()) {
            candidates.add(env);
        }
        for (Path dir : djlLibtorchDirs()) {
            try (Stream<Path> files = Files.list(dir)) {
                files.filter(f -> f.getFileName().toString().startsWith(filePrefix)
                        && f.getFileName().toString().contains(".so")).sorted().forEach(f -> candidates.add(f.toString()));
            } catch (IOException e) {
                // unreadable cache folder: the next candidate decides
            }
        }
        candidates.add(soname);
        for (String c : candidates) {
            tried.add(c);
            try {
                return new Loaded(c, SymbolLookup.libraryLookup(c, arena));
            } catch (IllegalArgumentException e) {
                // not loadable: try the next
            }
        }
        return null;
    }

    private static List<Path> djlLibtorchDirs() {
        List<Path> roots = new ArrayList<>();
        String cache = System.getenv("DJL_CACHE_DIR");
        if (cache != null) {
            roots.add(Path.of(cache, "pytorch"));
        }
        roots.add(Path.of(System.getProperty("user.home"), ".djl.ai", "pytorch"));
        List<Path> dirs = new ArrayList<>();
        for (Path root : roots) {
            if (Files.isDirectory(root)) {
                try (Stream<Path> s = Files.list(root)) {
                    s.filter(Files::isDirectory).sorted().forEach(dirs::add);
                } catch (IOException e) {
                    // ignore an unreadable cache
                }
            }
        }
        return dirs;
    }

    private static MemorySegment find(SymbolLookup lib, String name) {
        return lib.find(name).orElseThrow(() -> new DistException("symbol " + name + " missing from the loaded library"
                + " (is it NCCL 2 / CUDA 12?)"));
    }

    // ---- calls ------------------------------------------------------------------------------------------------

    byte[] uniqueId() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment id = a.allocate(UNIQUE_ID);
            check((int) getUniqueId.invokeExact(id), "ncclGetUniqueId");
            return id.toArray(JAVA_BYTE);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    MemorySegment commInitRank(int nranks, byte[] id, int rank) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment comm = a.allocate(ADDRESS);
            MemorySegment idSeg = a.allocate(UNIQUE_ID);
            idSeg.copyFrom(MemorySegment.ofArray(id));
            check((int) commInitRank.invokeExact(comm, nranks, idSeg, rank), "ncclCommInitRank");
            return comm.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void allReduce(long send, long recv, long count, int dtype, MemorySegment comm) {
        try {
            check((int) allReduce.invokeExact(MemorySegment.ofAddress(send), MemorySegment.ofAddress(recv), count, dtype,
                    SUM, comm, MemorySegment.NULL), "ncclAllReduce");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void allGather(long send, long recv, long sendCount, int dtype, MemorySegment comm) {
        try {
            check((int) allGather.invokeExact(MemorySegment.ofAddress(send), MemorySegment.ofAddress(recv), sendCount,
                    dtype, comm, MemorySegment.NULL), "ncclAllGather");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void reduceScatter(long send, long recv, long recvCount, int dtype, MemorySegment comm) {
        try {
            check((int) reduceScatter.invokeExact(MemorySegment.ofAddress(send), MemorySegment.ofAddress(recv),
                    recvCount, dtype, SUM, comm, MemorySegment.NULL), "ncclReduceScatter");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void broadcast(long send, long recv, long count, int dtype, int root, MemorySegment comm) {
        try {
            check((int) broadcast.invokeExact(MemorySegment.ofAddress(send), MemorySegment.ofAddress(recv), count, dtype,
                    root, comm, MemorySegment.NULL), "ncclBroadcast");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void commDestroy(MemorySegment comm) {
        try {
            check((int) commDestroy.invokeExact(comm), "ncclCommDestroy");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void setDevice(int device) {
        try {
            int rc = (int) setDevice.invokeExact(device);
            if (rc != 0) {
                throw new DistException("cudaSetDevice(" + device + ") failed with CUDA error " + rc);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Waits for the legacy default stream (stream 0), on which libtorch (as DJL drives it) and NCCL both run. */
    void synchronize() {
        try {
            int rc = (int) streamSynchronize.invokeExact(MemorySegment.NULL);
            if (rc != 0) {
                throw new DistException("cudaStreamSynchronize failed with CUDA error " + rc);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private void check(int rc, String call) throws Throwable {
        if (rc != 0) {
            MemorySegment msg = (MemorySegment) getErrorString.invokeExact(rc);
            throw new DistException(call + " failed: NCCL error " + rc + " ("
                    + msg.reinterpret(1024).getString(0) + ")");
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new DistException("NCCL call failed: " + t, t);
    }
}
