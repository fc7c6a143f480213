package dev.jtune.trainer.train;

import static dev.jtune.trainer.train.ForwardBackwardTest.assertGradsClose;
import static dev.jtune.trainer.train.ForwardBackwardTest.grads;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.data.dataset.Batch;
import dev.jtune.data.dataset.Row;
import dev.jtune.data.dataset.Sample;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.hf.HfCheckpoint;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.testkit.TinyLlama;
import dev.jtune.trainer.optim.Gradients;
import dev.jtune.trainer.optim.Tensors;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The head and loss in chunks of trained tokens ({@link ForwardBackward#withHeadChunk}) against the whole
 * [tokens, vocab] logits at once (chunk 0, the path jtune took before): the same loss and the same gradients of every
 * trainable tensor, across families (Llama with an untied head, Gemma 2 with its final logit softcap and a tied
 * embedding, Qwen 2 tied, Phi-3), with and without gradient checkpointing, packed and not, accumulated over
 * micro-batches, under an adapter, with EAFT and a loss scale; and a finite difference of the head's gradient.
 */
class ChunkedHeadTest {
    private static Path fixture(String name) {
        return Path.of("..", "model", "src", "test", "resources", "fixtures", "families", name).toAbsolutePath();
    }

    private record Run(double loss, Map<String, float[]> grads) {}

    private static Run run(ForwardBackward fb, Map<String, NDArray> params, Batch b, long n, double scale,
            NDManager m) {
        Gradients.zero(params.values());
        double loss = fb.run(b, n, scale, true, 2, 0, m).nllSum();
        return new Run(loss, grads(params));
    }

    /** Chunked (several chunk sizes, one of them not dividing the trained tokens) equals unchunked. */
    private static void assertChunkedEqualsWhole(LlamaModel model, Map<String, NDArray> params, String what,
            NDManager m) {
        for (boolean ckpt : new boolean[] {false, true}) {
            ForwardBackward base = new ForwardBackward(model, ckpt, 7);
            for (Batch b : List.of(TinySetup.batches(3, 1, 3, 30).get(0), TinySetup.packedBatch(4, 2, 36))) {
                long n = b.trainedTokens();
                Run whole = run(base.withHeadChunk(0), params, b, n, 1.0, m);
                double evalWhole = base.withHeadChunk(0).run(b, n, 1.0, false, 2, 0, m).nllSum();
                assertEquals(whole.loss(), evalWhole, 1e-5 * whole.loss(), what + ": eval sum, unchunked");
                for (long chunk : new long[] {1, 7, n}) {
                    String at = what + (ckpt ? ", checkpointing" : "") + (b.packed() ? ", packed" : "")
                            + ", chunk " + chunk;
                    Run chunked = run(base.withHeadChunk(chunk), params, b, n, 1.0, m);
                    assertEquals(whole.loss(), chunked.loss(), 1e-5 * whole.loss(), at + ": loss");
                    assertGradsClose(whole.grads(), chunked.grads(), 2e-5);
                    double eval = base.withHeadChunk(chunk).run(b, n, 1.0, false, 2, 0, m).nllSum();
                    assertEquals(whole.loss(), eval, 1e-5 * whole.loss(), at + ": eval sum");
                }
            }
        }
    }

    private static Map<String, NDArray> trainAll(LlamaModel model) {
        Map<String, NDArray> params = new FullFineTuning(model).parameters();
        params.values().forEach(p -> p.setRequiresGradient(true));
        return params;
    }

    @Test
    void llamaWithAnUntiedHead() {
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 1)) {
            Map<String, NDArray> params = trainAll(model);
            assertTrue(params.containsKey("lm_head.weight"), "the head trains: its chunked gradient is compared");
            assertChunkedEqualsWhole(model, params, "llama", m);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gemma2", "qwen2", "phi3"})
    void familiesWithSoftcapAndTiedEmbeddings(String name) {
        try (HfCheckpoint checkpoint = HfCheckpoint.open(fixture(name)); NDManager m = Torch.newManager();
                LlamaModel model = LlamaModel.load(checkpoint.config(), checkpoint, Dtype.FP32, m)) {
            if (name.equals("gemma2")) {
                assertTrue(model.config().architecture().finalLogitSoftcapping() > 0, "gemma2 caps its logits");
                assertTrue(model.config().tieWordEmbeddings(), "gemma2's head is its embedding");
            }
            assertChunkedEqualsWhole(model, trainAll(model), name, m);
        }
    }

    @Test
    void accumulatedChunkedMicroBatchesEqualOneWholeBatch() {
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 4)) {
            Map<String, NDArray> params = trainAll(model);
            Random r = new Random(8);
            List<Row> rows1 = List.of(Row.of(TinySetup.sample(r, 21, 4)), Row.of(TinySetup.sample(r, 12, 2)));
            List<Row> rows2 = List.of(Row.of(TinySetup.sample(r, 27, 9)));
            List<Row> all = new ArrayList<>(rows1);
            all.addAll(rows2);
            Batch full = TinySetup.collate(all);
            long n = full.trainedTokens();
            ForwardBackward chunked = new ForwardBackward(model, false, 3).withHeadChunk(6);
            Gradients.zero(params.values());
            double s = chunked.run(TinySetup.collate(rows1), n, 1.0, true, 0, 0, m).nllSum()
                    + chunked.run(TinySetup.collate(rows2), n, 1.0, true, 0, 1, m).nllSum();
            Map<String, float[]> accumulated = grads(params);
            Run whole = run(new ForwardBackward(model, false, 3).withHeadChunk(0), params, full, n, 1.0, m);
            assertEquals(whole.loss(), s, 1e-5 * s);
            assertGradsClose(whole.grads(), accumulated, 2e-5);
        }
    }

    @Test
    void underAnAdapterWithCheckpointing() {
        try (NDManager m = Torch.newManager()) {
            TinySetup.TinyAdapter adapter = TinySetup.TinyAdapter.load(m, 5, Dtype.FP32, 4);
            Map<String, NDArray> params = adapter.parameters();
            params.values().forEach(p -> p.setRequiresGradient(true));
            for (var e : params.entrySet()) { // B starts at zero: give it values so that A's gradient is not zero
                if (e.getKey().endsWith("lora_B.weight")) {
                    float[] v = new float[(int) e.getValue().size()];
                    for (int i = 0; i < v.length; i++) v[i] = (float) Math.sin(i + 1) * 0.05f;
                    Tensors.overwrite(e.getValue(), v, e.getKey());
                }
            }
            assertChunkedEqualsWhole(adapter.model(), params, "adapter", m);
            adapter.model().close();
        }
    }

    @Test
    void eaftAndTheLossScaleChunkAsTheWholeLogits() {
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 6)) {
            Map<String, NDArray> params = trainAll(model);
            Batch b = TinySetup.packedBatch(12, 2, 34);
            long n = b.trainedTokens();
            ForwardBackward eaft = new ForwardBackward(model, true, 7, ForwardBackward.LayerHooks.NONE,
                    new Eaft(1.0, 5));
            Run whole = run(eaft.withHeadChunk(0), params, b, n, 8.0, m);
            Run chunked = run(eaft.withHeadChunk(5), params, b, n, 8.0, m);
            assertEquals(whole.loss(), chunked.loss(), 1e-5 * whole.loss());
            assertGradsClose(whole.grads(), chunked.grads(), 2e-5);
            // EAFT changes the loss (so the comparison above is not the plain NLL's), and the scale multiplies.
            Run plain = run(new ForwardBackward(model, true, 7).withHeadChunk(5), params, b, n, 1.0, m);
            assertTrue(Math.abs(plain.loss() - whole.loss()) > 1e-3 * plain.loss(), "EAFT weights the loss");
            float[] g8 = run(new ForwardBackward(model, true, 7).withHeadChunk(5), params, b, n, 8.0, m).grads()
                    .get("lm_head.weight");
            float[] g1 = plain.grads().get("lm_head.weight");
            for (int i = 0; i < g1.length; i += 97) {
                assertEquals(8 * g1[i], g8[i], 1e-5 * Math.abs(8 * g1[i]) + 1e-9, "loss scale 8, [" + i + "]");
            }
        }
    }

    @Test
    void aMicroBatchWithoutTrainedTokensGivesZeroGradients() {
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 7)) {
            Map<String, NDArray> params = trainAll(model);
            Sample s = TinySetup.sample(new Random(3), 10, 10); // every label masked
            Batch b = TinySetup.collate(List.of(Row.of(s)));
            assertEquals(0, b.trainedTokens());
            for (boolean ckpt : new boolean[] {false, true}) {
                Gradients.zero(params.values());
                double loss = new ForwardBackward(model, ckpt, 1).withHeadChunk(4).run(b, 1, 1.0, true, 0, 0, m)
                        .nllSum();
                assertEquals(0.0, loss);
                // The head never runs, so its gradient may stay unset (null: the optimizer skips it); any gradient
                // that backward did reach is zero.
                List<NDArray> g = Gradients.open(params.values());
                int reached = 0;
                for (NDArray x : g) {
                    if (x == null) continue;
                    reached++;
                    for (float v : x.toFloatArray()) assertEquals(0f, v);
                }
                Gradients.close(g);
                assertTrue(reached > 0, "the decoder's gradients were reached (zero)");
            }
        }
    }

    @Test
    void theHeadsChunkedGradientMatchesAFiniteDifference() {
        try (NDManager m = Torch.newManager(); LlamaModel model = TinyLlama.load(m, 9)) {
            Map<String, NDArray> params = trainAll(model);
            Batch b = TinySetup.packedBatch(21, 2, 30);
            long n = b.trainedTokens();
            Run chunked = run(new ForwardBackward(model, true, 7).withHeadChunk(4), params, b, n, 1.0, m);
            for (String probe : List.of("lm_head.weight", "model.norm.weight")) {
                float[] g = chunked.grads().get(probe);
                int idx = 0;
                for (int i = 1; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[idx])) idx = i;
                assertTrue(Math.abs(g[idx]) > 1e-4, probe + " has a gradient");
                NDArray t = params.get(probe);
                float[] w = t.toFloatArray();
                double h = 1e-2;
                double[] f = new double[2];
                for (int s = 0; s < 2; s++) {
                    float[] w2 = w.clone();
                    w2[idx] += (float) (s == 0 ? h : -h);
                    Tensors.overwrite(t, w2, probe);
                    // the independent reference: the model's whole forward and a log-softmax in double
                    f[s] = ForwardBackwardTest.referenceNll(model, b, m) / n;
                }
                Tensors.overwrite(t, w, probe);
                double fd = (f[0] - f[1]) / (2 * h);
                assertEquals(fd, g[idx], 3e-3 * Math.abs(fd) + 2e-4, "d loss / d " + probe + "[" + idx + "]");
            }
        }
    }

    @Test
    void theDefaultChunkFollowsTheVocabularyAndWhetherTheHeadTrains() {
        for (boolean tied : new boolean[] {false, true}) {
            try (NDManager m = Torch.newManager();
                    LlamaModel model = TinyLlama.load(TinyLlama.micro(tied), 1, Dtype.FP32, m)) {
                ForwardBackward fb = new ForwardBackward(model, false, 1);
                assertEquals(ForwardBackward.HEAD_CHUNK_LOGITS / 48, fb.headChunk(), "frozen head, tied " + tied);
                trainAll(model);
                assertEquals(ForwardBackward.TRAINED_HEAD_CHUNK_LOGITS / 48, fb.headChunk(), "trained, tied " + tied);
            }
        }
        // Llama 3's vocabulary: 130 tokens a chunk (64 MiB of fp32 logits), 523 when the head trains.
        assertEquals(130, ForwardBackward.HEAD_CHUNK_LOGITS / 128_256);
        assertEquals(523, ForwardBackward.TRAINED_HEAD_CHUNK_LOGITS / 128_256);
    }
}
