package dev.jtune.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.KernelLibrary;

/** The Java face of {@code int8.torchscript.py}: the LLM.int8() product and its dequantized weight in libtorch. */
final class Int8Kernels {
    private static final KernelLibrary LIBRARY = new KernelLibrary(Int8Kernels.class, "Int8Ops", "int8.torchscript.py");
    private static final Int8Kernels INSTANCE = new Int8Kernels();

    private volatile Boolean intMm; // whether this libtorch runs torch._int_mm on CPU: asked once

    private Int8Kernels() {}

    static Int8Kernels get() {
        return INSTANCE;
    }

    /**
     * Whether the int32 products run as {@code torch._int_mm} (int8 GEMM) rather than in float64; both are exact.
     * {@code -Djtune.int8.intMm=false} forces float64 (tests compare the two).
     */
    boolean intMm() {
        Boolean b = intMm;
        if (b == null) {
            b = !"false".equals(System.getProperty("jtune.int8.intMm")) && probeIntMm();
            intMm = b;
        }
        return b;
    }

    private static boolean probeIntMm() {
        try (NDManager m = dev.jtune.model.engine.Torch.newManager()) {
            // Sizes that any _int_mm accepts (multiples of 8, more than 16 rows): 32 x 32 ones -> 32 · 32 · 32.
            NDArray a = m.ones(new Shape(32, 32), DataType.INT8);
            return LIBRARY.ops().callLong("int_mm_works", a, a) == 32L * 32 * 32;
        } catch (RuntimeException e) {
            return false;
        }
    }

    /** Whether a forward with {@code x} records autograd (grad mode on and x requires grad). */
    boolean needsGrad(NDArray x) {
        return LIBRARY.ops().callLong("needs_grad", x) != 0;
    }

    /** The int8 product without a gradient; joins x's manager. */
    NDArray linear(NDArray x, Int8Linear.Weights w, boolean intMm) {
        return LIBRARY.ops().call("linear", x, w.codes(), w.rowAbsmax(), w.threshold(), intMm);
    }

    /** The int8 product with the input gradient of {@code buffer} (filled first through {@code writer} if asked). */
    NDArray linearGrad(NDArray x, NDArray buffer, NDArray writer, Int8Linear.Weights w, boolean intMm, boolean fill) {
        return LIBRARY.ops().call("linear_grad", x, buffer, writer, w.codes(), w.rowAbsmax(), w.threshold(), intMm,
                fill);
    }

    /** The dequantized weight [out, in] in {@code dtype}; joins the codes' manager. */
    NDArray weight(Int8Linear.Weights w, dev.jtune.model.engine.Dtype dtype) {
        return LIBRARY.ops().call("weight", w.codes(), w.rowAbsmax(), dtype.torchCode());
    }

    /** Writes the dequantized weight into {@code writer} (in its dtype), in place. */
    void dequantizeInto(NDArray writer, Int8Linear.Weights w) {
        Autograd.noGrad(() -> LIBRARY.ops().callLong("dequantize_into", writer, w.codes(), w.rowAbsmax()));
    }
}
