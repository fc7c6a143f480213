package dev.jtune.quant;

import ai.djl.ndarray.NDArray;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.KernelLibrary;

/** The Java face of {@code nf4.torchscript.py}: NF4 dequantization and the NF4 linear in libtorch. */
final class Nf4Kernels {
    private static final KernelLibrary LIBRARY = new KernelLibrary(Nf4Kernels.class, "Nf4Ops", "nf4.torchscript.py");
    private static final Nf4Kernels INSTANCE = new Nf4Kernels();

    private Nf4Kernels() {}

    static Nf4Kernels get() {
        return INSTANCE;
    }

    /** Dense weight in the stored dtype; joins {@code w.packed}'s manager. */
    NDArray weight(Nf4Linear.Weights w) {
        return LIBRARY.ops().call("weight", w.packed(), w.codes(), w.nestedAbsmax(), w.quantMap(), w.nestedMap(), w.offset(),
                w.blocksize(), w.nestedBlocksize(), w.shape(), w.dtype().torchCode());
    }

    /** An uninitialised buffer of {@code shape} in x's dtype; joins x's manager. */
    NDArray buffer(NDArray x, long[] shape) {
        return LIBRARY.ops().call("buffer", x, shape);
    }

    /** {@code buffer.data}: the buffer's memory under a version counter of its own (see the kernel). */
    NDArray writer(NDArray buffer) {
        return LIBRARY.ops().call("writer", buffer);
    }

    /** Dequantizes into {@code writer} (cast to its dtype), in place. */
    void dequantizeInto(NDArray writer, Nf4Linear.Weights w) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("dequantize_into", writer, w.packed(), w.codes(), w.nestedAbsmax(),
                w.quantMap(), w.nestedMap(), w.offset(), w.blocksize(), w.nestedBlocksize(), w.shape(),
                w.dtype().torchCode()));
    }

    /** {@code x Wᵀ} with W dequantized into the shared {@code buffer} (through {@code writer}); joins x's manager. */
    NDArray linearShared(NDArray x, NDArray buffer, NDArray writer, Nf4Linear.Weights w) {
        return LIBRARY.ops().call("linear_shared", x, buffer, writer, w.packed(), w.codes(), w.nestedAbsmax(),
                w.quantMap(), w.nestedMap(), w.offset(), w.blocksize(), w.nestedBlocksize(), w.shape(),
                w.dtype().torchCode());
    }

    /** {@code x Wᵀ} with W dequantized on the fly; joins x's manager. */
    NDArray linear(NDArray x, Nf4Linear.Weights w) {
        return LIBRARY.ops().call("linear", x, w.packed(), w.codes(), w.nestedAbsmax(), w.quantMap(), w.nestedMap(),
                w.offset(), w.blocksize(), w.nestedBlocksize(), w.shape(), w.dtype().torchCode());
    }
}
