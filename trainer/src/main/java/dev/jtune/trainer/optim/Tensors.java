package dev.jtune.trainer.optim;

import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;

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

    /**
     * Zeros of {@code like}'s shape and dtype in {@code manager} ({@code torch.zeros_like}: torch.optim keeps
     * a bf16 parameter's moments in bf16). bf16 is made by a cast, which DJL cannot do itself.
     */
    public static NDArray zerosLike(NDArray like, NDManager manager) {
        NDArray z = manager.zeros(like.getShape());
        Dtype dtype = Kernels.get().dtypeOf(like);
        if (dtype == null || dtype == Dtype.FP32) {
            return z;
        }
        NDArray cast = Kernels.get().cast(z, dtype);
        cast.attach(manager);
        z.close();
        return cast;
    }

    /** The values of {@code x} (fp32, fp16 or bf16) as fp32, row-major; widening is exact. */
    public static float[] floats(NDArray x) {
        Dtype dtype = Kernels.get().dtypeOf(x);
        if (dtype == null || dtype == Dtype.FP32) {
            return x.toFloatArray();
        }
        try (NDManager scratch = x.getManager().newSubManager()) {
            NDArray wide = Kernels.get().cast(x, Dtype.FP32);
            wide.attach(scratch);
            return wide.toFloatArray();
        }
    }
}
