package dev.jtune.data.dataset;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.config.DatasetConfig;
import dev.jtune.data.config.ExcessLengthStrategy;
import dev.jtune.data.config.TrainConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The pipeline over a synthetic source whose samples are known exactly. */
class PreprocessorTest {
    /** Sample k of dataset "d": k+1 tokens valued 1000*d+k, first token masked; length 0 and all-masked ones mixed in. */
    private static SampleSource synthetic(Map<String, List<Sample>> byPath) {
        return new SampleSource() {
            @Override
            public Stream<Sample> open(DatasetConfig ds, RowTally tally) {
                List<Sample> s = byPath.get(ds.path());
                tally.read(s.size() + 2);
                tally.skipped("bad row", 2);
                return s.stream();
            }

            @Override
            public List<Path> inputs(DatasetConfig ds) {
                return List.of();
            }
        };
    }

    private static Sample sample(int value, int length, boolean trained) {
        int[] ids = new int[length];
        int[] labels = new int[length];
        for (int i = 0; i < length; i++) {
            ids[i] = value;
            labels[i] = trained && i > 0 ? value : Sample.IGNORE_INDEX;
        }
        return new Sample(ids, labels);
    }

    private static TrainConfig config(String extra) {
        return TrainConfig.parse("""
                base_model: m
                sequence_len: 10
                datasets:
                  - path: a
                    type: alpaca
                  - path: b
                    type: alpaca
                """ + extra, Path.of("x.yml"));
    }

    private static Map<String, List<Sample>> data() {
        Map<String, List<Sample>> m = new HashMap<>();
        List<Sample> a = new ArrayList<>();
        for (int k = 0; k < 20; k++) a.add(sample(100 + k, 2 + k % 12, true)); // lengths 2..13: k%12 in 9..11 too long
        a.add(new Sample(new int[0], new int[0]));
        a.add(sample(999, 4, false));
        m.put("a", a);
        List<Sample> b = new ArrayList<>();
        for (int k = 0; k < 5; k++) b.add(sample(200 + k, 3, true));
        m.put("b", b);
        m.put("t", List.of(sample(300, 5, true), sample(301, 12, true)));
        return m;
    }

    @Test
    void dropCountsReasonsAndKeepsEveryOtherSampleOnce() {
        Preprocessor.Prepared p = Preprocessor.prepare(config("sample_packing: true\n"), synthetic(data()));
        PrepareReport r = p.report();
        // k%12 in {9,10,11} gives length 11..13 > 10: k = 9,10,11 → 3 samples.
        assertEquals(Map.of(PrepareReport.TOO_LONG, 3L, PrepareReport.EMPTY, 1L, PrepareReport.NOTHING_TRAINED, 1L), r.dropped());
        assertEquals(22 + 2 + 5 + 2, r.rowsRead());
        assertEquals(Map.of("bad row", 4L), r.skipped());
        assertEquals(17 + 5, r.train().samples());
        Map<Integer, Integer> seen = new HashMap<>();
        long tokens = 0;
        for (Row row : p.train()) {
            assertTrue(row.length() <= 10);
            for (int s = 0; s < row.samples(); s++) {
                seen.merge(row.inputIds()[row.cuSeqlens()[s]], 1, Integer::sum);
            }
            tokens += row.length();
        }
        assertEquals(22, seen.size());
        seen.values().forEach(c -> assertEquals(1, c));
        assertEquals(tokens, r.train().tokens());
        assertEquals(tokens / (10.0 * p.train().size()), r.train().packingEfficiency(), 1e-12);
        assertEquals(p.train().stream().mapToLong(Row::trainedTokens).sum(), r.train().trainedTokens());
        assertTrue(r.table().contains("longer than sequence_len"), r.table());
    }

    @Test
    void truncateKeepsTheFirstSequenceLenTokens() {
        Sample long13 = sample(7, 13, true);
        Sample cut = Preprocessor.fit(long13, 10, ExcessLengthStrategy.TRUNCATE);
        assertArrayEquals(java.util.Arrays.copyOf(long13.inputIds(), 10), cut.inputIds());
        assertArrayEquals(java.util.Arrays.copyOf(long13.labels(), 10), cut.labels());
        assertNull(Preprocessor.fit(long13, 10, ExcessLengthStrategy.DROP));
        Preprocessor.Prepared p = Preprocessor.prepare(config("excess_length_strategy: truncate\n"), synthetic(data()));
        assertEquals(3, p.report().truncated());
        assertEquals(null, p.report().dropped().get(PrepareReport.TOO_LONG));
        assertEquals(25, p.report().train().samples());
        assertEquals(25, p.train().size(), "no packing: one row per sample");
    }

    @Test
    void valSetSizeAndTestDatasets() {
        Preprocessor.Prepared p = Preprocessor.prepare(config("val_set_size: 4\nsample_packing: true\n"), synthetic(data()));
        assertEquals(18, p.report().train().samples());
        assertEquals(4, p.report().eval().samples());
        assertEquals(4, p.eval().stream().mapToInt(Row::samples).sum());
        Preprocessor.Prepared t = Preprocessor.prepare(config("test_datasets:\n  - path: t\n    type: alpaca\n"),
                synthetic(data()));
        assertEquals(22, t.report().train().samples());
        assertEquals(1, t.report().eval().samples(), "the 12-token test sample is dropped too");
        assertEquals(300, t.eval().get(0).inputIds()[0]);
    }

    @Test
    void shuffleIsSeededAndOptional() {
        Map<String, List<Sample>> d = data();
        List<Row> plain = Preprocessor.prepare(config("shuffle_merged_datasets: false\n"), synthetic(d)).train();
        List<Row> s42 = Preprocessor.prepare(config(""), synthetic(d)).train();
        List<Row> again = Preprocessor.prepare(config(""), synthetic(d)).train();
        List<Row> s7 = Preprocessor.prepare(config("seed: 7\n"), synthetic(d)).train();
        assertEquals(100, plain.get(0).inputIds()[0], "unshuffled keeps dataset order");
        assertEquals(firsts(s42), firsts(again));
        assertTrue(!firsts(s42).equals(firsts(plain)) && !firsts(s42).equals(firsts(s7)));
    }

    @Test
    void curriculumSamplingKeepsASingleDatasetInOrder() {
        Map<String, List<Sample>> d = data();
        String one = "datasets:\n  - path: a\n    type: alpaca\n";
        TrainConfig inOrder = TrainConfig.parse("base_model: m\nsequence_len: 10\nshuffle_merged_datasets: false\n" + one,
                Path.of("x.yml"));
        TrainConfig curriculum = TrainConfig.parse("base_model: m\nsequence_len: 10\ncurriculum_sampling: true\n" + one,
                Path.of("x.yml"));
        TrainConfig shuffled = TrainConfig.parse("base_model: m\nsequence_len: 10\n" + one, Path.of("x.yml"));
        List<Integer> plain = firsts(Preprocessor.prepare(inOrder, synthetic(d)).train());
        assertEquals(plain, firsts(Preprocessor.prepare(curriculum, synthetic(d)).train()));
        assertTrue(!plain.equals(firsts(Preprocessor.prepare(shuffled, synthetic(d)).train())));
        // Two datasets: merged and shuffled all the same (Axolotl warns), as shuffle_merged_datasets says.
        assertEquals(firsts(Preprocessor.prepare(config(""), synthetic(d)).train()),
                firsts(Preprocessor.prepare(config("curriculum_sampling: true\n"), synthetic(d)).train()));
        assertTrue(Preprocessor.shufflesTrain(shuffled) && !Preprocessor.shufflesTrain(curriculum));
    }

    @Test
    void minSampleLenDropsShorterSamplesBeforeTruncating() {
        // Axolotl (utils/data/utils.py _drop_outside_range / _filter_short_sequences): len(input_ids) < min_sample_len
        // is dropped; under truncate the filter runs on the full length first.
        Preprocessor.Prepared p = Preprocessor.prepare(config("min_sample_len: 5\n"), synthetic(data()));
        // a: lengths 2..13 for k=0..19 (k%12): 2,3,4 → k = 0,1,2,12,13,14 (6); b: five of length 3; the all-masked
        // 999 sample has length 4: dropped as short before "no trained tokens" is asked.
        assertEquals(Map.of(PrepareReport.TOO_SHORT, 12L, PrepareReport.TOO_LONG, 3L, PrepareReport.EMPTY, 1L),
                p.report().dropped());
        assertEquals(11, p.report().train().samples());
        for (Row row : p.train()) assertTrue(row.length() >= 5);
        Preprocessor.Prepared t = Preprocessor.prepare(config("min_sample_len: 12\nexcess_length_strategy: truncate\n"),
                synthetic(data()));
        assertEquals(2, t.report().train().samples(), "lengths 12 and 13 stay, both cut to 10");
        assertEquals(2, t.report().truncated());
    }

    @Test
    void exactDeduplicationKeepsTheFirstOfEachSplitInOrder() {
        Map<String, List<Sample>> d = new HashMap<>();
        d.put("a", List.of(sample(1, 3, true), sample(2, 3, true), sample(1, 3, true), sample(3, 4, true)));
        // b repeats a's first sample and one whose ids match but whose labels differ (not a duplicate: other row).
        Sample otherLabels = new Sample(new int[] {2, 2, 2}, new int[] {Sample.IGNORE_INDEX, Sample.IGNORE_INDEX, 2});
        d.put("b", List.of(sample(1, 3, true), otherLabels, sample(2, 3, true), sample(4, 3, true)));
        // The test split repeats a training sample: kept, Axolotl deduplicates each split on its own for SFT.
        d.put("t", List.of(sample(1, 3, true), sample(5, 3, true), sample(5, 3, true)));
        String cfg = "shuffle_merged_datasets: false\ntest_datasets:\n  - path: t\n    type: alpaca\n";
        Preprocessor.Prepared without = Preprocessor.prepare(config(cfg), synthetic(d));
        assertEquals(8, without.report().train().samples());
        Preprocessor.Prepared p = Preprocessor.prepare(config(cfg + "dataset_exact_deduplication: true\n"), synthetic(d));
        assertEquals(List.of(1, 2, 3, 2, 4), firsts(p.train()), "first occurrences, merge order kept");
        assertArrayEquals(otherLabels.labels(), p.train().get(3).labels());
        assertEquals(List.of(1, 5), firsts(p.eval()));
        assertEquals(4L, p.report().dropped().get(PrepareReport.DUPLICATE), "3 in training, 1 in test");
        // Before val_set_size splits, as Axolotl's create_train_validation_split.
        Preprocessor.Prepared v = Preprocessor.prepare(config("val_set_size: 1\ndataset_exact_deduplication: true\n"),
                synthetic(d));
        assertEquals(5, v.report().train().samples() + v.report().eval().samples());
    }

    private static List<Integer> firsts(List<Row> rows) {
        return rows.stream().map(r -> r.inputIds()[0]).toList();
    }
}
