package dev.jtune.trainer.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

/** In-place tensor helpers shared by the optimizer and checkpoint restore. */
public final class Tensors {
    private Tensors() {}

    /**
     * Copies {@code src}'s values into {@code target} in place, without autograd (libtorch's {@code copy_}): the
     * tensor keeps its identity and its native storage. (DJL's {@code set(Buffer)} instead points the tensor at
     * new memory, which views of the old storage do not see.)
     */
    public static void copyInto(NDArray target, NDArray src) {
        OptimKernels.get().copyInto(target, src);
    }

    /**
     * Overwrites {@code target}'s values with {@code values} (row-major, fp32) in place, without autograd;
     * the tensor keeps its identity, so models holding it see the new values.
     *
     * @throws IllegalArgumentException if the sizes differ
     */
    public static void overwrite(NDArray target, float[] values, String what) {
        if (target.size() != values.length) {
            throw new IllegalArgumentException(what + ": expected " + target.size() + " values for shape "
                    + target.getShape() + ", got " + values.length);
        }
        try (NDManager scratch = target.getManager().newSubManager()) {
            NDArray src = scratch.create(values, target.getShape());
            OptimKernels.get().copyInto(target, src);
        }
    }

    /** fp32 zeros of {@code shape} in {@code manager}. */
    static NDArray zeros(NDManager manager, Shape shape) {
        return manager.zeros(shape);
    }
}
