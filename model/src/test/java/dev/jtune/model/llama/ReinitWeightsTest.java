package dev.jtune.model.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code reinit_weights: true} draws a model's weights as transformers 5.18's {@code from_config} does, per tensor:
 * against {@code tools/reference/reinit_weights_expected.py} (resources/reinit), which builds each family's model
 * fresh with {@code initializer_range} 0.05. The same tensors; norms and biases exactly their constants; each drawn
 * tensor's mean and standard deviation within sampling tolerance of N(0, 0.05²) (torch's and jtune's generators draw
 * different numbers); the same rows zero (the padding token's embedding).
 */
class ReinitWeightsTest {
    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "gemma2", "llama-rope-params"})
    void tensorsFollowTransformersInit(String family) throws Exception {
        Path dir = Path.of(ReinitWeightsTest.class.getResource("/reinit/" + family + "/config.json").toURI()).getParent();
        JsonNode expected = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        double range = expected.get("initializer_range").asDouble();
        LlamaConfig config = LlamaConfig.load(dir);
        RandomInit init = new RandomInit(config, 11, range);
        Set<String> names = new TreeSet<>();
        init.specs().forEach(s -> names.add(s.name()));
        Set<String> want = new TreeSet<>();
        expected.get("tensors").fieldNames().forEachRemaining(want::add);
        assertEquals(want, names, family + ": the tensors a fresh model has");
        for (RandomInit.Spec spec : init.specs()) {
            JsonNode t = expected.get("tensors").get(spec.name());
            long[] shape = new long[t.get("shape").size()];
            for (int i = 0; i < shape.length; i++) shape[i] = t.get("shape").get(i).asLong();
            assertArrayEquals(shape, spec.shape(), spec.name());
            float[] v = init.values(spec);
            if (t.get("std").asDouble() == 0) { // a constant: norms (1, Gemma's 0) and biases (0)
                for (float x : v) assertEquals((float) t.get("min").asDouble(), x, spec.name());
                continue;
            }
            double mean = 0;
            for (float x : v) mean += x;
            mean /= v.length;
            double var = 0;
            for (float x : v) var += (x - mean) * (x - mean);
            double std = Math.sqrt(var / (v.length - 1));
            int n = v.length;
            // five standard errors of the sample mean and standard deviation of n normal draws
            assertTrue(Math.abs(mean) < 5 * range / Math.sqrt(n), spec.name() + " mean " + mean);
            assertTrue(Math.abs(std - range) < 5 * range / Math.sqrt(2.0 * n) + 1e-4 * range,
                    spec.name() + " std " + std + ", transformers' " + t.get("std").asDouble());
            assertEquals(ints(t.get("zero_rows")), zeroRows(v, spec.shape()), spec.name() + ": rows all zero");
        }
    }

    private static List<Integer> ints(JsonNode a) {
        List<Integer> out = new ArrayList<>();
        a.forEach(x -> out.add(x.asInt()));
        return out;
    }

    private static List<Integer> zeroRows(float[] v, long[] shape) {
        List<Integer> out = new ArrayList<>();
        if (shape.length != 2) return out;
        int cols = (int) shape[1];
        for (int r = 0; r < shape[0]; r++) {
            boolean zero = true;
            for (int c = 0; c < cols && zero; c++) zero = v[r * cols + c] == 0f;
            if (zero) out.add(r);
        }
        return out;
    }
}
