package dev.jtune.data.dataset;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class BatchesTest {
    private static final int PAD = 7;

    private static Sample sample(Random r, int n) {
        int[] ids = new int[n];
        int[] labels = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = 100 + r.nextInt(1000);
            labels[i] = r.nextInt(3) == 0 ? Sample.IGNORE_INDEX : ids[i];
        }
        return new Sample(ids, labels);
    }

    private static List<Row> rows(Random r, int count, boolean packed) {
        List<Sample> samples = new ArrayList<>();
        for (int i = 0; i < count; i++) samples.add(sample(r, 1 + r.nextInt(30)));
        return packed ? Packer.pack(samples, 64) : Packer.single(samples);
    }

    /** Expected value of each field at (row, column), computed element by element from the row alone. */
    private static void checkAgainstRows(Batch b, List<Row> members, int expectedLength) {
        assertEquals(members.size(), b.rows());
        assertEquals(expectedLength, b.length());
        for (int r = 0; r < members.size(); r++) {
            Row row = members.get(r);
            for (int i = 0; i < b.length(); i++) {
                int at = r * b.length() + i;
                boolean real = i < row.length();
                assertEquals(real ? row.inputIds()[i] : PAD, b.inputIds()[at]);
                assertEquals(real ? row.labels()[i] : Sample.IGNORE_INDEX, b.labels()[at]);
                assertEquals(real ? 1 : 0, b.attentionMask()[at]);
                int segment = 0;
                while (segment < row.samples() && row.cuSeqlens()[segment + 1] <= i) segment++;
                assertEquals(segment, b.segmentIds()[at], "segment at " + r + "," + i);
                int start = segment < row.samples() ? row.cuSeqlens()[segment] : row.cuSeqlens()[row.samples() - 1];
                assertEquals(i - start, b.positionIds()[at], "position at " + r + "," + i);
            }
        }
    }

    @Test
    void dynamicPaddingToTheLongestRow() {
        Random r = new Random(5);
        for (boolean packed : new boolean[] {false, true}) {
            List<Row> rows = rows(r, 40, packed);
            List<Row> members = rows.subList(0, 4);
            Batch b = Batches.collate(members, PAD, 0);
            int longest = members.stream().mapToInt(Row::length).max().orElseThrow();
            checkAgainstRows(b, members, longest);
            assertEquals(members.stream().anyMatch(x -> x.samples() > 1), b.packed());
            assertEquals(members.stream().mapToInt(Row::length).sum(), b.tokens());
            assertEquals(members.stream().mapToInt(Row::trainedTokens).sum(), b.trainedTokens());
        }
    }

    @Test
    void padToSequenceLen() {
        List<Row> members = rows(new Random(6), 3, false);
        checkAgainstRows(Batches.collate(members, PAD, 100), members, 100);
        assertFalse(Batches.collate(members, PAD, 100).packed());
    }

    @Test
    void everyEpochVisitsEveryRowOnceInASeededOrder() {
        List<Row> rows = rows(new Random(7), 50, false);
        Batches batches = new Batches(rows, 4, 42, true, PAD, 0);
        assertEquals(13, batches.size());
        int[] e0 = batches.order(0);
        int[] sorted = e0.clone();
        Arrays.sort(sorted);
        for (int i = 0; i < sorted.length; i++) assertEquals(i, sorted[i]);
        assertArrayEquals(e0, new Batches(rows, 4, 42, true, PAD, 0).order(0), "same (seed, epoch), same order");
        assertFalse(Arrays.equals(e0, batches.order(1)), "epochs differ");
        assertFalse(Arrays.equals(e0, new Batches(rows, 4, 43, true, PAD, 0).order(0)), "seeds differ");
        // Batch k of epoch e holds rows order[4k .. 4k+4).
        Batch b5 = batches.get(0, 5);
        checkAgainstRows(b5, List.of(rows.get(e0[20]), rows.get(e0[21]), rows.get(e0[22]), rows.get(e0[23])), b5.length());
        Batch last = batches.get(0, 12);
        assertEquals(2, last.rows(), "the last batch keeps the remainder");
        // Resuming at batch 9 yields exactly the tail of the epoch.
        Iterator<Batch> resumed = new Batches(rows, 4, 42, true, PAD, 0).epoch(1, 9);
        for (int k = 9; k < 13; k++) assertArrayEquals(batches.get(1, k).inputIds(), resumed.next().inputIds());
        assertFalse(resumed.hasNext());
    }

    @Test
    void evaluationKeepsStoredOrder() {
        List<Row> rows = rows(new Random(8), 10, true);
        Batches eval = new Batches(rows, 3, 42, false, PAD, 0);
        assertArrayEquals(eval.order(0), eval.order(3));
        assertEquals(0, eval.order(2)[0]);
        assertNotEquals(0, eval.size());
        assertTrue(eval.get(0, 0).packed() || rows.subList(0, 3).stream().allMatch(x -> x.samples() == 1));
    }
}
