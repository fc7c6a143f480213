package dev.jtune.trainer.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsFile;
import dev.jtune.trainer.dist.ThreadProcessGroup;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bitsandbytes' 8-bit AdamW sharded over 2 and 3 thread ranks (FSDP, the decoder layers' tensors sharded too) equals
 * the unsharded optimizer bit for bit: every rank's piece of an 8-bit tensor starts at a block of 256 of that tensor
 * (the flat layout aligns tensors and chunks to 256), so the blocks, their absmax and codes are the unsharded ones.
 * The gathered checkpoint is world-size free: written by 2 ranks, it resumes on 3 ranks and on one process.
 *
 * <p>Gradients are multiples of 2^-10 of small size, so that their sum over the ranks is exact in any order: the
 * comparison is about the optimizer, not the collectives' rounding.
 */
class ShardedBnbAdamWTest {
    private static final AdamW.Hyper BNB = new AdamW.Hyper(0.9, 0.999, 1e-8, 0.05, AdamW.Variant.BNB_8BIT);
    /** The variant under test; set before the ranks start (they read it after Thread.start). */
    private static AdamW.Hyper HYPER = BNB;
    private static final double[] LRS = {1e-2, 3e-3, 5e-3};
    /** 8-bit tensors with a partial tail block (4800 = 18.75 blocks; 4400), whole blocks (4096); a 32-bit one. */
    private static final Map<String, long[]> SHAPES = new LinkedHashMap<>();

    static {
        SHAPES.put("model.layers.0.self_attn.q_proj.lora_A.weight", new long[] {8, 600});
        SHAPES.put("model.layers.0.self_attn.q_proj.lora_B.weight", new long[] {300});
        SHAPES.put("model.layers.1.mlp.up_proj.lora_A.weight", new long[] {4096});
        SHAPES.put("lm_head.modules_to_save.weight", new long[] {4400});
    }

    private static long size(long[] shape) {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    private static float[] init(int k) {
        Random r = new Random(k);
        float[] v = new float[(int) size(SHAPES.get(List.copyOf(SHAPES.keySet()).get(k)))];
        for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextGaussian() * 0.2);
        return v;
    }

    /** Rank r's gradient of tensor k at step s: multiples of 2^-10 below 4 in size (exact sums). */
    private static float[] grad(int rank, int k, int step) {
        Random r = new Random(1000L * rank + 10L * k + step);
        float[] v = new float[(int) size(SHAPES.get(List.copyOf(SHAPES.keySet()).get(k)))];
        for (int i = 0; i < v.length; i++) v[i] = Math.round(r.nextGaussian() * 300) / 1024f;
        if (k == 0 && step == 0) java.util.Arrays.fill(v, 0, 700, 0f); // blocks with no gradient yet
        return v;
    }

    private static boolean decays(String name) {
        return !name.contains("lora_B");
    }

    private record Out(Map<String, float[]> values, ShardedAdamW.State state, long stateBytes) {}

    /** {@code steps} steps on {@code world} ranks from the current values, optionally from a saved state. */
    private static List<Out> sharded(int world, int from, int to, Map<String, float[]> start, Path load, Path save)
            throws Exception {
        return ThreadProcessGroup.run(world, g -> {
            try (NDManager m = Torch.newManager()) {
                Map<String, NDArray> params = new LinkedHashMap<>();
                for (var e : SHAPES.entrySet()) {
                    NDArray p = m.create(start.get(e.getKey()), new Shape(e.getValue()));
                    p.setRequiresGradient(true);
                    params.put(e.getKey(), p);
                }
                try (ShardedAdamW opt = new ShardedAdamW(params, HYPER, ShardedBnbAdamWTest::decays, g, m, true)) {
                    if (load != null) opt.load(load);
                    List<String> names = List.copyOf(SHAPES.keySet());
                    for (int s = from; s < to; s++) {
                        for (int layer = 0; layer < 2; layer++) {
                            NDList grads = new NDList();
                            for (NDArray p : opt.layerParameters(layer)) {
                                int k = List.copyOf(params.values()).indexOf(p);
                                grads.add(m.create(grad(g.rank(), k, s), p.getShape()));
                            }
                            opt.addGradients(layer, grads);
                            grads.close();
                        }
                        NDArray root = params.get(names.get(3));
                        float[] c = grad(g.rank(), 3, s);
                        Autograd.withGrad(() -> {
                            try (NDManager sm = m.newSubManager()) {
                                NDArray loss = root.mul(sm.create(c, root.getShape())).sum();
                                loss.attach(sm);
                                Autograd.backward(loss);
                            }
                            return null;
                        });
                        opt.reduceGradients();
                        opt.step(LRS[s]);
                        Gradients.zero(List.of(root));
                    }
                    ShardedAdamW.State state = opt.fullState();
                    if (save != null && g.rank() == 0) opt.gatherState().write(save);
                    else if (save != null) opt.gatherState();
                    opt.gatherAll();
                    Map<String, float[]> out = new LinkedHashMap<>();
                    params.forEach((k, v) -> out.put(k, v.toFloatArray()));
                    opt.releaseAll();
                    return new Out(out, state, opt.stateBytes());
                }
            }
        });
    }

    /** The unsharded optimizer fed the summed gradients. */
    private static Out whole(int world, int from, int to, Map<String, float[]> start, Path load) {
        try (NDManager m = Torch.newManager()) {
            Map<String, NDArray> params = new LinkedHashMap<>();
            SHAPES.forEach((k, s) -> params.put(k, m.create(start.get(k), new Shape(s))));
            try (AdamW opt = new AdamW(params, HYPER, ShardedBnbAdamWTest::decays, m)) {
                if (load != null) opt.load(load);
                List<String> names = List.copyOf(SHAPES.keySet());
                for (int s = from; s < to; s++) {
                    Map<String, NDArray> grads = new LinkedHashMap<>();
                    for (int k = 0; k < names.size(); k++) {
                        float[] sum = new float[(int) size(SHAPES.get(names.get(k)))];
                        for (int r = 0; r < world; r++) {
                            float[] gr = grad(r, k, s);
                            for (int i = 0; i < sum.length; i++) sum[i] += gr[i];
                        }
                        grads.put(names.get(k), m.create(sum, new Shape(SHAPES.get(names.get(k)))));
                    }
                    opt.step(LRS[s], grads);
                    grads.values().forEach(NDArray::close);
                }
                Map<String, float[]> out = new LinkedHashMap<>();
                Map<String, float[][]> channels = new LinkedHashMap<>();
                Map<String, long[]> shapes = new LinkedHashMap<>();
                Map<String, Long> steps = new LinkedHashMap<>();
                for (var e : params.entrySet()) {
                    out.put(e.getKey(), e.getValue().toFloatArray());
                    channels.put(e.getKey(), opt.channels(e.getKey()));
                    shapes.put(e.getKey(), e.getValue().getShape().getShape());
                    steps.put(e.getKey(), opt.step(e.getKey()));
                }
                return new Out(out, new ShardedAdamW.State(shapes, channels, steps), opt.stateBytes());
            }
        }
    }

    private static void assertSame(Out expected, Out actual, String what) {
        for (var e : expected.values().entrySet()) {
            assertArrayEquals(e.getValue(), actual.values().get(e.getKey()), what + ": " + e.getKey());
            float[][] x = expected.state().channels().get(e.getKey());
            float[][] y = actual.state().channels().get(e.getKey());
            assertEquals(x.length, y.length, what + ": channels of " + e.getKey());
            for (int c = 0; c < x.length; c++) {
                assertArrayEquals(x[c], y[c], what + ": state channel " + c + " of " + e.getKey());
            }
            assertEquals(expected.state().steps().get(e.getKey()), actual.state().steps().get(e.getKey()));
        }
    }

    private static Map<String, float[]> initial() {
        Map<String, float[]> start = new LinkedHashMap<>();
        int k = 0;
        for (String name : SHAPES.keySet()) start.put(name, init(k++));
        return start;
    }

    @Test
    void torchaosAdamW4bitShardedEqualsUnshardedBitForBit() throws Exception {
        HYPER = BNB.with(AdamW.Variant.TORCHAO_4BIT);
        try {
            Map<String, float[]> start = initial();
            for (int world : new int[] {2, 3}) {
                Out reference = whole(world, 0, LRS.length, start, null);
                // 4-bit state for whole blocks of 128 of at least 4096 values: 4096 yes, 4800 and 4400 no.
                assertEquals(4, reference.state().channels().get("model.layers.1.mlp.up_proj.lora_A.weight").length);
                assertEquals(2, reference.state().channels().get("lm_head.modules_to_save.weight").length);
                for (Out r : sharded(world, 0, LRS.length, start, null, null)) assertSame(reference, r, world + " ranks");
            }
        } finally {
            HYPER = BNB;
        }
    }

    @Test
    void torchaosAdamW8bitShardedEqualsUnshardedBitForBit() throws Exception {
        HYPER = BNB.with(AdamW.Variant.TORCHAO_8BIT);
        try {
            Map<String, float[]> start = initial();
            for (int world : new int[] {2, 3}) {
                Out reference = whole(world, 0, LRS.length, start, null);
                // torchao quantizes whole blocks only: 4096 values yes, 4800 and 4400 no.
                assertEquals(4, reference.state().channels().get("model.layers.1.mlp.up_proj.lora_A.weight").length);
                assertEquals(2, reference.state().channels().get("lm_head.modules_to_save.weight").length);
                for (Out r : sharded(world, 0, LRS.length, start, null, null)) assertSame(reference, r, world + " ranks");
            }
        } finally {
            HYPER = BNB;
        }
    }

    @Test
    void shardedEqualsUnshardedBitForBit() throws Exception {
        Map<String, float[]> start = initial();
        for (int world : new int[] {2, 3}) {
            Out reference = whole(world, 0, LRS.length, start, null);
            List<Out> ranks = sharded(world, 0, LRS.length, start, null, null);
            for (Out r : ranks) assertSame(reference, r, world + " ranks");
            // The tensors moved, and the 8-bit ones hold codes (4 channels), the small one fp32 moments.
            assertTrue(reference.state().channels().get("lm_head.modules_to_save.weight").length == 4);
            assertTrue(reference.state().channels().get("model.layers.0.self_attn.q_proj.lora_B.weight").length == 2);
            // Each rank holds about a W-th of the state (blocks rounded): 2 bytes a value plus 8 a block for 8-bit.
            long held = ranks.stream().mapToLong(Out::stateBytes).sum();
            assertEquals(reference.stateBytes(), held, "the ranks' state adds up to the unsharded state");
            for (Out r : ranks) assertTrue(r.stateBytes() < reference.stateBytes() * 0.5 + 8 * 1024, world + " ranks");
        }
    }

    @Test
    void aCheckpointOfTwoRanksResumesOnThreeAndOnOne(@TempDir Path dir) throws Exception {
        Map<String, float[]> start = initial();
        Path state = dir.resolve("optimizer.safetensors");
        List<Out> first = sharded(2, 0, 2, start, null, state);
        try (SafetensorsFile f = SafetensorsFile.open(state)) {
            // bitsandbytes' state names: uint8 codes in the tensor's shape, one absmax a block.
            String a = "model.layers.0.self_attn.q_proj.lora_A.weight";
            assertEquals(SafetensorsDtype.U8, f.info(a + ".state1").dtype());
            assertArrayEquals(new long[] {8, 600}, f.info(a + ".state2").shape());
            assertArrayEquals(new long[] {19}, f.info(a + ".absmax1").shape());
            assertTrue(f.contains("model.layers.0.self_attn.q_proj.lora_B.weight.exp_avg"));
            assertEquals("adamw_bnb_8bit", f.metadata().get("optimizer"));
        }
        // The uninterrupted run, 3 steps, summed over 2 ranks' gradients ...
        Out reference = whole(2, 0, LRS.length, start, null);
        // ... equals 2 steps on 2 ranks, then the last step from the checkpoint in one process,
        Out resumedWhole = whole(2, 2, LRS.length, first.get(0).values(), state);
        assertSame(reference, resumedWhole, "resumed in one process");
        // and on 3 ranks fed the same summed gradient (rank 0 the 2-rank sum, the others zero).
        List<Out> three = shardedSummed(first.get(0).values(), state);
        for (Out r : three) assertSame(reference, r, "resumed on 3 ranks");
    }

    /** The last step on 3 ranks from {@code state}: rank 0 gets the 2-rank gradient sum, the others zeros. */
    private static List<Out> shardedSummed(Map<String, float[]> start, Path state) throws Exception {
        return ThreadProcessGroup.run(3, g -> {
            try (NDManager m = Torch.newManager()) {
                Map<String, NDArray> params = new LinkedHashMap<>();
                for (var e : SHAPES.entrySet()) {
                    NDArray p = m.create(start.get(e.getKey()), new Shape(e.getValue()));
                    p.setRequiresGradient(true);
                    params.put(e.getKey(), p);
                }
                try (ShardedAdamW opt = new ShardedAdamW(params, HYPER, ShardedBnbAdamWTest::decays, g, m, true)) {
                    opt.load(state);
                    int s = LRS.length - 1;
                    List<String> names = List.copyOf(SHAPES.keySet());
                    java.util.function.IntFunction<float[]> summed = k -> {
                        float[] sum = new float[(int) size(SHAPES.get(names.get(k)))];
                        if (g.rank() == 0) {
                            for (int r = 0; r < 2; r++) {
                                float[] gr = grad(r, k, s);
                                for (int i = 0; i < sum.length; i++) sum[i] += gr[i];
                            }
                        }
                        return sum;
                    };
                    for (int layer = 0; layer < 2; layer++) {
                        NDList grads = new NDList();
                        for (NDArray p : opt.layerParameters(layer)) {
                            grads.add(m.create(summed.apply(List.copyOf(params.values()).indexOf(p)), p.getShape()));
                        }
                        opt.addGradients(layer, grads);
                        grads.close();
                    }
                    NDArray root = params.get(names.get(3));
                    float[] c = summed.apply(3);
                    Autograd.withGrad(() -> {
                        try (NDManager sm = m.newSubManager()) {
                            NDArray loss = root.mul(sm.create(c, root.getShape())).sum();
                            loss.attach(sm);
                            Autograd.backward(loss);
                        }
                        return null;
                    });
                    opt.reduceGradients();
                    opt.step(LRS[s]);
                    ShardedAdamW.State st = opt.fullState();
                    opt.gatherAll();
                    Map<String, float[]> out = new LinkedHashMap<>();
                    params.forEach((k, v) -> out.put(k, v.toFloatArray()));
                    opt.releaseAll();
                    return new Out(out, st, opt.stateBytes());
                }
            }
        });
    }
}
