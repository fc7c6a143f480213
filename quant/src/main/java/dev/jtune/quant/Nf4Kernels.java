package dev.jtune.quant;

import ai.djl.ndarray.NDArray;
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

    /** {@code x Wᵀ} with W dequantized on the fly; joins x's manager. */
    NDArray linear(NDArray x, Nf4Linear.Weights w) {
        return LIBRARY.ops().call("linear", x, w.packed(), w.codes(), w.nestedAbsmax(), w.quantMap(), w.nestedMap(),
                w.offset(), w.blocksize(), w.nestedBlocksize(), w.shape(), w.dtype().torchCode());
    }
}
