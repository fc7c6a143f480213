package dev.jtune.model.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import org.junit.jupiter.api.Test;

/** {@link RandomInit#weights(double)}: the tests' scaled weights are the plain ones times the gain, norms aside. */
class RandomInitTest {
    @Test
    void gainScalesEveryTensorButTheNorms() {
        LlamaConfig c = LlamaPresets.tiny(40);
        RandomInit init = new RandomInit(c, 5);
        WeightSource plain = init.weights();
        WeightSource scaled = init.weights(12);
        int norms = 0;
        for (RandomInit.Spec s : init.specs()) {
            float[] v = init.values(s);
            assertArrayEquals(v, plain.floats(s.name()), s.name());
            assertArrayEquals(s.shape(), scaled.shape(s.name()), s.name());
            float[] g = scaled.floats(s.name());
            boolean norm = s.name().endsWith("norm.weight");
            norms += norm ? 1 : 0;
            for (int i = 0; i < v.length; i++) {
                // Bit for bit what the tests computed before this method existed: value × (float) gain.
                assertEquals(norm ? 1f : v[i] * 12f, g[i], s.name() + "[" + i + "]");
            }
        }
        assertEquals(2 * c.numHiddenLayers() + 1, norms);
        // The padding row stays zero; the rest did change.
        float[] embed = scaled.floats("model.embed_tokens.weight");
        int e = c.hiddenSize();
        for (int i = 0; i < e; i++) {
            assertEquals(0f, embed[c.padTokenId() * e + i]);
        }
        assertNotEquals(plain.floats("lm_head.weight")[0], scaled.floats("lm_head.weight")[0]);
        assertEquals("random init (seed 5)", plain.describe());
        assertEquals("random init (seed 5, gain 12.0)", scaled.describe());
    }
}
