package dev.jtune.model.engine;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link Torch#setGraphOptimization} reaches every thread that runs kernels. libtorch keeps the switch in a
 * {@code thread_local}, so without jtune applying it per call a thread that never set it (a rank of a threaded test,
 * a helper, a virtual thread) runs the profiling executor, whose optimized graph is then shared with every thread.
 * The native switch is read here straight from libtorch ({@code torch::jit::getGraphExecutorOptimize()}, exported by
 * libtorch_cpu), on the thread in question.
 */
class GraphOptimizationTest {
    private boolean before;

    @BeforeEach
    void remember() {
        Torch.engine();
        before = Torch.graphOptimization();
    }

    @AfterEach
    void restore() {
        Torch.setGraphOptimization(before);
    }

    @Test
    void aFreshThreadRunsKernelsWithTheProcessWideChoice() throws Exception {
        Torch.setGraphOptimization(false);
        boolean[] seen = onNewThread(false, true);
        // libtorch's own default on a new thread is on: the per-thread switch alone would not reach it.
        assertTrue(seen[0], "a new thread starts with libtorch's default (on)");
        assertFalse(seen[1], "after a kernel call the thread runs with the process-wide choice (off)");

        Torch.setGraphOptimization(true);
        assertTrue(onNewThread(false, false)[1], "and back on");
    }

    @Test
    void aVirtualThreadRunsKernelsWithTheProcessWideChoice() throws Exception {
        Torch.setGraphOptimization(false);
        assertFalse(onNewThread(true, false)[1]);
    }

    @Test
    void aLongLivedThreadFollowsALaterSwitchMadeOnAnotherThread() throws Exception {
        // A rank that ran kernels (loading) while the optimizer was on; then the process switches it off elsewhere.
        Torch.setGraphOptimization(true);
        java.util.concurrent.CountDownLatch ranOnce = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch switched = new java.util.concurrent.CountDownLatch(1);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        boolean[] seen = new boolean[2];
        Thread t = Thread.ofPlatform().start(() -> {
            try (NDManager m = Torch.newManager()) {
                Kernels.get().cast(m.zeros(new ai.djl.ndarray.types.Shape(2)), Dtype.FP32).close();
                seen[0] = nativeSwitch();
                ranOnce.countDown();
                switched.await();
                Kernels.get().cast(m.zeros(new ai.djl.ndarray.types.Shape(2)), Dtype.FP32).close();
                seen[1] = nativeSwitch();
            } catch (Throwable e) {
                failure.set(e);
            }
        });
        ranOnce.await();
        Torch.setGraphOptimization(false);
        switched.countDown();
        t.join();
        if (failure.get() != null) throw new AssertionError(failure.get());
        assertTrue(seen[0], "on while loading");
        assertFalse(seen[1], "off at its next kernel");
    }

    /** Runs one kernel on a new (virtual) thread; returns its native switch before (if asked) and after. */
    private static boolean[] onNewThread(boolean virtual, boolean readBefore) throws Exception {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        boolean[] seen = new boolean[2];
        Runnable body = () -> {
            try (NDManager m = Torch.newManager()) {
                if (readBefore) seen[0] = nativeSwitch();
                Kernels.get().cast(m.zeros(new ai.djl.ndarray.types.Shape(2)), Dtype.FP32).close();
                seen[1] = nativeSwitch();
            } catch (Throwable e) {
                failure.set(e);
            }
        };
        Thread t = virtual ? Thread.ofVirtual().start(body) : Thread.ofPlatform().start(body);
        t.join();
        if (failure.get() != null) throw new AssertionError(failure.get());
        return seen;
    }

    private static final MethodHandle GET = getter();

    /** The calling thread's libtorch switch. */
    private static boolean nativeSwitch() {
        try {
            return (boolean) GET.invokeExact();
        } catch (Throwable e) {
            throw new AssertionError(e);
        }
    }

    private static MethodHandle getter() {
        Torch.engine(); // loads libtorch_cpu
        Path lib;
        try (var lines = Files.lines(Path.of("/proc/self/maps"))) {
            lib = lines.map(l -> l.substring(l.lastIndexOf(' ') + 1)).filter(p -> p.endsWith("/libtorch_cpu.so"))
                    .findFirst().map(Path::of).orElseThrow(() -> new AssertionError("libtorch_cpu.so is not mapped"));
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
        SymbolLookup l = SymbolLookup.libraryLookup(lib, Arena.global());
        return Linker.nativeLinker().downcallHandle(l.find("_ZN5torch3jit24getGraphExecutorOptimizeEv")
                .orElseThrow(() -> new AssertionError("torch::jit::getGraphExecutorOptimize not exported by " + lib)),
                FunctionDescriptor.of(ValueLayout.JAVA_BOOLEAN));
    }
}
