package dev.jtune.model.engine;

import static dev.jtune.model.engine.KernelTestSupport.assertShape;
import static dev.jtune.model.engine.KernelTestSupport.checkForwardAndGradients;
import static dev.jtune.model.engine.KernelTestSupport.normal;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.KernelTestSupport.Arg;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The CUDA variable-length attention path, as far as a CPU can check it: the {@code cu_seqlens} computation from
 * segment ids, the varlen layout with a per-sequence SDPA standing in for flash attention (values and gradients),
 * and that the flash call itself compiles and resolves (it fails on CPU tensors only for want of a CPU kernel).
 */
class KernelVarlenTest {
    private final Kernels k = Kernels.get();

    /** Boundaries of maximal equal-id runs per row, rows laid end to end; 0 first, B*T last. */
    static int[] cuSeqlensRef(long[] seg, int b, int t) {
        List<Integer> cuts = new ArrayList<>();
        for (int r = 0; r < b; r++) {
            for (int i = 0; i < t; i++) {
                if (i == 0 || seg[r * t + i] != seg[r * t + i - 1]) {
                    cuts.add(r * t + i);
                }
            }
        }
        cuts.add(b * t);
        return cuts.stream().mapToInt(Integer::intValue).toArray();
    }

    @Test
    void cuSeqlensMatchReference() {
        Random r = new Random(5);
        int[][] shapes = {{1, 1}, {1, 7}, {3, 1}, {2, 8}, {4, 13}};
        try (NDManager m = Torch.newManager()) {
            for (int[] bt : shapes) {
                int b = bt[0];
                int t = bt[1];
                // Packed-row ids as Batch builds them (non-decreasing runs) and, to show only changes matter,
                // ids that repeat across rows.
                long[] seg = new long[b * t];
                for (int row = 0; row < b; row++) {
                    long id = 0;
                    for (int i = 0; i < t; i++) {
                        if (i > 0 && r.nextInt(3) == 0) {
                            id++;
                        }
                        seg[row * t + i] = id;
                    }
                }
                NDArray cu = k.cuSeqlensFromSegments(m.create(seg, new Shape(b, t)));
                assertTrue(cu.getDataType() == DataType.INT32, "cu_seqlens must be int32 for flash: " + cu.getDataType());
                assertArrayEquals(cuSeqlensRef(seg, b, t), cu.toIntArray(), "B=" + b + " T=" + t);
            }
        }
    }

    @Test
    void varlenLayoutMatchesMaskReferenceWithGradients() {
        int b = 2;
        int h = 4;
        int kv = 2;
        int t = 8;
        int d = 4;
        double scale = 0.6;
        long[] seg = {0, 0, 0, 1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0, 1, 1};
        Random r = new Random(91);
        Arg[] a = {
            Arg.grad("q", normal(r, b * h * t * d, 1), b, h, t, d),
            Arg.grad("k", normal(r, b * kv * t * d, 1), b, kv, t, d),
            Arg.grad("v", normal(r, b * kv * t * d, 1), b, kv, t, d),
            Arg.ids("segment_ids", seg, b, t)};
        checkForwardAndGradients(in -> {
            NDArray out = k.attentionSegmentsVarlen(in[0], in[1], in[2], in[3], scale, false);
            assertShape(out, b, h, t, d);
            return out;
        }, in -> KernelAttentionTest.attentionRef(in[0], in[1], in[2], in[3], b, h, kv, t, d, scale),
                1e-5, 1e-3, 92, a);
    }

    @Test
    void cpuTensorsKeepTheMaskPath() {
        // attentionSegments on CPU must not take the varlen route: equal to the mask computed by hand is covered by
        // KernelAttentionTest; here, bit-equality with an explicit causal SDPA on a single segment shows the branch.
        try (NDManager m = Torch.newManager()) {
            Random r = new Random(3);
            NDArray q = m.create(normal(r, 2 * 2 * 5 * 8, 1), new Shape(1, 2, 5, 8)).toType(DataType.FLOAT16, false);
            NDArray kk = m.create(normal(r, 2 * 5 * 8, 1), new Shape(1, 1, 5, 8)).toType(DataType.FLOAT16, false);
            NDArray v = m.create(normal(r, 2 * 5 * 8, 1), new Shape(1, 1, 5, 8)).toType(DataType.FLOAT16, false);
            NDArray seg = m.create(new long[] {0, 0, 1, 1, 1}, new Shape(1, 5));
            // fp16 with head_dim 8 is flash-eligible except for the device: a run at all proves the CPU branch.
            NDArray out = k.attentionSegments(q, kk, v, seg, 0.35);
            assertShape(out, 1, 2, 5, 8);
        }
    }

    @Test
    void flashCallCompilesAndNeedsCuda() {
        // Kernels.get() compiled the library, flash call included (a misspelt op or schema fails there). Running
        // it on CPU tensors reaches the op and fails for lack of a CPU kernel: the call resolves.
        try (NDManager m = Torch.newManager()) {
            Random r = new Random(4);
            NDArray q = m.create(normal(r, 2 * 4 * 8, 1), new Shape(1, 2, 4, 8));
            NDArray seg = m.create(new long[] {0, 0, 1, 1}, new Shape(1, 4));
            RuntimeException e = assertThrows(RuntimeException.class,
                    () -> k.attentionSegmentsVarlen(q, q, q, seg, 0.35, true).toFloatArray());
            String msg = String.valueOf(e.getMessage());
            assertTrue(msg.contains("_flash_attention_forward"), msg);
        }
    }
}
