package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import dev.jtune.testkit.TinyLlama;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsFile;
import dev.jtune.data.dataset.Batch;
import dev.jtune.trainer.optim.AdamW;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Full fine-tuning of the tiny Llama with bitsandbytes' 8-bit AdamW ({@code optimizer: adamw_bnb_8bit}): its
 * tensors of 4096 values or more keep 8-bit state, the smaller ones (norms, ...) fp32 state. The loss goes down; the checkpoint holds the 8-bit state; resuming from it continues bit for
 * bit; and the result is not adamw_torch's.
 */
class Bnb8bitTrainingTest {
    /** Two batches, seen three times each in six steps: the loss on them has to go down. */
    private static final List<Batch> TRAIN = TinySetup.batches(21, 2, 2, 16);
    private static final AdamW.Hyper BNB8 = new AdamW.Hyper(0.9, 0.999, 1e-8, 0.01, AdamW.Variant.BNB_8BIT);

    private record Run(List<Double> losses, Map<String, float[]> params) {}

    private static TrainerOptions options(AdamW.Hyper hyper, String resume) {
        return TrainerOptions.defaults(3e-3).toBuilder().maxSteps(6).lrScheduler("constant").warmupSteps(0)
                .loggingSteps(1).saveSteps(3).adam(hyper).resumeFromCheckpoint(resume).handleSigterm(false).build();
    }

    private static Run train(TrainerOptions o, Path out) throws IOException {
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 5)) {
            FullFineTuning ft = new FullFineTuning(model);
            TrainingResult r = Trainer.run(o, ft, BatchPlan.of(TRAIN), null, out,
                    new PrintStream(new ByteArrayOutputStream()));
            Map<String, float[]> params = new LinkedHashMap<>();
            ft.parameters().forEach((k, v) -> params.put(k, v.toFloatArray()));
            return new Run(r.losses(), params);
        }
    }

    private static List<Double> loggedLosses(Path out) throws IOException {
        return TrainerTest.metrics(out).stream().filter(n -> n.has("loss")).map(n -> n.get("loss").asDouble())
                .toList();
    }

    @TempDir
    static Path dir;

    /** The 8-bit run, shared by the tests. */
    private static Run whole;
    private static List<Double> losses;

    @BeforeAll
    static void trainOnce() throws IOException {
        whole = train(options(BNB8, null), dir.resolve("whole"));
        losses = loggedLosses(dir.resolve("whole"));
    }

    @Test
    void trainsCheckpointsTheEightBitStateAndResumesBitForBit() throws IOException {
        assertEquals(6, losses.size());
        // Steps 1, 3, 5 see batch 0; steps 2, 4, 6 batch 1.
        assertTrue(losses.get(4) < losses.get(0) - 0.05 && losses.get(5) < losses.get(1) - 0.05,
                "loss went down: " + losses);

        Path checkpoint = dir.resolve("whole").resolve("checkpoint-3");
        try (SafetensorsFile f = SafetensorsFile.open(checkpoint.resolve(Checkpoints.OPTIMIZER_FILE))) {
            assertEquals("adamw_bnb_8bit", f.metadata().get("optimizer"));
            assertEquals("256", f.metadata().get("block_size"));
            // Every trainable tensor: 8-bit state (uint8 codes in its shape, one absmax a block) from 4096 values
            // up, fp32 moments below.
            int eight = 0;
            int fp32 = 0;
            for (String name : whole.params().keySet()) {
                long n = whole.params().get(name).length;
                if (n >= 4096) {
                    eight++;
                    assertEquals(SafetensorsDtype.U8, f.info(name + ".state1").dtype(), name);
                    assertEquals(SafetensorsDtype.U8, f.info(name + ".state2").dtype(), name);
                    assertArrayEquals(new long[] {(n + 255) / 256}, f.info(name + ".absmax1").shape(), name);
                    assertArrayEquals(new long[] {(n + 255) / 256}, f.info(name + ".absmax2").shape(), name);
                    assertTrue(!f.contains(name + ".exp_avg"), name);
                } else {
                    fp32++;
                    assertEquals(SafetensorsDtype.F32, f.info(name + ".exp_avg").dtype(), name);
                    assertTrue(!f.contains(name + ".state1"), name);
                }
            }
            assertTrue(eight > 0 && fp32 > 0, eight + " 8-bit, " + fp32 + " fp32 tensors");
        }

        Run resumed = train(options(BNB8, checkpoint.toString()), dir.resolve("resumed"));
        List<Double> after = TrainerTest.metrics(dir.resolve("resumed")).stream()
                .filter(n -> n.has("loss") && n.get("step").asLong() > 3).map(n -> n.get("loss").asDouble()).toList();
        assertEquals(losses.subList(3, 6), after, "losses of steps 4-6 after resuming from checkpoint-3");
        for (var e : whole.params().entrySet()) {
            assertArrayEquals(e.getValue(), resumed.params().get(e.getKey()), e.getKey() + " after resuming");
        }
    }

    @Test
    void theEightBitOptimizerChangesTheResult() throws IOException {
        Run bnb = whole;
        Run torch = train(options(BNB8.with(AdamW.Variant.TORCH), null), dir.resolve("torch"));
        Run bnb32 = train(options(BNB8.with(AdamW.Variant.BNB_32BIT), null), dir.resolve("bnb32"));
        double eightVsTorch = maxDiff(bnb, torch, "model.embed_tokens.weight");
        double b32VsTorch = maxDiff(bnb32, torch, "model.embed_tokens.weight");
        // 8-bit moments move the weights measurably differently; bitsandbytes' 32-bit update differs from torch's
        // only in where weight decay and eps enter (rounding-sized here).
        assertTrue(eightVsTorch > 1e-4, "8-bit vs adamw_torch: " + eightVsTorch);
        assertTrue(b32VsTorch < eightVsTorch / 10, "32-bit bnb vs adamw_torch: " + b32VsTorch);
        assertTrue(!bnb.losses().equals(torch.losses()));
        // torchao's AdamW8bit (adamw_torch_8bit): 8-bit too, its own rounding: differs from both.
        Run torchao = train(options(BNB8.with(AdamW.Variant.TORCHAO_8BIT), null), dir.resolve("torchao"));
        assertTrue(maxDiff(torchao, torch, "model.embed_tokens.weight") > 1e-4);
        assertTrue(maxDiff(torchao, bnb, "model.embed_tokens.weight") > 1e-5);
    }

    /**
     * torchao's AdamW4bit (adamw_torch_4bit) in the trainer: the loss goes down, the checkpoint holds packed 4-bit
     * codes (half a byte a value) and a scale per 128 values, resuming from it continues bit for bit, and the result
     * differs from the 8-bit one's.
     */
    @Test
    void torchaosFourBitTrainsCheckpointsAndResumesBitForBit() throws IOException {
        AdamW.Hyper four = BNB8.with(AdamW.Variant.TORCHAO_4BIT);
        Run run = train(options(four, null), dir.resolve("four"));
        List<Double> l = loggedLosses(dir.resolve("four"));
        assertTrue(l.get(4) < l.get(0) - 0.05 && l.get(5) < l.get(1) - 0.05, "loss went down: " + l);
        Path checkpoint = dir.resolve("four").resolve("checkpoint-3");
        int quantized = 0;
        try (SafetensorsFile f = SafetensorsFile.open(checkpoint.resolve(Checkpoints.OPTIMIZER_FILE))) {
            assertEquals("adamw_torch_4bit", f.metadata().get("optimizer"));
            assertEquals("128", f.metadata().get("block_size"));
            for (String name : run.params().keySet()) {
                long n = run.params().get(name).length;
                if (n >= 4096 && n % 128 == 0) {
                    quantized++;
                    assertArrayEquals(new long[] {n / 2}, f.info(name + ".state1").shape(), name);
                    assertArrayEquals(new long[] {n / 128}, f.info(name + ".absmax2").shape(), name);
                } else {
                    assertEquals(SafetensorsDtype.F32, f.info(name + ".exp_avg").dtype(), name);
                }
            }
        }
        assertTrue(quantized > 0);
        Run resumed = train(options(four, checkpoint.toString()), dir.resolve("four-resumed"));
        for (var e : run.params().entrySet()) {
            assertArrayEquals(e.getValue(), resumed.params().get(e.getKey()), e.getKey() + " after resuming");
        }
        Run torchao8 = train(options(BNB8.with(AdamW.Variant.TORCHAO_8BIT), null), dir.resolve("four-vs-8"));
        assertTrue(maxDiff(run, torchao8, "model.embed_tokens.weight") > 1e-5);
    }

    private static double maxDiff(Run a, Run b, String name) {
        float[] x = a.params().get(name);
        float[] y = b.params().get(name);
        double d = 0;
        for (int i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]));
        return d;
    }
}
