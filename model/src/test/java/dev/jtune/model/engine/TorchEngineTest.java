package dev.jtune.model.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Engine start-up: offline natives from the classpath, and clear errors instead of JVM aborts. */
class TorchEngineTest {

    /** Run in a child JVM: starts the engine and prints what happened. */
    public static final class Probe {
        public static void main(String[] args) {
            try {
                Torch.engine();
                System.out.println("STARTED");
            } catch (EngineUnavailableException e) {
                System.out.println("CLEAR ERROR: " + e.getMessage());
            }
        }
    }

    @Test
    void startsOfflineFromClasspathNatives() {
        assertEquals("PyTorch", Torch.engine().getEngineName());
        assertEquals("true", System.getProperty("ai.djl.offline"));
    }

    @Test
    void missingNativesGiveAClearErrorNotAnAbort(@TempDir Path emptyCache) throws Exception {
        String classpath = Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                .filter(p -> !p.contains("pytorch-native"))
                .collect(Collectors.joining(File.pathSeparator));
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "-cp", classpath, Probe.class.getName()).redirectErrorStream(true);
        // An empty DJL cache: without the native jar nothing may be found, and nothing may be downloaded.
        pb.environment().put("DJL_CACHE_DIR", emptyCache.toString());
        pb.environment().put("ENGINE_CACHE_DIR", emptyCache.toString());
        pb.environment().put("DJL_OFFLINE", "true");
        Process p = pb.start();
        // Its output to the end (the child's exit), then its code: no wall-clock limit on a busy machine, and no
        // pipe that fills up while nobody reads it. The wait is only a hang guard.
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(10, TimeUnit.MINUTES), "child JVM finished (hang guard): " + out);
        assertEquals(0, p.exitValue(), "the JVM must not abort: " + out);
        assertTrue(out.contains("CLEAR ERROR: cannot start libtorch") && out.contains("pytorch-native-cpu"), out);
        try (var files = Files.walk(emptyCache)) {
            List<Path> big = files.filter(Files::isRegularFile).filter(f -> f.toFile().length() > 1_000_000).toList();
            assertTrue(big.isEmpty(), "nothing downloaded: " + big);
        }
    }

    @Test
    void unsupportedDtypeNamesAreRejectedClearly() {
        var e = assertThrows(IllegalArgumentException.class, () -> Dtype.parse("int4"));
        assertTrue(e.getMessage().contains("int4") && e.getMessage().contains("bf16"), e.getMessage());
    }

    @Test
    void kernelGivenAnIntegerTensorFailsWithAnExceptionNotAnAbort() {
        try (NDManager m = Torch.newManager()) {
            NDArray ints = m.create(new long[] {1, 2, 3, 4}).reshape(2, 2);
            var e = assertThrows(KernelException.class, () -> Kernels.get().swiglu(ints, ints));
            assertTrue(e.getMessage().contains("swiglu"), e.getMessage());
        }
    }
}
