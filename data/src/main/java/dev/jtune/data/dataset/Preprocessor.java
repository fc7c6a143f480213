package dev.jtune.data.dataset;

import dev.jtune.data.config.DatasetConfig;
import dev.jtune.data.config.ExcessLengthStrategy;
import dev.jtune.data.config.Streaming;
import dev.jtune.data.config.TrainConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Samples to rows, in memory: reads every dataset through a {@link SampleSource}, applies
 * {@code excess_length_strategy}, holds out the evaluation split ({@code test_datasets}, else
 * {@code val_set_size}), shuffles the training samples ({@code shuffle_merged_datasets}) and packs each split
 * ({@code sample_packing}) or makes one row per sample. {@link PreparedDataset#prepareOrLoad} caches the
 * result on disk.
 *
 * <p>Order of steps, each deterministic given {@code seed}: merge datasets in config order → length filter
 * (so {@code val_set_size} counts usable samples) → split ({@link Split#of}) → shuffle training samples with
 * {@code seed} → pack ({@link Packer}). The length filter also drops samples under {@code min_sample_len} tokens,
 * and {@code dataset_exact_deduplication} then drops repeated samples within each split, as Axolotl does. Samples with no tokens, or none trained, are dropped and counted:
 * they would only cost compute.
 */
public final class Preprocessor {
    private Preprocessor() {}

    /** The rows of both splits and the report. */
    public record Prepared(List<Row> train, List<Row> eval, PrepareReport report) {
        public Prepared {
            train = List.copyOf(train);
            eval = List.copyOf(eval);
        }
    }

    /** Runs the whole pipeline for {@code config}. */
    public static Prepared prepare(TrainConfig config, SampleSource source) {
        int seqLen = config.sequenceLen();
        if (seqLen < 1) throw new IllegalArgumentException("sequence_len must be at least 1, got " + seqLen);
        if (config.streaming().isPresent()) return streamed(config, source, config.streaming().get());
        Counts counts = new Counts();
        List<Sample> train = read(config.datasets(), source, config, counts);
        List<Sample> eval;
        if (!config.testDatasets().isEmpty()) {
            eval = read(config.testDatasets(), source, config, counts);
        } else {
            Split split = Split.of(train, config.valSetSize(), config.seed());
            train = split.train();
            eval = split.eval();
        }
        if (shufflesTrain(config)) train = Split.shuffled(train, config.seed());
        List<Row> trainRows = rows(train, config.samplePacking(), seqLen);
        List<Row> evalRows = rows(eval, config.samplePacking(), seqLen);
        PrepareReport report = new PrepareReport(counts.read, counts.skipped, counts.dropped, counts.truncated, seqLen,
                config.samplePacking(), PrepareReport.SplitStats.of(train.size(), trainRows, seqLen),
                eval.isEmpty() ? PrepareReport.SplitStats.EMPTY : PrepareReport.SplitStats.of(eval.size(), evalRows, seqLen));
        return new Prepared(trainRows, evalRows, report);
    }

    /**
     * Axolotl's streamed, packed path ({@link Streaming}; utils/data/streaming.py at
     * {@link dev.jtune.data.config.AxolotlKeys#COMMIT}): the one dataset's rows, buffer-shuffled when
     * {@code shuffle_merged_datasets} ({@link #bufferShuffled}), then per buffer of {@code bufferSize} rows: the
     * rows' samples with {@code 2 <= length <= sequence_len} (Axolotl's filter_sequences_by_length), drawn in a seeded
     * random order (Axolotl's RandomSampler), first-fit into rows ({@link Packer#firstFit}). The rows keep that
     * order (Axolotl streams them; the trainer does not reshuffle). Evaluation rows come from {@code test_datasets}
     * by the ordinary path, as Axolotl loads those unstreamed.
     */
    static Prepared streamed(TrainConfig config, SampleSource source, Streaming streaming) {
        int seqLen = config.sequenceLen();
        Counts counts = new Counts();
        java.util.Random rng = new java.util.Random(config.seed());
        List<List<Sample>> byRow = new ArrayList<>();
        RowTally tally = new RowTally();
        try (Stream<List<Sample>> rows = source.openByRow(config.datasets().get(0), tally)) {
            rows.forEachOrdered(byRow::add);
        }
        counts.read += tally.read();
        tally.addTo(counts.skipped);
        if (config.shuffleMergedDatasets()) byRow = bufferShuffled(byRow, streaming.bufferSize(), rng);
        List<Row> trainRows = new ArrayList<>();
        long kept = 0;
        for (int from = 0; from < byRow.size(); from += streaming.bufferSize()) {
            List<Sample> buffer = new ArrayList<>();
            for (List<Sample> row : byRow.subList(from, Math.min(byRow.size(), from + streaming.bufferSize()))) {
                for (Sample s : row) {
                    if (s.length() == 0) counts.drop(PrepareReport.EMPTY);
                    else if (s.length() < 2) counts.drop(PrepareReport.TOO_SHORT);
                    else if (s.length() > seqLen) counts.drop(PrepareReport.TOO_LONG);
                    else buffer.add(s);
                }
            }
            List<Sample> drawn = new ArrayList<>(buffer);
            java.util.Collections.shuffle(drawn, rng);
            kept += drawn.size();
            trainRows.addAll(packFirstFit(drawn, streaming.capacity(), streaming.binSize()));
        }
        List<Sample> eval = read(config.testDatasets(), source, config, counts);
        List<Row> evalRows = rows(eval, config.samplePacking(), seqLen);
        PrepareReport report = new PrepareReport(counts.read, counts.skipped, counts.dropped, counts.truncated, seqLen,
                true, PrepareReport.SplitStats.of(kept, trainRows, streaming.capacity()),
                eval.isEmpty() ? PrepareReport.SplitStats.EMPTY : PrepareReport.SplitStats.of(eval.size(), evalRows, seqLen));
        return new Prepared(trainRows, evalRows, report);
    }

    /** {@code samples} packed in their order by {@link Packer#firstFit}, one row per bin. */
    public static List<Row> packFirstFit(List<Sample> samples, int capacity, int binSize) {
        int[] lengths = new int[samples.size()];
        for (int i = 0; i < lengths.length; i++) lengths[i] = samples.get(i).length();
        List<Row> out = new ArrayList<>();
        for (int[] bin : Packer.firstFit(lengths, capacity, binSize)) {
            List<Sample> members = new ArrayList<>(bin.length);
            for (int i : bin) members.add(samples.get(i));
            out.add(Row.pack(members));
        }
        return out;
    }

    /**
     * Hugging Face datasets' buffered shuffle of a stream ({@code IterableDataset.shuffle(seed, buffer_size)},
     * BufferShuffledExamplesIterable): a buffer of {@code bufferSize} items fills first; then each new item swaps
     * with a uniformly drawn buffer slot, whose item is emitted; at the end the buffer is emitted shuffled. The same
     * algorithm with jtune's seeded generator (datasets draws from numpy's, so the permutation differs).
     */
    static <T> List<T> bufferShuffled(List<T> items, int bufferSize, java.util.Random rng) {
        List<T> out = new ArrayList<>(items.size());
        List<T> buffer = new ArrayList<>(Math.min(bufferSize, items.size()));
        for (T item : items) {
            if (buffer.size() == bufferSize) {
                int i = rng.nextInt(bufferSize);
                out.add(buffer.get(i));
                buffer.set(i, item);
            } else {
                buffer.add(item);
            }
        }
        java.util.Collections.shuffle(buffer, rng);
        out.addAll(buffer);
        return out;
    }

    /**
     * Whether the training samples are shuffled after merging: {@code shuffle_merged_datasets} (default true), except
     * that Axolotl's {@code curriculum_sampling: true} keeps a single dataset in its order
     * (utils/data/shared.py {@code merge_datasets}; several datasets are still shuffled when shuffle_merged_datasets
     * says so, with Axolotl's warning).
     */
    public static boolean shufflesTrain(TrainConfig config) {
        boolean curriculum = config.trainer().bool("curriculum_sampling").orElse(false);
        return config.shuffleMergedDatasets() && !(curriculum && config.datasets().size() == 1);
    }

    /** Packed rows ({@link Packer#pack}) or one row per sample. */
    public static List<Row> rows(List<Sample> samples, boolean packing, int sequenceLen) {
        return packing ? Packer.pack(samples, sequenceLen) : Packer.single(samples);
    }

    /**
     * {@code sample} as it goes into a row of at most {@code sequenceLen} tokens: itself, its first
     * {@code sequenceLen} tokens ({@code truncate}), or null ({@code drop}).
     */
    public static Sample fit(Sample sample, int sequenceLen, ExcessLengthStrategy strategy) {
        if (sample.length() <= sequenceLen) return sample;
        return switch (strategy) {
            case DROP -> null;
            case TRUNCATE -> new Sample(Arrays.copyOf(sample.inputIds(), sequenceLen),
                    Arrays.copyOf(sample.labels(), sequenceLen));
        };
    }

    static final class Counts {
        long read;
        long truncated;
        final Map<String, Long> skipped = new HashMap<>();
        final Map<String, Long> dropped = new HashMap<>();

        void drop(String reason) {
            dropped.merge(reason, 1L, Long::sum);
        }
    }

    /**
     * The samples of one split's datasets, merged in config order, each fitted to {@code sequence_len} or dropped
     * (empty, under {@code min_sample_len}, too long, nothing trained) and, with {@code dataset_exact_deduplication},
     * without repeats.
     */
    private static List<Sample> read(List<DatasetConfig> datasets, SampleSource source, TrainConfig config,
            Counts counts) {
        int seqLen = config.sequenceLen();
        ExcessLengthStrategy strategy = config.excessLengthStrategy();
        List<Sample> out = new ArrayList<>();
        for (DatasetConfig ds : datasets) {
            RowTally tally = new RowTally();
            try (Stream<Sample> samples = source.open(ds, tally)) {
                samples.forEachOrdered(s -> {
                    if (s.length() == 0) {
                        counts.drop(PrepareReport.EMPTY);
                        return;
                    }
                    // Axolotl's length filter (utils/data/utils.py) drops under min_sample_len before truncating.
                    if (s.length() < config.minSampleLen()) {
                        counts.drop(PrepareReport.TOO_SHORT);
                        return;
                    }
                    Sample fitted = fit(s, seqLen, strategy);
                    if (fitted == null) {
                        counts.drop(PrepareReport.TOO_LONG);
                        return;
                    }
                    // Row.trainedTokens: a label at position 0 is never used.
                    if (trainedAfterFirst(fitted) == 0) {
                        counts.drop(PrepareReport.NOTHING_TRAINED);
                        return;
                    }
                    if (fitted != s) counts.truncated++;
                    out.add(fitted);
                });
            }
            counts.read += tally.read();
            tally.addTo(counts.skipped);
        }
        return config.datasetExactDeduplication() ? deduplicated(out, counts) : out;
    }

    /**
     * {@code samples} without exact repeats, the first of each kept, in order: Axolotl's
     * {@code deduplicate_and_log_datasets} (utils/data/utils.py), which hashes each tokenized row ({@code input_ids},
     * {@code attention_mask}, {@code labels}) of one split after the length filter and before {@code val_set_size}
     * splits it. The training split is not deduplicated against {@code test_datasets}, as Axolotl's SFT path does.
     */
    static List<Sample> deduplicated(List<Sample> samples, Counts counts) {
        java.util.Set<String> seen = new java.util.HashSet<>();
        List<Sample> out = new ArrayList<>(samples.size());
        for (Sample s : samples) {
            if (seen.add(Arrays.toString(s.inputIds()) + Arrays.toString(s.labels()))) {
                out.add(s);
            } else {
                counts.drop(PrepareReport.DUPLICATE);
            }
        }
        return out;
    }

    private static int trainedAfterFirst(Sample s) {
        int[] labels = s.labels();
        int n = 0;
        for (int i = 1; i < labels.length; i++) {
            if (labels[i] != Sample.IGNORE_INDEX) n++;
        }
        return n;
    }
}
