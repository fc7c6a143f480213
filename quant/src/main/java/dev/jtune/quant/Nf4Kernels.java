package dev.jtune.quant;

import ai.djl.ndarray.NDArray;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.ScriptModule;
import dev.jtune.model.engine.Torch;

/** The Java face of {@code nf4.torchscript.py}: NF4 dequantization and the NF4 linear in libtorch. */
final class Nf4Kernels {
    private static final String RESOURCE = "nf4.torchscript.py";
    private static volatile Nf4Kernels instance;

    private final ScriptModule ops;

    private Nf4Kernels(ScriptModule ops) {
        this.ops = ops;
    }

    static Nf4Kernels get() {
        Nf4Kernels k = instance;
        if (k == null) {
            synchronized (Nf4Kernels.class) {
                k = instance;
                if (k == null) {
                    // Lives as long as the process, like the model module's kernel library.
                    k = new Nf4Kernels(ScriptModule.compile(Torch.newManager(), "Nf4Ops",
                            Kernels.source(Nf4Kernels.class, RESOURCE), RESOURCE));
                    instance = k;
                }
            }
        }
        return k;
    }

    /** Dense weight in the stored dtype; joins {@code w.packed}'s manager. */
    NDArray weight(Nf4Linear.Weights w) {
        return ops.call("weight", w.packed(), w.codes(), w.nestedAbsmax(), w.quantMap(), w.nestedMap(), w.offset(),
                w.blocksize(), w.nestedBlocksize(), w.shape(), w.dtype().torchCode());
    }

    /** {@code x Wᵀ} with W dequantized on the fly; joins x's manager. */
    NDArray linear(NDArray x, Nf4Linear.Weights w) {
        return ops.call("linear", x, w.packed(), w.codes(), w.nestedAbsmax(), w.quantMap(), w.nestedMap(),
                w.offset(), w.blocksize(), w.nestedBlocksize(), w.shape(), w.dtype().torchCode());
    }
}
