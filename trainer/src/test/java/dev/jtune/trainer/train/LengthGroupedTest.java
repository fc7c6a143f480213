package dev.jtune.trainer.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.dataset.Batch;
import dev.jtune.data.dataset.Batches;
import dev.jtune.data.dataset.Row;
import dev.jtune.data.dataset.Sample;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@code group_by_length}: the order against transformers' own {@code get_length_grouped_indices}, run on the
 * permutation it drew (length-grouped/length_grouped.json, written by make_fixture.py beside it with transformers
 * 5.18.0 and torch 2.13.0; Axolotl pins transformers 5.14.1, whose function is the same code), then the plan
 * built from rows.
 */
class LengthGroupedTest {
    @Test
    void sameOrderAsTransformersOnTheSamePermutation() throws Exception {
        JsonNode fixture;
        try (InputStream in = getClass().getResourceAsStream("/length-grouped/length_grouped.json")) {
            fixture = new ObjectMapper().readTree(in);
        }
        assertEquals(7, fixture.get("cases").size());
        for (JsonNode c : fixture.get("cases")) {
            int[] lengths = ints(c.get("lengths"));
            int[] got = LengthGrouped.order(lengths, c.get("batch_size").asInt(), ints(c.get("randperm")));
            assertArrayEquals(ints(c.get("indices")), got, "n=" + lengths.length + " batch=" + c.get("batch_size"));
        }
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    @Test
    void megabatchSizeAsTransformers() {
        assertEquals(2, LengthGrouped.megabatchSize(10, 2)); // 10 // 8 = 1
        assertEquals(4, LengthGrouped.megabatchSize(7, 4)); // 0 → 1
        assertEquals(50 * 8, LengthGrouped.megabatchSize(100_000, 8)); // capped at 50
        assertEquals(12 * 3, LengthGrouped.megabatchSize(150, 3)); // 150 // 12 = 12
    }

    @Test
    void thePlanGroupsRowsAndItsRandomPartIsThePlainShuffle() {
        Random r = new Random(3);
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            int len = 2 + r.nextInt(60);
            int[] ids = new int[len];
            Arrays.fill(ids, 5);
            rows.add(Row.of(new Sample(ids, ids.clone())));
        }
        int mbs = 2;
        int ga = 3;
        LengthGrouped plan = new LengthGrouped(rows, mbs, mbs * ga, 42, 0, 0);
        Batches plain = new Batches(rows, mbs, 42, true, 0, 0);
        assertEquals(plain.size(), plan.batchesPerEpoch());
        int[] lengths = rows.stream().mapToInt(Row::length).toArray();
        for (int epoch = 0; epoch < 2; epoch++) {
            int[] expected = LengthGrouped.order(lengths, mbs * ga, plain.order(epoch));
            assertArrayEquals(expected, plan.order(epoch));
            // The first micro-batch holds the longest row; padding per batch is far below the plain shuffle's.
            assertEquals(Arrays.stream(lengths).max().orElseThrow(), plan.batch(epoch, 0).length());
            assertTrue(padding(epoch, plan) * 3 < padding(epoch, plain), "grouped padding should be far smaller");
        }
        assertNotEquals(Arrays.toString(plan.order(0)), Arrays.toString(plan.order(1)));
    }

    private static long padding(int epoch, LengthGrouped plan) {
        long pad = 0;
        for (int i = 0; i < plan.batchesPerEpoch(); i++) {
            Batch b = plan.batch(epoch, i);
            pad += (long) b.rows() * b.length() - b.tokens();
        }
        return pad;
    }

    private static long padding(int epoch, Batches plain) {
        long pad = 0;
        for (int i = 0; i < plain.size(); i++) {
            Batch b = plain.get(epoch, i);
            pad += (long) b.rows() * b.length() - b.tokens();
        }
        return pad;
    }
}
