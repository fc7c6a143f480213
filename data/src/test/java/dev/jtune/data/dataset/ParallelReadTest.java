package dev.jtune.data.dataset;

import static dev.jtune.data.dataset.DatasetTestSupport.config;
import static dev.jtune.data.dataset.DatasetTestSupport.dataset;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.data.config.DatasetConfig;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.tokenizer.ByteLevelTokenizerBuilder;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link DatasetReader} builds rows on worker threads, a chunk at a time; its samples, counts and errors must be
 * exactly those of a plain sequential loop over {@link JsonRows} and the {@link SampleBuilder} (written out here
 * as the reference), for JSON-lines and JSON-array files with bad rows in the middle, and whatever the chunk size
 * and the number of workers.
 */
class ParallelReadTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** (rows per chunk, workers): one row per chunk, chunks that do not divide the rows, the default; 1–4 threads. */
    private static final int[][] SHAPES = {{1, 4}, {3, 2}, {7, 3}, {DatasetReader.CHUNK, 1}, {DatasetReader.CHUNK, 2}};

    static Tokenizer tok;

    @TempDir
    Path dir;

    @BeforeAll
    static void tokenizer(@TempDir Path tokDir) {
        ByteLevelTokenizerBuilder.writeDefault(tokDir);
        tok = Tokenizer.load(tokDir);
    }

    @AfterAll
    static void close() {
        tok.close();
    }

    /** What a read gave: the samples in order, the report's counts, and the error that ended it (or null). */
    private record Outcome(List<Sample> samples, long rowsRead, long samplesCounted, Map<String, Long> skipped, String error) {
        void assertSame(Outcome actual, String what) {
            assertEquals(error, actual.error, what + ": error");
            assertEquals(samples.size(), actual.samples.size(), what + ": samples");
            for (int i = 0; i < samples.size(); i++) {
                assertArrayEquals(samples.get(i).inputIds(), actual.samples.get(i).inputIds(), what + ": ids of sample " + i);
                assertArrayEquals(samples.get(i).labels(), actual.samples.get(i).labels(), what + ": labels of sample " + i);
            }
            assertEquals(rowsRead, actual.rowsRead, what + ": rows read");
            assertEquals(samplesCounted, actual.samplesCounted, what + ": samples counted");
            assertEquals(skipped, actual.skipped, what + ": skipped");
        }
    }

    /** The reference: one row after another on this thread, as the reader did before it had workers. */
    private Outcome sequential(TrainConfig cfg) {
        DatasetConfig ds = dataset(cfg);
        SampleBuilder builder = SampleBuilder.of(ds, cfg, tok, dir);
        List<Sample> samples = new ArrayList<>();
        long read = 0;
        Map<String, Long> skipped = new TreeMap<>();
        try (JsonRows rows = JsonRows.open(DatasetFiles.resolve(ds, dir))) {
            while (true) {
                SourceRow row;
                try {
                    if (!rows.hasNext()) break;
                    row = rows.next();
                } catch (DatasetException e) {
                    if (!(ds.skipInvalid() && JsonRows.recoverable(e))) throw e;
                    read++;
                    skipped.merge(e.reason(), 1L, Long::sum);
                    continue;
                }
                read++;
                try {
                    samples.addAll(builder.build(row));
                } catch (DatasetException e) {
                    if (!ds.skipInvalid()) throw e;
                    skipped.merge(e.reason(), 1L, Long::sum);
                }
            }
        } catch (DatasetException e) {
            return new Outcome(samples, -1, -1, Map.of(), e.getMessage());
        }
        return new Outcome(samples, read, samples.size(), skipped, null);
    }

    /** The reader with {@code chunk} rows per chunk and {@code workers} threads, consumed until the end or an error. */
    private Outcome parallel(TrainConfig cfg, int chunk, int workers) {
        LoadReport report = new LoadReport();
        List<Sample> samples = new ArrayList<>();
        try (Stream<Sample> s = DatasetReader.samples(dataset(cfg), cfg, tok, dir, report, chunk, workers)) {
            Iterator<Sample> it = s.iterator();
            while (it.hasNext()) samples.add(it.next());
        } catch (DatasetException e) {
            // The sequential reference has no counts after an error either: compare the samples before it.
            return new Outcome(samples, -1, -1, Map.of(), e.getMessage());
        }
        return new Outcome(samples, report.rowsRead(), report.samples(), report.skippedByReason(), null);
    }

    private void assertSameEveryShape(TrainConfig cfg, String file) {
        Outcome expected = sequential(cfg);
        for (int[] shape : SHAPES) {
            expected.assertSame(parallel(cfg, shape[0], shape[1]), file + " in chunks of " + shape[0] + " on " + shape[1] + " workers");
        }
    }

    /** Alpaca rows of varied lengths (some with an input, one with an empty output, which gives no response tokens). */
    private static List<String> rows(int n, long seed) {
        Random r = new Random(seed);
        String[] words = "the a model of data to train token river stone light é 東京 🙂 and".split(" ");
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ObjectNode o = JSON.createObjectNode();
            o.put("instruction", "Row " + i + ": " + text(r, words, 1 + r.nextInt(12)));
            if (r.nextInt(3) == 0) o.put("input", text(r, words, 1 + r.nextInt(8)));
            o.put("output", i == n / 3 ? "" : text(r, words, 1 + r.nextInt(40)));
            out.add(o.toString());
        }
        return out;
    }

    private static String text(Random r, String[] words, int n) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n; i++) b.append(i == 0 ? "" : " ").append(words[r.nextInt(words.length)]);
        return b.toString();
    }

    /** {@code rows} with bad rows put in: a missing field, a wrong type, an array row, and (JSON lines) a malformed line. */
    private static List<String> withBadRows(List<String> rows, boolean malformedLine) {
        List<String> out = new ArrayList<>(rows);
        out.add(41, "{\"instruction\": \"no output\"}");
        out.add(97, "{\"instruction\": \"x\", \"output\": 5}");
        out.add(150, "[1, 2]");
        if (malformedLine) out.add(120, "{\"instruction\": \"x\" \"output\": \"y\"}");
        return out;
    }

    private TrainConfig alpaca(String file, boolean skipInvalid) {
        return config("datasets:\n  - path: " + file + "\n    type: alpaca\n" + (skipInvalid ? "    skip_invalid: true\n" : ""));
    }

    @Test
    void jsonLinesGiveTheSequentialSamplesCountsAndErrors() throws IOException {
        List<String> lines = withBadRows(rows(300, 1), true);
        lines.add(60, "");
        lines.add(61, "   ");
        Files.writeString(dir.resolve("a.jsonl"), String.join("\n", lines) + "\n");

        Outcome skipping = sequential(alpaca("a.jsonl", true));
        assertNull(skipping.error());
        assertEquals(304, skipping.rowsRead());
        assertEquals(4, skipping.skipped().values().stream().mapToLong(Long::longValue).sum(), skipping.skipped().toString());
        assertSameEveryShape(alpaca("a.jsonl", true), "a.jsonl, skip_invalid");

        // Without skip_invalid the first bad row (line 42: blank lines count as lines) ends the read, as before.
        Outcome failing = sequential(alpaca("a.jsonl", false));
        assertEquals(dir.resolve("a.jsonl").toAbsolutePath() + ":42: field 'output' missing (expected a string)", failing.error());
        assertEquals(41, failing.samples().size());
        assertSameEveryShape(alpaca("a.jsonl", false), "a.jsonl");
    }

    @Test
    void aMalformedLineEndsTheReadWhereItFalls() throws IOException {
        List<String> lines = rows(200, 2);
        lines.add(130, "{\"instruction\": \"x\" \"output\": \"y\"}");
        Files.writeString(dir.resolve("m.jsonl"), String.join("\n", lines) + "\n");
        Outcome failing = sequential(alpaca("m.jsonl", false));
        assertNotNull(failing.error());
        assertTrue(failing.error().startsWith(dir.resolve("m.jsonl").toAbsolutePath() + ":131: malformed JSON: "), failing.error());
        assertEquals(130, failing.samples().size());
        assertSameEveryShape(alpaca("m.jsonl", false), "m.jsonl");
    }

    @Test
    void jsonArraysGiveTheSequentialSamplesCountsAndErrors() throws IOException {
        List<String> rows = withBadRows(rows(250, 3), false);
        Files.writeString(dir.resolve("a.json"), "[\n" + String.join(",\n", rows) + "\n]\n");
        assertSameEveryShape(alpaca("a.json", true), "a.json, skip_invalid");
        assertEquals(dir.resolve("a.json").toAbsolutePath() + ":43: field 'output' missing (expected a string)",
                sequential(alpaca("a.json", false)).error());
        assertSameEveryShape(alpaca("a.json", false), "a.json");

        // A JSON file malformed in the middle: its rows up to there, then the parser's error (not skippable).
        Files.writeString(dir.resolve("b.json"), "[\n" + String.join(",\n", rows(250, 4).subList(0, 180)) + ",\n{\"instruction\": }\n]\n");
        Outcome broken = sequential(alpaca("b.json", true));
        assertNotNull(broken.error());
        assertTrue(broken.error().startsWith(dir.resolve("b.json").toAbsolutePath() + ":182: malformed JSON: "), broken.error());
        assertEquals(180, broken.samples().size());
        assertSameEveryShape(alpaca("b.json", true), "b.json");
    }

    @Test
    void severalFilesAndSlicesKeepTheirOrder() throws IOException {
        Files.createDirectories(dir.resolve("d"));
        Files.writeString(dir.resolve("d/1.jsonl"), String.join("\n", withBadRows(rows(170, 5), true)) + "\n");
        Files.writeString(dir.resolve("d/2.json"), "[" + String.join(",", rows(90, 6)) + "]");
        assertSameEveryShape(alpaca("d", true), "d/");
        TrainConfig sliced = config("datasets:\n  - {path: d, type: alpaca, skip_invalid: true, split: 'train[-30%:]+train[:20]'}\n");
        // The reference for the slices: a file holding just the rows they select, read sequentially.
        List<String> all = new ArrayList<>(withBadRows(rows(170, 5), true));
        all.addAll(rows(90, 6));
        StringBuilder selected = new StringBuilder();
        for (var instruction : dataset(sliced).splitSpec().instructions()) {
            long[] range = instruction.rows(all.size());
            for (long i = range[0]; i < range[1]; i++) selected.append(all.get((int) i)).append('\n');
        }
        Files.writeString(dir.resolve("flat.jsonl"), selected);
        Outcome expected = sequential(alpaca("flat.jsonl", true));
        assertEquals(99, expected.rowsRead(), "79 rows from the end, 20 from the start");
        for (int[] shape : SHAPES) {
            Outcome actual = parallel(sliced, shape[0], shape[1]);
            assertEquals(expected.samples().size(), actual.samples().size());
            for (int i = 0; i < expected.samples().size(); i++) {
                assertArrayEquals(expected.samples().get(i).inputIds(), actual.samples().get(i).inputIds(), "sample " + i);
            }
            assertEquals(expected.rowsRead(), actual.rowsRead());
            assertEquals(expected.skipped(), actual.skipped());
        }
    }

    @Test
    void preparedRowsEqualThoseOfTheSequentialRead() throws IOException {
        List<String> lines = withBadRows(rows(400, 7), true);
        Files.writeString(dir.resolve("p.jsonl"), String.join("\n", lines) + "\n");
        // A short sequence_len so that some samples are dropped as too long, in the middle of the file.
        TrainConfig cfg = config("sequence_len: 120\nsample_packing: true\nval_set_size: 0.05\nexcess_length_strategy: drop\n"
                + "datasets:\n  - path: p.jsonl\n    type: alpaca\n    skip_invalid: true\n");
        SampleSource reference = SampleSource.of(dir, DatasetReader.VERSION, (ds, tally) -> {
            Outcome o = sequential(cfg);
            tally.read(o.rowsRead());
            tally.skipped(o.skipped());
            return o.samples().stream();
        });
        Preprocessor.Prepared expected = Preprocessor.prepare(cfg, reference);
        Preprocessor.Prepared actual = Preprocessor.prepare(cfg, DatasetReader.source(cfg, tok, dir));
        assertTrue(expected.report().dropped().getOrDefault(PrepareReport.TOO_LONG, 0L) > 0, expected.report().toString());
        assertEquals(expected.report(), actual.report());
        for (var split : List.of(List.of(expected.train(), actual.train()), List.of(expected.eval(), actual.eval()))) {
            assertEquals(split.get(0).size(), split.get(1).size());
            for (int i = 0; i < split.get(0).size(); i++) {
                Row e = split.get(0).get(i);
                Row a = split.get(1).get(i);
                assertArrayEquals(e.inputIds(), a.inputIds(), "row " + i);
                assertArrayEquals(e.labels(), a.labels(), "row " + i);
                assertArrayEquals(e.cuSeqlens(), a.cuSeqlens(), "row " + i);
            }
        }
    }
}
