package dev.jtune.trainer.setup;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.llama.WeightSource;
import java.io.InputStream;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link VocabGrowth} against transformers 5.18's {@code resize_token_embeddings} on a tiny Llama
 * ({@code fixtures/resize_embeddings_expected.json}, written by tools/reference/resize_embeddings_expected.py).
 */
class VocabGrowthTest {
    private static JsonNode cases;

    @BeforeAll
    static void load() throws Exception {
        try (InputStream in = VocabGrowthTest.class.getResourceAsStream("/fixtures/resize_embeddings_expected.json")) {
            cases = new ObjectMapper().readTree(in).get("cases");
        }
    }

    private static float[] flat(JsonNode rows) {
        int cols = rows.get(0).size();
        float[] out = new float[rows.size() * cols];
        for (int r = 0; r < rows.size(); r++) {
            for (int c = 0; c < cols; c++) {
                out[r * cols + c] = (float) rows.get(r).get(c).asDouble();
            }
        }
        return out;
    }

    @Test
    void meanResizingOfASingularCovarianceGivesTransformersMeanRows() {
        JsonNode c = cases.get("mean_rank_deficient");
        VocabGrowth g = new VocabGrowth(c.get("new_rows").asInt(), true, 0.02, 3);
        for (String[] m : new String[][] {{"embed_old", "embed_new", VocabGrowth.EMBED}, {"head_old", "head_new", VocabGrowth.HEAD}}) {
            float[] ours = g.grownRows(flat(c.get(m[0])), c.get("old_rows").asInt(), 8, m[2]);
            float[] theirs = flat(c.get(m[1]));
            assertEquals(theirs.length, ours.length);
            for (int i = 0; i < ours.length; i++) {
                assertEquals(theirs[i], ours[i], 1e-7, m[2] + " value " + i);
            }
        }
    }

    @Test
    void meanResizingOfAFullRankCovarianceDrawsCloseToTheMeanAsTransformersDoes() {
        JsonNode c = cases.get("mean_full_rank");
        int old = c.get("old_rows").asInt();
        VocabGrowth g = new VocabGrowth(c.get("new_rows").asInt(), true, 0.02, 3);
        float[] oldRows = flat(c.get("embed_old"));
        float[] ours = g.grownRows(oldRows, old, 8, VocabGrowth.EMBED);
        float[] theirs = flat(c.get("embed_new"));
        float[] mean = VocabGrowth.mean(oldRows, old, 8);
        boolean drawn = false;
        for (int i = 0; i < ours.length; i++) {
            if (i < old * 8) {
                assertEquals(theirs[i], ours[i], 0.0, "old value " + i + " kept");
                continue;
            }
            // The draws' spread is sqrt(1e-9 * variance) < 2e-5 here: both sides sit within 1e-4 of the mean.
            assertEquals(theirs[i], ours[i], 1e-4, "new value " + i);
            drawn |= ours[i] != mean[i % 8];
        }
        assertTrue(drawn, "a positive definite covariance gives draws, not the mean itself");
    }

    @Test
    void meanResizingDrawsHaveTheScaledCovariance() {
        JsonNode c = cases.get("mean_full_rank");
        int old = c.get("old_rows").asInt();
        float[] oldRows = flat(c.get("embed_old"));
        int n = 20_000;
        float[] ours = new VocabGrowth(old + n, true, 0.02, 11).grownRows(oldRows, old, 8, VocabGrowth.EMBED);
        float[] mean = VocabGrowth.mean(oldRows, old, 8);
        double[][] expected = VocabGrowth.scaledCovariance(oldRows, old, 8, mean);
        for (int i = 0; i < 8; i++) {
            double var = 0;
            for (int r = old; r < old + n; r++) {
                double d = ours[r * 8 + i] - (double) mean[i];
                var += d * d;
            }
            var /= n;
            // float rounding of mean + 1e-5-sized draws adds a little: within 10% of the variance.
            assertEquals(expected[i][i], var, 0.1 * expected[i][i], "variance of column " + i);
        }
    }

    @Test
    void axolotlsDefaultDrawsNewRowsFromTheInitializerRangeAsTransformersDoes() {
        JsonNode c = cases.get("normal");
        int old = c.get("old_rows").asInt();
        int rows = c.get("new_rows").asInt();
        float[] oldRows = new float[old * 8];
        java.util.Arrays.fill(oldRows, 0.7f);
        for (String name : new String[] {VocabGrowth.EMBED, VocabGrowth.HEAD}) {
            float[] ours = new VocabGrowth(rows, false, 0.02, 5).grownRows(oldRows, old, 8, name);
            double sum = 0;
            double sq = 0;
            int count = 0;
            for (int i = old * 8; i < ours.length; i++) {
                sum += ours[i];
                count++;
            }
            double mean = sum / count;
            for (int i = old * 8; i < ours.length; i++) {
                sq += (ours[i] - mean) * (ours[i] - mean);
            }
            double std = Math.sqrt(sq / (count - 1));
            String key = name.equals(VocabGrowth.EMBED) ? "embed" : "head";
            double theirStd = c.get(key + "_new_std").asDouble();
            // 16,000 draws: the standard error of the std is 0.6%, of the mean 1.6e-4.
            assertEquals(theirStd, std, 0.03 * theirStd, key + " std vs transformers");
            assertEquals(0.02, std, 0.03 * 0.02, key + " std vs initializer_range");
            assertEquals(0.0, mean, 6e-4, key + " mean");
            assertEquals(0.7f, ours[old * 8 - 1], 0f, "old rows kept");
        }
        assertTrue(c.get("old_rows_kept").asBoolean());
    }

    @Test
    void theDecoratorServesGrownEmbeddingAndHeadOnly() {
        float[] embed = {1, 2, 3, 4, 5, 6};
        float[] head = {6, 5, 4, 3, 2, 1};
        float[] norm = {1, 1};
        WeightSource base = WeightSource.of(
                Map.of(VocabGrowth.EMBED, embed, VocabGrowth.HEAD, head, "model.norm.weight", norm),
                Map.of(VocabGrowth.EMBED, new long[] {3, 2}, VocabGrowth.HEAD, new long[] {3, 2},
                        "model.norm.weight", new long[] {2}), "test");
        WeightSource grown = new VocabGrowth(5, false, 0.02, 1).grow(base);
        assertArrayEquals(new long[] {5, 2}, grown.shape(VocabGrowth.EMBED));
        assertArrayEquals(new long[] {5, 2}, grown.shape(VocabGrowth.HEAD));
        assertArrayEquals(new long[] {2}, grown.shape("model.norm.weight"));
        float[] e = grown.floats(VocabGrowth.EMBED);
        float[] h = grown.floats(VocabGrowth.HEAD);
        assertEquals(10, e.length);
        assertArrayEquals(embed, java.util.Arrays.copyOf(e, 6));
        assertArrayEquals(head, java.util.Arrays.copyOf(h, 6));
        assertNotEquals(e[6], h[6], "embedding and head draw from their own streams");
        assertArrayEquals(e, new VocabGrowth(5, false, 0.02, 1).grow(base).floats(VocabGrowth.EMBED),
                "the same seed, the same rows");
        assertTrue(grown.describe().contains("grown to 5"));
    }
}
