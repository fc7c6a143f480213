package dev.jtune.trainer.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Autograd;
import dev.jtune.trainer.dist.DistException;
import dev.jtune.trainer.dist.ProcessGroup;
import java.util.Collection;

/** What keeps the ranks' replicas of the trainable tensors in step: broadcast, gradient sums, a divergence check. */
public final class Replicas {
    private Replicas() {}

    /** Sums {@code values} over the ranks (fp64, exact for token counts). */
    public static double[] sum(ProcessGroup group, NDManager m, double... values) {
        if (group.worldSize() == 1) {
            return values.clone();
        }
        try (NDArray a = m.create(values)) {
            group.allReduceSum(a);
            return a.toDoubleArray();
        }
    }

    /** Overwrites every rank's parameters with rank 0's. */
    public static void broadcast(ProcessGroup group, Collection<NDArray> params, NDManager m) {
        try (NDArray flat = Flat.values(params, Flat.size(params), m)) {
            group.broadcast(flat, 0);
            Flat.writeValues(params, flat);
        }
    }

    /**
     * Replaces every gradient by its sum over the ranks (one all-reduce of the flattened gradients). bf16
     * gradients (bf16 full fine-tuning) are summed in fp32 and rounded once as they are written back: for two
     * ranks that is exactly the bf16 addition that accumulating both micro-batches on one rank makes.
     */
    public static void allReduceGradients(ProcessGroup group, Collection<NDArray> params, NDManager m) {
        try (NDArray flat = Flat.gradients(params, Flat.size(params), m)) {
            group.allReduceSum(flat);
            Flat.writeGradients(params, flat);
        }
    }

    /**
     * Gives every parameter a zero gradient (backward of {@code Σ sum(p · 0)}), so that gradients can be
     * overwritten in place even on a rank that had no micro-batch in a step.
     */
    public static void materializeGradients(Collection<NDArray> params, NDManager m) {
        if (params.isEmpty()) {
            return;
        }
        Autograd.withGrad(() -> {
            try (NDManager scratch = m.newSubManager()) {
                NDArray total = null;
                // A zero made by libtorch: DJL's mul(0f) would wrap 0 in a tensor over Java memory and close it at
                // once, while autograd keeps it for this backward (freed memory read whenever a GC runs in between).
                NDArray zero = scratch.zeros(new ai.djl.ndarray.types.Shape());
                for (NDArray p : params) {
                    // a bf16 parameter through the (differentiable) cast: DJL's scalar ops cannot make bf16
                    dev.jtune.model.engine.Dtype dtype = dev.jtune.model.engine.Kernels.get().dtypeOf(p);
                    NDArray x = dtype == null || dtype == dev.jtune.model.engine.Dtype.FP32 ? p
                            : dev.jtune.model.engine.Kernels.get().cast(p, dev.jtune.model.engine.Dtype.FP32);
                    NDArray z = x.mul(zero).sum();
                    total = total == null ? z : total.add(z);
                }
                total.attach(scratch);
                Autograd.backward(total);
            }
            return null;
        });
    }

    /**
     * Checks that every rank holds bit-identical parameters: each rank's 64-bit hash of the fp32 values is
     * all-gathered and compared.
     *
     * @throws DistException naming the step and the ranks' hashes when they differ
     */
    public static void checkIdentical(ProcessGroup group, Collection<NDArray> params, long step, NDManager m) {
        if (group.worldSize() == 1) {
            return;
        }
        long h = 0xcbf29ce484222325L;
        for (NDArray p : params) {
            for (float f : Tensors.floats(p)) {
                h = (h ^ Float.floatToRawIntBits(f)) * 0x100000001b3L;
            }
        }
        try (NDArray mine = m.create(new long[] {h}); NDArray all = group.allGather(mine)) {
            long[] hashes = all.toLongArray();
            for (long x : hashes) {
                if (x != hashes[0]) {
                    StringBuilder s = new StringBuilder();
                    for (int r = 0; r < hashes.length; r++) {
                        s.append(r == 0 ? "" : ", ").append("rank ").append(r).append(": ")
                                .append(Long.toHexString(hashes[r]));
                    }
                    throw new DistException("after step " + step + " the ranks' trainable parameters differ ("
                            + s + "); the replicas diverged");
                }
            }
        }
    }
}
