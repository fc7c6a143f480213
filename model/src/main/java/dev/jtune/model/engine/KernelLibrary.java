package dev.jtune.model.engine;

/**
 * A TorchScript kernel source that ships as a resource beside its Java face, compiled by libtorch on first use
 * and kept for the life of the process (its manager is never closed). Thread-safe; each module's kernel class
 * holds one in a static field:
 *
 * <pre>{@code
 * private static final KernelLibrary LIBRARY = new KernelLibrary(Nf4Kernels.class, "Nf4Ops", "nf4.torchscript.py");
 * ... LIBRARY.ops().call("linear", x, ...)
 * }</pre>
 */
public final class KernelLibrary {
    private final Class<?> owner;
    private final String className;
    private final String resource;
    private volatile ScriptModule ops;

    /**
     * @param owner the class the resource lies beside
     * @param className the TorchScript class the source defines (e.g. {@code Ops})
     * @param resource the source's file name
     */
    public KernelLibrary(Class<?> owner, String className, String resource) {
        this.owner = owner;
        this.className = className;
        this.resource = resource;
    }

    /** The compiled module, compiling it on the first call. */
    public ScriptModule ops() {
        ScriptModule m = ops;
        if (m == null) {
            synchronized (this) {
                m = ops;
                if (m == null) {
                    m = ScriptModule.compile(Torch.newManager(), className, Kernels.source(owner, resource), resource);
                    ops = m;
                }
            }
        }
        return m;
    }
}
