package dev.jtune.trainer.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.Torch;
import dev.jtune.trainer.dist.ThreadProcessGroup;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * FSDP's optimizer with the decoder layers' tensors sharded (ZeRO-3), on 2 and 3 thread ranks, against the
 * double-precision AdamW of {@link AdamWTest.Reference} fed the gradients summed over ranks and clipped by their
 * global norm: the layers' tensors hold no memory between uses, a rank keeps ⌈P/W⌉ values per layer, gathered
 * values are the reference's, and the gathered optimizer state is the reference's.
 */
class ShardedAdamWTest {
    private static final AdamW.Hyper HYPER = new AdamW.Hyper(0.9, 0.999, 1e-8, 0.01);
    private static final double LR = 0.01;
    private static final double MAX_NORM = 0.5; // below the gradients' norm: clipping acts
    private static final int STEPS = 2;
    /** Two layers (one tensor of 7 values, so that chunks cut inside tensors) and a root tensor. */
    private static final Map<String, long[]> SHAPES = new LinkedHashMap<>();

    static {
        SHAPES.put("model.layers.0.self_attn.q_proj.lora_A.weight", new long[] {3, 5});
        SHAPES.put("model.layers.0.self_attn.q_proj.lora_B.weight", new long[] {7});
        SHAPES.put("model.layers.1.mlp.up_proj.lora_A.weight", new long[] {4, 4});
        SHAPES.put("lm_head.modules_to_save.weight", new long[] {6});
    }

    private static float[] values(long seed, long n, double scale) {
        Random r = new Random(seed);
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextGaussian() * scale);
        return v;
    }

    private static long size(long[] shape) {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    /** Rank r's gradient of tensor k at step s. */
    private static float[] grad(int rank, int k, int step, long n) {
        return values(1000L * rank + 10L * k + step, n, 1.0);
    }

    /** grad += c, by backpropagating sum(p * c) (grad mode is per thread, as the ranks are). */
    private static void accumulate(NDManager m, NDArray p, float[] c) {
        Autograd.withGrad(() -> {
            try (NDManager s = m.newSubManager()) {
                NDArray loss = p.mul(s.create(c, p.getShape())).sum();
                loss.attach(s);
                Autograd.backward(loss);
            }
            return null;
        });
    }

    private record RankOut(Map<String, float[]> values, Map<String, float[]> expAvg, Map<String, Long> steps,
            long held, long total, List<Long> freedNumel, List<Long> wholeNumel) {}

    private static List<RankOut> train(int world) throws Exception {
        return ThreadProcessGroup.run(world, g -> {
            try (NDManager m = Torch.newManager()) {
                Map<String, NDArray> params = new LinkedHashMap<>();
                int k = 0;
                for (var e : SHAPES.entrySet()) {
                    NDArray p = m.create(values(k++, size(e.getValue()), 0.5), new Shape(e.getValue()));
                    p.setRequiresGradient(true);
                    params.put(e.getKey(), p);
                }
                OptimKernels ops = OptimKernels.get();
                try (ShardedAdamW opt = new ShardedAdamW(params, HYPER, n -> true, g, m, true)) {
                    List<Long> freed = params.values().stream().map(ops::numel).toList();
                    for (int s = 0; s < STEPS; s++) {
                        for (int layer = 0; layer < 2; layer++) {
                            NDList grads = new NDList();
                            for (NDArray p : opt.layerParameters(layer)) {
                                int index = List.copyOf(params.values()).indexOf(p);
                                grads.add(m.create(grad(g.rank(), index, s, p.getShape().size()), p.getShape()));
                            }
                            opt.addGradients(layer, grads);
                            grads.close();
                        }
                        NDArray root = params.get("lm_head.modules_to_save.weight");
                        accumulate(m, root, grad(g.rank(), 3, s, 6));
                        opt.reduceGradients();
                        opt.clipGradients(MAX_NORM);
                        opt.step(LR);
                        Gradients.zero(List.of(root));
                    }
                    ShardedAdamW.State state = opt.fullState();
                    opt.gatherAll();
                    List<Long> whole = params.values().stream().map(ops::numel).toList();
                    Map<String, float[]> out = new LinkedHashMap<>();
                    for (var e : params.entrySet()) {
                        out.put(e.getKey(), e.getValue().toFloatArray());
                    }
                    // The sharded tensors never had a .grad: their gradients went straight to the chunks.
                    assertNull(Autograd.gradient(params.get(SHAPES.keySet().iterator().next())));
                    opt.releaseAll();
                    return new RankOut(out, state.expAvg(), state.steps(), opt.heldBytes(), opt.totalBytes(), freed,
                            whole);
                }
            }
        });
    }

    @Test
    void shardedLayersTrainAsTheReferenceWithTheSummedClippedGradients() throws Exception {
        for (int world : new int[] {2, 3}) {
            // The reference: every tensor whole, gradients summed over the ranks, clipped by the global norm.
            List<String> names = List.copyOf(SHAPES.keySet());
            List<AdamWTest.Reference> refs = new java.util.ArrayList<>();
            for (int k = 0; k < names.size(); k++) {
                refs.add(new AdamWTest.Reference(values(k, size(SHAPES.get(names.get(k))), 0.5)));
            }
            for (int s = 0; s < STEPS; s++) {
                double[][] sum = new double[names.size()][];
                double sq = 0;
                for (int k = 0; k < names.size(); k++) {
                    int n = (int) size(SHAPES.get(names.get(k)));
                    sum[k] = new double[n];
                    for (int r = 0; r < world; r++) {
                        float[] gr = grad(r, k, s, n);
                        for (int i = 0; i < n; i++) sum[k][i] += gr[i];
                    }
                    for (double x : sum[k]) sq += x * x;
                }
                double coef = Math.min(1.0, MAX_NORM / (Math.sqrt(sq) + 1e-6));
                for (int k = 0; k < names.size(); k++) {
                    for (int i = 0; i < sum[k].length; i++) sum[k][i] *= coef;
                    refs.get(k).step(sum[k], LR, HYPER, HYPER.weightDecay());
                }
            }

            List<RankOut> ranks = train(world);
            long layer0 = 15 + 7;
            long layer1 = 16;
            for (int r = 0; r < world; r++) {
                RankOut o = ranks.get(r);
                String where = "W=" + world + " rank " + r;
                assertEquals(List.of(0L, 0L, 0L, 6L), o.freedNumel(), where + ": the layers' tensors hold nothing");
                assertEquals(List.of(15L, 7L, 16L, 6L), o.wholeNumel(), where + ": gathered whole");
                assertEquals(4 * ((layer0 + world - 1) / world + (layer1 + world - 1) / world + 6), o.held(), where);
                assertEquals(4 * (layer0 + layer1 + 6), o.total(), where);
                for (int k = 0; k < names.size(); k++) {
                    String name = names.get(k);
                    AdamWTest.Reference ref = refs.get(k);
                    float[] got = o.values().get(name);
                    float[] m = o.expAvg().get(name);
                    for (int i = 0; i < got.length; i++) {
                        assertEquals(ref.p[i], got[i], 1e-5 * Math.max(1, Math.abs(ref.p[i])), where + " " + name + "[" + i + "]");
                        assertEquals(ref.m[i], m[i], 1e-5 * Math.max(1, Math.abs(ref.m[i])), where + " exp_avg " + name);
                    }
                    assertEquals(STEPS, o.steps().get(name), where + " step count of " + name);
                }
            }
        }
    }
}
