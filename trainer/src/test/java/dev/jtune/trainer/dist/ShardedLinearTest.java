package dev.jtune.trainer.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.safetensors.HalfFloats;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A dense projection sharded over W thread ranks: every rank's forward of the identity is Wᵀ exactly (a matrix
 * product with the identity adds only zeros), when the element count does not divide by W (the last chunk padded)
 * and in bf16; each rank holds ⌈numel / W⌉ elements; the gathered weight is counted while alive and freed on release.
 */
class ShardedLinearTest {
    /** 7 x 5 = 35 elements: a padded last chunk for every W below. */
    private static final int OUT = 7;
    private static final int IN = 5;

    private record RankOut(float[] wt, long shardBytes, long totalBytes, long gatheredWhileUsed) {}

    private static float[] weight(Dtype dtype) {
        Random r = new Random(9);
        float[] v = new float[OUT * IN];
        for (int i = 0; i < v.length; i++) {
            float x = (float) r.nextGaussian();
            v[i] = dtype == Dtype.FP32 ? x : HalfFloats.bfloat16ToFloat(HalfFloats.floatToBFloat16(x));
        }
        return v;
    }

    private static List<RankOut> run(int world, Dtype dtype, float[] w) throws Exception {
        return ThreadProcessGroup.run(world, g -> {
            try (NDManager m = Torch.newManager()) {
                ShardedWeights sw = new ShardedWeights(g, (n, x) -> new DenseLinear(x));
                NDArray weight = Kernels.get().cast(m.create(w, new Shape(OUT, IN)), dtype);
                Linear l = sw.create("model.layers.0.self_attn.o_proj", weight);
                assertTrue(l instanceof ShardedLinear, l.getClass().getName());
                ShardedLinear s = (ShardedLinear) l;
                assertEquals(OUT, s.outFeatures());
                assertEquals(IN, s.inFeatures());
                assertFalse(s.gathered(), "nothing is gathered before use");
                NDArray eye = Kernels.get().cast(m.eye(IN), dtype);
                float[] wt = Kernels.get().cast(s.forward(eye), Dtype.FP32).toFloatArray();
                long gathered = sw.gatheredBytes();
                sw.release(0);
                assertFalse(s.gathered());
                assertEquals(0, sw.gatheredBytes(), "released");
                return new RankOut(wt, sw.shardBytes(), sw.totalBytes(), gathered);
            }
        });
    }

    @Test
    void everyRankComputesTheWholeWeightAndHoldsItsChunk() throws Exception {
        for (Dtype dtype : new Dtype[] {Dtype.FP32, Dtype.BF16}) {
            float[] w = weight(dtype);
            float[] expected = new float[OUT * IN];
            for (int o = 0; o < OUT; o++) {
                for (int i = 0; i < IN; i++) {
                    expected[i * OUT + o] = w[o * IN + i];
                }
            }
            int bytes = dtype == Dtype.FP32 ? 4 : 2;
            for (int world : new int[] {2, 3, 4, 8}) {
                List<RankOut> ranks = run(world, dtype, w);
                for (int r = 0; r < world; r++) {
                    RankOut o = ranks.get(r);
                    String where = dtype + " W=" + world + " rank " + r;
                    assertArrayEquals(expected, o.wt(), where);
                    assertEquals((long) (OUT * IN + world - 1) / world * bytes, o.shardBytes(), where);
                    assertEquals((long) OUT * IN * bytes, o.totalBytes(), where);
                    assertEquals((long) OUT * IN * bytes, o.gatheredWhileUsed(), where + ": the whole weight, once");
                }
            }
        }
    }
}
