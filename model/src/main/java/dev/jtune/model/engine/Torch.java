package dev.jtune.model.engine;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;

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

    /**
     * Runs {@code body} with libtorch's grad mode (thread-local) off, restoring it afterwards: in-place updates of
     * leaves that require grad, and forward passes whose graph nobody will walk back.
     */
    public static <T> T noGrad(java.util.function.Supplier<T> body) {
        boolean was = ai.djl.pytorch.jni.JniUtils.isGradMode();
        ai.djl.pytorch.jni.JniUtils.setGradMode(false);
        try {
            return body.get();
        } finally {
            ai.djl.pytorch.jni.JniUtils.setGradMode(was);
        }
    }

    /** A new root NDManager on the engine's default device. The caller closes it. */
    public static NDManager newManager() {
        return engine().newBaseManager();
    }

    private static Engine start() {
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
