package dev.jtune.model.engine;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Starts DJL's PyTorch engine, offline, and turns the ways it can fail into one clear error.
 *
 * <p>libtorch's natives come from the {@code pytorch-native-*} jar on the classpath; DJL extracts them
 * once into its cache folder. jtune never lets DJL download anything: offline mode is forced here, so a
 * missing native jar is an error, not a download.
 */
public final class Torch {
    private static volatile Engine engine;

    private Torch() {}

    /**
     * Returns the PyTorch engine, starting it on first use.
     *
     * @throws EngineUnavailableException if libtorch's natives cannot be found or loaded
     */
    public static Engine engine() {
        Engine e = engine;
        if (e == null) {
            synchronized (Torch.class) {
                e = engine;
                if (e == null) {
                    e = start();
                    engine = e;
                }
            }
        }
        return e;
    }

    /** A new root NDManager on the engine's default device. The caller closes it. */
    public static NDManager newManager() {
        return engine().newBaseManager();
    }

    /**
     * Turns libtorch's TorchScript graph optimizer on or off for every thread that runs kernels from now on. The
     * profiling executor swaps in optimized graphs after the first calls of each kernel, and the optimized and
     * unoptimized graphs may round differently, so a resumed process (fresh executor) would not reproduce an
     * uninterrupted one bit for bit; with it off, the plain interpreter computes the same every time (training turns
     * it off).
     *
     * <p>libtorch keeps this switch per thread ({@code torch::jit::setGraphExecutorOptimize} sets a
     * {@code thread_local}), while the plan it picks is shared per kernel: once any thread with the switch on has run a
     * kernel past its profiling run, every thread gets that kernel's optimized graph, switched off or not. So the
     * switch is kept here, process-wide, and {@link ScriptModule} applies it on the calling thread before each kernel
     * call: a rank, helper or virtual thread that never called this method runs kernels as the caller chose. Graphs
     * optimized before the switch went off stay optimized (libtorch offers no way to drop them).
     */
    public static void setGraphOptimization(boolean on) {
        engine();
        graphOptimization = on;
        applyGraphOptimization();
    }

    /** libtorch's default: the profiling executor optimizes. */
    private static volatile boolean graphOptimization = true;

    /** The process-wide choice of {@link #setGraphOptimization} (libtorch's default, on, until it is called). */
    public static boolean graphOptimization() {
        return graphOptimization;
    }

    /**
     * Sets the calling thread's libtorch switch to the process-wide choice of {@link #setGraphOptimization}. Called
     * before every kernel call (a JNI call that only stores a flag; a virtual thread may run on another carrier
     * thread, with its own native flag, at each call, so no per-thread cache).
     */
    static void applyGraphOptimization() {
        ai.djl.pytorch.jni.JniUtils.setGraphExecutorOptimize(graphOptimization);
    }

    /** libtorch's intra-op threads (the CPU cores one op may use). */
    public static int threads() {
        engine();
        return ai.djl.pytorch.jni.JniUtils.getNumThreads();
    }

    /** Sets libtorch's intra-op threads, process-wide. */
    public static void setThreads(int threads) {
        engine();
        ai.djl.pytorch.jni.JniUtils.setNumThreads(threads);
    }

    /**
     * The address of the first element of a dense contiguous tensor of at most 2 GiB: host memory for CPU tensors,
     * a device pointer for CUDA tensors (never to be dereferenced from Java). For collectives that read and write
     * tensors in place; the tensor must outlive the use.
     */
    public static long dataAddress(NDArray x) {
        return ai.djl.pytorch.jni.JtuneTensorMemory.address((ai.djl.pytorch.engine.PtNDArray) x);
    }

    /**
     * Returns the C heap's free memory to the operating system (glibc's {@code malloc_trim(0)}: free chunks at the top
     * of each arena and free pages inside them). libtorch frees tensors back to malloc, which keeps the memory of
     * mid-sized blocks (up to 32 MB) in its arenas; between long-lived tensors that memory cannot be reused for larger
     * ones and stays in the RSS — measured 1 GB of a 1.1B QLoRA step's 2.6 GB, 3 GB at 7B. Called after loading (not
     * after every step: trimming each step made the quickstart's 432 small steps 12-22 s slower, page faults
     * refilling what was just returned, while the 1 MiB mmap threshold already returns a step's large blocks); a
     * no-op where the C library has no malloc_trim.
     */
    public static void releaseFreeMemory() {
        if (MALLOC_TRIM != null) {
            try {
                int ignored = (int) MALLOC_TRIM.invokeExact(0L);
            } catch (Throwable e) {
                throw new IllegalStateException("malloc_trim failed", e);
            }
        }
        if (JEMALLOC_CTL != null) {
            // jemalloc's counterpart: purge every arena's dirty pages now (MALLCTL_ARENAS_ALL = 4096), rather than
            // over its decay time, which would carry the load's freed memory into the first steps.
            try (Arena a = Arena.ofConfined()) {
                int ignored = (int) JEMALLOC_CTL.invokeExact(a.allocateFrom("arena.4096.purge"), MemorySegment.NULL,
                        MemorySegment.NULL, MemorySegment.NULL, 0L);
            } catch (Throwable e) {
                throw new IllegalStateException("jemalloc's mallctl failed", e);
            }
        }
    }

    /**
     * Sets how long jemalloc keeps freed pages before returning them to the system ({@code dirty_decay_ms}) for every
     * arena and for arenas made later, where jemalloc serves this process; returns whether it did.
     */
    public static boolean setFreedPageDecay(long millis) {
        if (JEMALLOC_CTL == null) {
            return false;
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment count = a.allocate(ValueLayout.JAVA_INT);
            MemorySegment countSize = a.allocateFrom(ValueLayout.JAVA_LONG, 4);
            MemorySegment ms = a.allocateFrom(ValueLayout.JAVA_LONG, millis);
            MemorySegment none = MemorySegment.NULL;
            boolean ok = (int) JEMALLOC_CTL.invokeExact(a.allocateFrom("arenas.narenas"), count, countSize, none, 0L) == 0
                    && (int) JEMALLOC_CTL.invokeExact(a.allocateFrom("arenas.dirty_decay_ms"), none, none, ms, 8L) == 0;
            for (int i = 0; ok && i < count.get(ValueLayout.JAVA_INT, 0); i++) {
                // An arena index not in use yet answers EFAULT: nothing to set there.
                int ignored = (int) JEMALLOC_CTL.invokeExact(a.allocateFrom("arena." + i + ".dirty_decay_ms"), none,
                        none, ms, 8L);
            }
            return ok;
        } catch (Throwable e) {
            throw new IllegalStateException("jemalloc's mallctl failed", e);
        }
    }

    private static final MethodHandle MALLOC_TRIM = mallocTrim();
    private static final Optional<Path> JEMALLOC = mappedJemalloc();
    /** jemalloc's {@code mallctl} where jemalloc serves this process (launch.sh preloads it), else null. */
    private static final MethodHandle JEMALLOC_CTL = jemallocCtl();

    private static MethodHandle jemallocCtl() {
        // A preloaded library is not among the default lookup's libraries: look it up by the path it was mapped from.
        Linker linker = Linker.nativeLinker();
        try {
            return JEMALLOC.flatMap(path -> SymbolLookup.libraryLookup(path, Arena.global()).find("mallctl"))
                    .map(f -> linker.downcallHandle(f, FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                            ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG)))
                    .orElse(null);
        } catch (IllegalArgumentException e) { // the mapped file cannot be opened again
            return null;
        }
    }

    /**
     * The C allocator serving libtorch's tensors, for the run's log: {@code "jemalloc"} when it is loaded into this
     * process (launch.sh preloads it when installed), else {@code "glibc malloc"}. Read from /proc/self/maps; glibc
     * where that cannot be read.
     */
    public static String nativeAllocator() {
        return JEMALLOC.isPresent() ? "jemalloc" : "glibc malloc";
    }

    /** The file jemalloc was mapped from, where it is loaded (preloaded: it is there from the start), read once. */
    private static Optional<Path> mappedJemalloc() {
        try (Stream<String> maps = Files.lines(Path.of("/proc/self/maps"))) {
            return maps.filter(l -> l.contains("libjemalloc")).map(l -> Path.of(l.substring(l.indexOf('/'))))
                    .findFirst();
        } catch (IOException | UncheckedIOException | IllegalArgumentException e) {
            return Optional.empty();
        }
    }

    /** glibc's {@code M_MMAP_THRESHOLD} parameter of mallopt. */
    private static final int M_MMAP_THRESHOLD = -3;

    /**
     * Serves every C allocation of 1 MiB or more (tensors: activations, buffers, codes) by its own mapping, returned
     * to the system when freed, as glibc does up to its dynamic threshold of 32 MiB and no further. Without it, freed
     * activations of 1-32 MiB stay in malloc's arenas between long-lived tensors: a QLoRA step at 1.1B (sequence
     * 512, checkpointing) peaked at 2.90 GB RSS, with it 2.11 GB, at the same speed (bench/README, "QLoRA at scale").
     * A no-op without glibc's mallopt, or when MALLOC_MMAP_THRESHOLD_ is set (the user's choice wins).
     */
    private static void mapLargeAllocations() {
        if (System.getenv("MALLOC_MMAP_THRESHOLD_") != null) {
            return;
        }
        Linker linker = Linker.nativeLinker();
        linker.defaultLookup().find("mallopt").ifPresent(f -> {
            try {
                int ignored = (int) linker.downcallHandle(f, FunctionDescriptor.of(
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT)).invokeExact(M_MMAP_THRESHOLD, 1 << 20);
            } catch (Throwable e) {
                throw new IllegalStateException("mallopt failed", e);
            }
        });
    }

    private static MethodHandle mallocTrim() {
        Linker linker = Linker.nativeLinker();
        return linker.defaultLookup().find("malloc_trim")
                .map(f -> linker.downcallHandle(f, FunctionDescriptor.of(
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG)))
                .orElse(null);
    }

    private static Engine start() {
        mapLargeAllocations();
        String env = System.getenv("DJL_OFFLINE");
        if (env != null && !Boolean.parseBoolean(env)) {
            throw new EngineUnavailableException(
                    "DJL_OFFLINE=" + env + ": jtune never downloads at run time; set DJL_OFFLINE=true or unset it");
        }
        System.setProperty("ai.djl.offline", "true");
        try {
            Engine e = Engine.getEngine("PyTorch");
            if (e == null) {
                throw new EngineUnavailableException(missingNatives(null));
            }
            return e;
        } catch (EngineUnavailableException ex) {
            throw ex;
        } catch (RuntimeException | LinkageError ex) {
            throw new EngineUnavailableException(missingNatives(ex), ex);
        }
    }

    private static String missingNatives(Throwable cause) {
        return "cannot start libtorch (DJL PyTorch engine"
                + (cause == null ? "" : ": " + rootMessage(cause))
                + "). jtune expects ai.djl.pytorch:pytorch-native-cpu (or -cu128 with -Pcuda) and "
                + "ai.djl.pytorch:pytorch-jni on the classpath; build with ./mvnw package and run through ./launch.sh."
                + " An explicit PYTORCH_LIBRARY_PATH must point at a libtorch " + expectedVersion() + ".";
    }

    static String expectedVersion() {
        return "2.7.1";
    }

    private static String rootMessage(Throwable t) {
        Throwable r = t;
        while (r.getCause() != null && r.getCause() != r) {
            r = r.getCause();
        }
        String m = r.getMessage();
        return r.getClass().getSimpleName() + (m == null ? "" : ": " + m);
    }
}
