package dev.jtune.model.engine;

import static dev.jtune.model.engine.KernelTestSupport.normal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The CUDA attention paths against the CPU mask path: flash attention for causal rows and its variable-length form
 * for packed rows, outputs and gradients, in bf16 and fp16 (flash) and fp32 (CUDA mask path). Skipped unless DJL
 * sees a GPU, so CI (CPU only) skips it; {@code tools/gpu/check.sh} runs it with the cu128 libtorch.
 *
 * <p>Both sides take the same inputs: fp32 leaves rounded to the test dtype by {@link Kernels#cast} on the GPU, the
 * fp32 CPU reference on exactly those rounded values; gradients arrive at the fp32 leaves through the cast.
 */
class CudaAttentionCheckTest {
    private static final long[] SEG = {0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, // row 0: four samples
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1}; // row 1: one sample, then padding
    private static final int B = 2;
    private static final int H = 8;
    private static final int KV = 2;
    private static final int T = 16;
    private static final int D = 64;

    private record Result(float[] out, float[] gq, float[] gk, float[] gv) {}

    @Test
    void flashPathsMatchCpuMaskPath() {
        assumeTrue(Torch.engine().getGpuCount() > 0, "no CUDA device: run tools/gpu/check.sh on a GPU machine");
        Random r = new Random(11);
        float[] q = normal(r, B * H * T * D, 1);
        float[] k = normal(r, B * KV * T * D, 1);
        float[] v = normal(r, B * KV * T * D, 1);
        float[] proj = normal(r, B * H * T * D, 1);
        for (Dtype dt : new Dtype[] {Dtype.BF16, Dtype.FP16, Dtype.FP32}) {
            for (boolean packed : new boolean[] {false, true}) {
                Result gpu = run(Device.gpu(), dt, packed, q, k, v, proj);
                // The reference: the same dtype-rounded inputs, fp32 attention with an explicit mask on the CPU.
                Result cpu = run(Device.cpu(), dt, packed, q, k, v, proj);
                double tol = switch (dt) {
                    case BF16 -> 2e-2;
                    case FP16 -> 1e-2;
                    case FP32 -> 1e-4;
                };
                String what = dt + (packed ? " packed" : " causal");
                check(what + " output", cpu.out(), gpu.out(), tol);
                check(what + " dq", cpu.gq(), gpu.gq(), tol);
                check(what + " dk", cpu.gk(), gpu.gk(), tol);
                check(what + " dv", cpu.gv(), gpu.gv(), tol);
            }
        }
    }

    /** On the GPU: in {@code dt} (flash for bf16/fp16). On the CPU: rounded to {@code dt}, computed in fp32. */
    private static Result run(Device device, Dtype dt, boolean packed, float[] q, float[] k, float[] v, float[] proj) {
        Kernels kn = Kernels.get();
        boolean gpu = device.isGpu();
        try (NDManager m = Torch.engine().newBaseManager(device)) {
            NDArray lq = m.create(q, new Shape(B, H, T, D));
            NDArray lk = m.create(k, new Shape(B, KV, T, D));
            NDArray lv = m.create(v, new Shape(B, KV, T, D));
            for (NDArray a : new NDArray[] {lq, lk, lv}) {
                a.setRequiresGradient(true);
            }
            Dtype compute = gpu ? dt : Dtype.FP32;
            try (GradientCollector gc = Torch.engine().newGradientCollector()) {
                NDArray[] in = new NDArray[3];
                NDArray[] leaves = {lq, lk, lv};
                for (int i = 0; i < 3; i++) {
                    in[i] = dt == Dtype.FP32 ? leaves[i] : kn.cast(kn.cast(leaves[i], dt), compute);
                }
                double scale = 1 / Math.sqrt(D);
                NDArray out = packed
                        ? kn.attentionSegments(in[0], in[1], in[2], m.create(SEG, new Shape(B, T)), scale)
                        : kn.attentionCausal(in[0], in[1], in[2], scale);
                assertEquals(gpu, out.getDevice().isGpu());
                NDArray out32 = kn.cast(out, Dtype.FP32);
                NDArray loss = out32.mul(m.create(proj, new Shape(B, H, T, D))).sum();
                gc.backward(loss);
                return new Result(out32.toFloatArray(), lq.getGradient().toFloatArray(),
                        lk.getGradient().toFloatArray(), lv.getGradient().toFloatArray());
            }
        }
    }

    /** Max abs difference relative to the reference's max magnitude. */
    private static void check(String what, float[] expected, float[] actual, double tol) {
        assertEquals(expected.length, actual.length, what);
        double max = 0;
        double diff = 0;
        for (int i = 0; i < expected.length; i++) {
            assertTrue(Float.isFinite(actual[i]), what + ": non-finite at " + i);
            max = Math.max(max, Math.abs(expected[i]));
            diff = Math.max(diff, Math.abs(expected[i] - actual[i]));
        }
        assertTrue(diff <= tol * Math.max(max, 1e-6), what + ": max |diff| " + diff + " vs max |ref| " + max);
    }
}
