package dev.jtune.trainer.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Autograd;
import java.util.Collection;
import java.util.List;

/**
 * Trainable tensors as one flat fp32 vector (their values or gradients concatenated in order, row-major), the
 * unit that collectives move: one all-reduce or reduce-scatter per step rather than one per tensor.
 */
public final class Flat {
    private Flat() {}

    /** Total elements of {@code params}. */
    public static long size(Collection<NDArray> params) {
        return params.stream().mapToLong(p -> p.getShape().size()).sum();
    }

    /**
     * The values, zero-padded to {@code length} elements: a new fp32 array in {@code m}, outside autograd (bf16
     * values widened exactly).
     */
    public static NDArray values(Collection<NDArray> params, long length, NDManager m) {
        // bf16 values are widened (exactly) by the cast; DJL's own ops cannot handle a bf16 array.
        return Autograd.noGrad(() -> concat(params.stream().map(p -> wide(p) ? p.stopGradient()
                : dev.jtune.model.engine.Kernels.get().cast(p, dev.jtune.model.engine.Dtype.FP32)).toList(), length, m, true));
    }

    /**
     * The gradients (zeros for a parameter without one), zero-padded to {@code length}: a new fp32 array in
     * {@code m} (bf16 gradients widened exactly; {@link #writeGradients} rounds them back).
     */
    public static NDArray gradients(Collection<NDArray> params, long length, NDManager m) {
        List<NDArray> grads = Gradients.open(params);
        try {
            List<NDArray> parts = new java.util.ArrayList<>();
            int i = 0;
            for (NDArray p : params) {
                NDArray g = grads.get(i++);
                parts.add(g != null ? g : m.zeros(p.getShape()));
            }
            return Autograd.noGrad(() -> concat(parts, length, m, false));
        } finally {
            Gradients.close(grads);
        }
    }

    /** {@code parts} flattened and concatenated, zero-padded to {@code length}: a new array in {@code m}. */
    public static NDArray of(List<NDArray> parts, long length, NDManager m) {
        return Autograd.noGrad(() -> concat(parts, length, m, false));
    }

    /**
     * {@code parts} flattened, part {@code i} placed at element {@code at.get(i)} (increasing, not overlapping),
     * zeros elsewhere, {@code length} elements in all: a new fp32 array in {@code m}.
     */
    public static NDArray placed(List<NDArray> parts, List<Long> at, long length, NDManager m) {
        return Autograd.noGrad(() -> {
            try (NDManager scratch = m.newSubManager()) {
                List<NDArray> list = new java.util.ArrayList<>();
                long cursor = 0;
                for (int i = 0; i < parts.size(); i++) {
                    long gap = at.get(i) - cursor;
                    if (gap < 0) {
                        throw new IllegalArgumentException("part " + i + " at " + at.get(i) + " overlaps the one before");
                    }
                    if (gap > 0) {
                        list.add(scratch.zeros(new Shape(gap)));
                    }
                    list.add(parts.get(i));
                    cursor = at.get(i) + parts.get(i).getShape().size();
                }
                return concat(list, length, m, false);
            }
        });
    }

    private static NDArray concat(List<NDArray> parts, long length, NDManager m, boolean closeParts) {
        try (NDManager scratch = m.newSubManager()) {
            NDList flat = new NDList(parts.size() + 1);
            long n = 0;
            for (NDArray a : parts) {
                NDArray part = a;
                if (!wide(a)) { // a bf16 gradient: widened exactly, summed in fp32 and rounded once when written back
                    part = dev.jtune.model.engine.Kernels.get().cast(a, dev.jtune.model.engine.Dtype.FP32);
                    part.attach(scratch);
                }
                NDArray r = part.reshape(a.getShape().size());
                r.attach(scratch);
                flat.add(r);
                n += a.getShape().size();
                if (closeParts) a.close();
            }
            if (length > n) {
                flat.add(scratch.zeros(new Shape(length - n)));
            }
            NDArray out = flat.size() == 1 ? flat.get(0).duplicate() : NDArrays.concat(flat);
            out.attach(m);
            return out;
        }
    }

    /** Whether {@code x} is fp32 (or not a float tensor): what DJL's own array ops handle. */
    private static boolean wide(NDArray x) {
        dev.jtune.model.engine.Dtype dtype = dev.jtune.model.engine.Kernels.get().dtypeOf(x);
        return dtype == null || dtype == dev.jtune.model.engine.Dtype.FP32;
    }

    /** Overwrites the parameters' values, in place, from {@code flat} (at least {@link #size} elements). */
    public static void writeValues(Collection<NDArray> params, NDArray flat) {
        long at = 0;
        for (NDArray p : params) {
            long n = p.getShape().size();
            try (NDArray part = flat.get(new NDIndex(at + ":" + (at + n))); NDArray shaped = part.reshape(p.getShape())) {
                OptimKernels.get().copyInto(p, shaped);
            }
            at += n;
        }
    }

    /** Overwrites the parameters' values, in place, from {@code flat}, parameter {@code i} at {@code starts.get(i)}. */
    public static void writeValues(Collection<NDArray> params, NDArray flat, List<Long> starts) {
        int i = 0;
        for (NDArray p : params) {
            long at = starts.get(i++);
            long n = p.getShape().size();
            try (NDArray part = flat.get(new NDIndex(at + ":" + (at + n))); NDArray shaped = part.reshape(p.getShape())) {
                OptimKernels.get().copyInto(p, shaped);
            }
        }
    }

    /** Overwrites the parameters' gradients, in place, from {@code flat}; every parameter must have one. */
    public static void writeGradients(Collection<NDArray> params, NDArray flat) {
        List<NDArray> grads = Gradients.open(params);
        try {
            long at = 0;
            for (NDArray g : grads) {
                if (g == null) {
                    throw new IllegalStateException("a trainable parameter has no gradient to overwrite");
                }
                long n = g.getShape().size();
                try (NDArray part = flat.get(new NDIndex(at + ":" + (at + n))); NDArray shaped = part.reshape(g.getShape())) {
                    OptimKernels.get().copyInto(g, shaped);
                }
                at += n;
            }
        } finally {
            Gradients.close(grads);
        }
    }
}
