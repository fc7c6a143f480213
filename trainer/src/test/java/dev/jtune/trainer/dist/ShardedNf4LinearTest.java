package dev.jtune.trainer.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.Linear;
import dev.jtune.quant.Nf4;
import dev.jtune.quant.Nf4Linear;
import dev.jtune.quant.Nf4Quantizer;
import dev.jtune.quant.Nf4Tensor;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * An NF4 projection sharded over W thread ranks gives, on every rank, the unsharded layer's output bit for bit and
 * the pure-Java dequantization; shards are whole blocks, padded at the end; odd sizes and W larger than useful work.
 */
class ShardedNf4LinearTest {
    /** 7 x 50 = 350 values: 6 blocks, the last partial (30 values), 175 packed bytes (no pad nibble). */
    private static final long OUT = 7;
    private static final long IN = 50;

    private static float[] values(long n, long seed, Dtype dtype) {
        Random r = new Random(seed);
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            float x = (float) r.nextGaussian();
            // Exactly representable in dtype (the quantizer requires it).
            v[i] = dtype == Dtype.FP32 ? x : dev.jtune.model.safetensors.HalfFloats.bfloat16ToFloat(
                    dev.jtune.model.safetensors.HalfFloats.floatToBFloat16(x));
        }
        return v;
    }

    /** Per rank: its forward of the identity (= Wᵀ, exact in fp32) and its shard bytes. */
    private record RankOut(float[] wt, float[] wtUnsharded, long shardBytes, long fullBytes, long nativeBytes) {}

    private static List<RankOut> run(int world, long out, long in) throws Exception {
        float[] w = values(out * in, 3, Dtype.FP32);
        return ThreadProcessGroup.run(world, g -> {
            try (NDManager m = Torch.newManager()) {
                ShardedWeights sw = ShardedWeights.nf4(g, Nf4.linearFactory());
                Linear l = sw.create("model.layers.0.mlp.up_proj", m.create(w, new Shape(out, in)));
                assertTrue(l instanceof ShardedNf4Linear, l.getClass().getName());
                ShardedNf4Linear s = (ShardedNf4Linear) l;
                assertEquals(out, s.outFeatures());
                assertEquals(in, s.inFeatures());
                NDArray eye = m.eye((int) in);
                float[] sharded = s.forward(eye).toFloatArray();
                assertTrue(s.gathered());
                assertEquals(s.gatherBytes(), sw.gatheredBytes());
                sw.release(0);
                assertFalse(s.gathered());
                assertEquals(0, sw.gatheredBytes());
                // Gathering again after a release gives the same.
                assertArrayEquals(sharded, s.forward(eye).toFloatArray());
                sw.releaseAll();
                try (Nf4Linear whole = (Nf4Linear) Nf4.linearFactory().create("x", m.create(w, new Shape(out, in)))) {
                    return new RankOut(sharded, whole.forward(eye).toFloatArray(), sw.shardBytes(), sw.totalBytes(),
                            whole.nativeBytes());
                }
            }
        });
    }

    private static float[] transpose(float[] w, long out, long in) {
        float[] t = new float[w.length];
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < in; i++) {
                t[(int) (i * out + o)] = w[(int) (o * in + i)];
            }
        }
        return t;
    }

    @Test
    void everyRankComputesTheUnshardedLayerBitForBit() throws Exception {
        Nf4Tensor q = Nf4Quantizer.quantize(values(OUT * IN, 3, Dtype.FP32), new long[] {OUT, IN}, Dtype.FP32);
        float[] reference = transpose(Nf4Quantizer.dequantize(q), OUT, IN);
        for (int world : new int[] {2, 3, 4, 8}) {
            List<RankOut> ranks = run(world, OUT, IN);
            long blocks = q.blocks();
            long perRank = (blocks + world - 1) / world;
            long stats = 4L * (q.nestedAbsmax().length + 1 + 16 + 256);
            for (int r = 0; r < world; r++) {
                RankOut o = ranks.get(r);
                assertArrayEquals(reference, o.wt(), "W=" + world + " rank " + r + " vs pure-Java dequantization");
                assertArrayEquals(o.wtUnsharded(), o.wt(), "W=" + world + " rank " + r + " vs Nf4Linear");
                // Whole blocks a rank (32 packed bytes + 1 absmax code each), the last padded; statistics whole.
                assertEquals(perRank * 33 + stats, o.shardBytes(), "W=" + world + " rank " + r);
                assertEquals(o.nativeBytes(), o.fullBytes(), "W=" + world + ": the whole layer as Nf4Linear holds it");
            }
        }
    }

    @Test
    void anOddElementCountAndABf16WeightAlsoMatch() throws Exception {
        // 5 x 13 = 65 values: 2 blocks (the second of 1 value), 33 packed bytes, the last low nibble padding.
        float[] w = values(65, 5, Dtype.BF16);
        Nf4Tensor q = Nf4Quantizer.quantize(w, new long[] {5, 13}, Dtype.BF16);
        float[] reference = transpose(Nf4Quantizer.dequantize(q), 5, 13);
        List<float[]> ranks = ThreadProcessGroup.run(2, g -> {
            try (NDManager m = Torch.newManager()) {
                ShardedWeights sw = ShardedWeights.nf4(g, Nf4.linearFactory());
                NDArray weight = Kernels.get().cast(m.create(w, new Shape(5, 13)), Dtype.BF16);
                Linear l = sw.create("model.layers.3.self_attn.o_proj", weight);
                NDArray y = Kernels.get().cast(l.forward(Kernels.get().cast(m.eye(13), Dtype.BF16)), Dtype.FP32);
                float[] out = y.toFloatArray();
                l.close();
                return out;
            }
        });
        for (float[] r : ranks) {
            assertArrayEquals(reference, r);
        }
    }

    @Test
    void aBaseThatDoesNotQuantizeALayerIsAClearError() throws Exception {
        List<String> messages = ThreadProcessGroup.run(1, g -> {
            try (NDManager m = Torch.newManager()) {
                ShardedWeights sw = ShardedWeights.nf4(g, (n, w) -> new DenseLinear(w));
                var e = assertThrows(IllegalArgumentException.class,
                        () -> sw.create("model.layers.1.mlp.down_proj", m.zeros(new Shape(4, 64))));
                // Projections outside the decoder layers go to the base as they are.
                assertTrue(sw.create("lm_head", m.zeros(new Shape(4, 64))) instanceof DenseLinear);
                return e.getMessage();
            }
        });
        assertTrue(messages.get(0).contains("model.layers.1.mlp.down_proj"), messages.get(0));
        assertTrue(messages.get(0).contains("DenseLinear"), messages.get(0));
    }
}
