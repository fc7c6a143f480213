package dev.jtune.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.ScriptModule;
import dev.jtune.model.engine.Torch;

/** The typed face of {@code lora.torchscript.py}; compiled once per process, differentiable. */
final class LoraKernels {
    private static final String RESOURCE = "lora.torchscript.py";
    private static volatile ScriptModule ops;

    private LoraKernels() {}

    private static ScriptModule ops() {
        ScriptModule m = ops;
        if (m == null) {
            synchronized (LoraKernels.class) {
                m = ops;
                if (m == null) {
                    // Lives as long as the process, like Kernels.get(): its manager is never closed.
                    NDManager manager = Torch.newManager();
                    m = ScriptModule.compile(manager, "LoraOps", Kernels.source(LoraKernels.class, RESOURCE), RESOURCE);
                    ops = m;
                }
            }
        }
        return m;
    }

    /** {@code (baseOut + linear(linear(dropout(x as a's dtype), a), b) * scaling)} in baseOut's dtype. */
    static NDArray loraForward(NDArray x, NDArray baseOut, NDArray a, NDArray b, double p, boolean train,
            double scaling) {
        return ops().call("lora_forward", x, baseOut, a, b, p, train, scaling);
    }

    /** {@code linear(x, weight)} computed in weight's dtype, returned in x's dtype. */
    static NDArray linearIn(NDArray x, NDArray weight) {
        return ops().call("linear_in", x, weight);
    }
}
