package dev.jtune.model.engine;

/**
 * Whether jtune's Java hot loops (NF4 quantization and dequantization, LoRA dropout masks) may use the JDK's vector
 * API: when the {@code jdk.incubator.vector} module is in the boot layer ({@code launch.sh}, the benches and the tests
 * add it) and {@code -Djtune.vector=false} is not set. Without it the scalar forms run, with the same bits; a class
 * that uses the API is only loaded after this says yes.
 */
public final class VectorApi {
    /** Read once, at class initialisation. */
    public static final boolean ENABLED = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            && !"false".equals(System.getProperty("jtune.vector"));

    private VectorApi() {}
}
