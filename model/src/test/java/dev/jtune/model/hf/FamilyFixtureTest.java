package dev.jtune.model.hf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.generate.CachedDecoder;
import dev.jtune.model.llama.Family;
import dev.jtune.model.llama.KvCache;
import dev.jtune.model.llama.LlamaModel;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every family against transformers itself: tiny random checkpoints that transformers 5.18 wrote
 * ({@code tools/reference/make_family_fixtures.py}, provenance in {@code tools/reference/FAMILIES.md}) with the
 * per-line negative log-likelihoods its eager forward computed in fp32 and bf16, the same lines packed into one row
 * (positions restarting, samples isolated), and a greedy generation with its KV cache. jtune loads each folder as a
 * user's model directory and must agree: 1e-5 relative in fp32, 0.5% in bf16, the same greedy tokens.
 */
class FamilyFixtureTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static Path dir(String name) throws URISyntaxException {
        return Path.of(FamilyFixtureTest.class.getResource("/fixtures/families/" + name + "/config.json").toURI())
                .getParent();
    }

    private static List<long[]> lines(JsonNode expected) {
        List<long[]> out = new ArrayList<>();
        for (JsonNode line : expected.get("lines")) {
            long[] ids = new long[line.get("input_ids").size()];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = line.get("input_ids").get(i).asLong();
            }
            out.add(ids);
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "qwen3", "mistral-nemo", "gemma2", "gemma3-text", "gemma3-conditional", "phi3",
            "llama-rope-params"})
    void scoresAsTransformersUnpackedPackedAndCached(String name) throws Exception {
        Path dir = dir(name);
        JsonNode expected = JSON.readTree(dir.resolve("expected.json").toFile());
        List<long[]> lines = lines(expected);
        try (HfCheckpoint checkpoint = HfCheckpoint.open(dir); NDManager manager = Torch.newManager()) {
            for (Dtype dtype : List.of(Dtype.FP32, Dtype.BF16)) {
                double tolerance = dtype == Dtype.FP32 ? 1e-5 : 5e-3;
                String key = dtype == Dtype.FP32 ? "fp32" : "bf16";
                try (LlamaModel model = LlamaModel.load(checkpoint.config(), checkpoint, dtype, manager)) {
                    for (int i = 0; i < lines.size(); i++) {
                        double want = expected.get(key).get("nll").get(i).asDouble();
                        double got = unpackedNll(model, lines.get(i));
                        assertEquals(want, got, tolerance * Math.abs(want),
                                name + " " + key + " line " + i + ": jtune " + got + ", transformers " + want);
                    }
                    if (dtype == Dtype.FP32) {
                        double[] packed = packedNll(model, lines);
                        for (int i = 0; i < lines.size(); i++) {
                            double want = expected.get("packed").get("fp32").get("nll").get(i).asDouble();
                            assertEquals(want, packed[i], tolerance * Math.abs(want),
                                    name + " packed line " + i + ": jtune " + packed[i] + ", transformers " + want);
                        }
                        assertArrayEquals(longs(expected.get("greedy").get("fp32")),
                                greedy(model, longs(expected.get("greedy").get("prompt")),
                                        expected.get("greedy").get("fp32").size()),
                                name + ": greedy generation with the KV cache");
                    }
                }
            }
        }
    }

    /** The fixture set covers every family jtune implements: a new family must bring its transformers fixture. */
    @org.junit.jupiter.api.Test
    void everyFamilyHasAFixture() throws Exception {
        List<String> seen = new ArrayList<>();
        for (String name : List.of("qwen2", "qwen3", "mistral-nemo", "gemma2", "gemma3-text", "phi3",
                "llama-rope-params")) {
            seen.add(dev.jtune.model.llama.LlamaConfig.load(dir(name)).modelType());
        }
        for (Family f : Family.values()) {
            assertTrue(seen.contains(f.modelType()), f + " has no transformers fixture");
        }
    }

    private static long[] longs(JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asLong();
        }
        return out;
    }

    /** Sum over t ≥ 1 of −log p(ids[t] | ids[<t]), in double from the fp32-upcast logits. */
    private static double unpackedNll(LlamaModel model, long[] ids) {
        try (NDManager step = Torch.newManager()) {
            NDArray input = step.create(ids, new Shape(1, ids.length));
            NDArray logits = model.forward(input, LlamaModel.defaultPositions(input), null);
            return nll(logits.reshape(ids.length, -1), ids, 0, ids.length);
        }
    }

    private static double nll(NDArray logits2d, long[] ids, int from, int length) {
        // Labels: each position predicts the next id of its own line; the last position of the line predicts nothing.
        long[] labels = new long[(int) logits2d.getShape().get(0)];
        java.util.Arrays.fill(labels, Kernels.IGNORE_INDEX);
        for (int t = 0; t + 1 < length; t++) {
            labels[from + t] = ids[t + 1];
        }
        NDArray nll = Kernels.get().tokenNll(logits2d, logits2d.getManager().create(labels));
        double sum = 0;
        for (float v : nll.toFloatArray()) {
            sum += v;
        }
        return sum;
    }

    private static double[] packedNll(LlamaModel model, List<long[]> lines) {
        int total = lines.stream().mapToInt(l -> l.length).sum();
        long[] ids = new long[total];
        long[] positions = new long[total];
        long[] segments = new long[total];
        int at = 0;
        for (int i = 0; i < lines.size(); i++) {
            long[] line = lines.get(i);
            for (int t = 0; t < line.length; t++) {
                ids[at + t] = line[t];
                positions[at + t] = t;
                segments[at + t] = i;
            }
            at += line.length;
        }
        try (NDManager step = Torch.newManager()) {
            NDArray logits = model.forward(step.create(ids, new Shape(1, total)),
                    step.create(positions, new Shape(1, total)), step.create(segments, new Shape(1, total)))
                    .reshape(total, -1);
            double[] out = new double[lines.size()];
            at = 0;
            for (int i = 0; i < lines.size(); i++) {
                out[i] = nll(logits, lines.get(i), at, lines.get(i).length);
                at += lines.get(i).length;
            }
            return out;
        }
    }

    /** Greedy continuation of {@code prompt}: the prompt through the cache, then one token at a time. */
    private static long[] greedy(LlamaModel model, long[] prompt, int count) {
        CachedDecoder decoder = new CachedDecoder(model);
        long[] out = new long[count];
        try (NDManager step = Torch.newManager(); KvCache cache = decoder.newCache(1, prompt.length + count, step)) {
            NDArray logits = decoder.lastLogits(step.create(prompt, new Shape(1, prompt.length)), null, cache);
            for (int i = 0; i < count; i++) {
                out[i] = logits.argMax(-1).toLongArray()[0];
                logits = decoder.lastLogits(step.create(new long[] {out[i]}, new Shape(1, 1)), null, cache);
            }
        }
        return out;
    }
}
