package dev.jtune.trainer.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Torch;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The test backend against plain Java arithmetic: every collective, on 3 ranks. */
class ThreadProcessGroupTest {
    private static float[] values(int rank, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = rank * 10 + i * 0.5f;
        return v;
    }

    @Test
    void collectivesMatchJavaArithmetic() throws Exception {
        int w = 3;
        int n = 6;
        List<float[][]> out = ThreadProcessGroup.run(w, g -> {
            try (NDManager m = Torch.newManager()) {
                NDArray x = m.create(values(g.rank(), n));
                g.allReduceSum(x);
                NDArray gathered = g.allGather(m.create(values(g.rank(), 2)));
                NDArray scattered = g.reduceScatterSum(m.create(values(g.rank(), n)));
                NDArray b = m.create(values(g.rank(), n));
                g.broadcast(b, 1);
                g.barrier();
                return new float[][] {x.toFloatArray(), gathered.toFloatArray(), scattered.toFloatArray(),
                        b.toFloatArray()};
            }
        });
        float[] sum = new float[n];
        for (int r = 0; r < w; r++) {
            float[] v = values(r, n);
            for (int i = 0; i < n; i++) sum[i] += v[i];
        }
        float[] gathered = new float[2 * w];
        for (int r = 0; r < w; r++) System.arraycopy(values(r, 2), 0, gathered, 2 * r, 2);
        for (int r = 0; r < w; r++) {
            float[][] o = out.get(r);
            assertArrayEquals(sum, o[0], "all-reduce on rank " + r);
            assertArrayEquals(gathered, o[1], "all-gather on rank " + r);
            assertArrayEquals(java.util.Arrays.copyOfRange(sum, r * 2, r * 2 + 2), o[2], "reduce-scatter on rank " + r);
            assertArrayEquals(values(1, n), o[3], "broadcast on rank " + r);
        }
    }

    @Test
    void aFailingRankFailsTheRunInsteadOfHanging() {
        Exception e = assertThrows(IllegalStateException.class, () -> ThreadProcessGroup.run(2, g -> {
            if (g.rank() == 1) throw new IllegalStateException("boom");
            g.barrier();
            return null;
        }));
        assertTrue(e.getMessage().contains("boom"));
    }
}
