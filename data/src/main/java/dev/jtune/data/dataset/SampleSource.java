package dev.jtune.data.dataset;

import dev.jtune.data.config.DatasetConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.function.BiFunction;
import java.util.stream.Stream;

/**
 * The seam between dataset loading (files → formatted, masked {@link Sample}s) and the rest of the pipeline
 * (length filter, split, packing, cache). The loader implements {@link #open}; {@link #inputs} names the files
 * whose bytes the cache key covers.
 */
public interface SampleSource {
    /**
     * The samples of one {@code datasets:}/{@code test_datasets:} entry, in file order. The caller closes the
     * stream; by then {@code tally} holds the rows read and skipped.
     */
    Stream<Sample> open(DatasetConfig dataset, RowTally tally);

    /**
     * {@link #open}'s samples grouped by the source row they came from (a row may give several), for the streamed
     * path that shuffles and buffers rows; a source that cannot tell gives one group per sample.
     */
    default Stream<List<Sample>> openByRow(DatasetConfig dataset, RowTally tally) {
        return open(dataset, tally).map(List::of);
    }

    /** The local files {@link #open} reads for {@code dataset}; their contents key the prepared-dataset cache. */
    List<Path> inputs(DatasetConfig dataset);

    /**
     * A version string of the loader's behaviour, part of the cache key: change it when the same files and
     * config would now give different samples.
     */
    default String version() {
        return "";
    }

    /** {@link #of}, from a loading function that gives each row's samples together ({@link #openByRow}). */
    static SampleSource byRow(Path baseDir, String version,
            BiFunction<DatasetConfig, RowTally, Stream<List<Sample>>> open) {
        Objects.requireNonNull(open, "open");
        return new SampleSource() {
            @Override
            public Stream<Sample> open(DatasetConfig dataset, RowTally tally) {
                return open.apply(dataset, tally).flatMap(List::stream);
            }

            @Override
            public Stream<List<Sample>> openByRow(DatasetConfig dataset, RowTally tally) {
                return open.apply(dataset, tally);
            }

            @Override
            public List<Path> inputs(DatasetConfig dataset) {
                return DatasetFiles.resolve(dataset, baseDir);
            }

            @Override
            public String version() {
                return version;
            }
        };
    }

    /**
     * A source from a loading function, with {@link DatasetFiles#resolve} against {@code baseDir} as its inputs; each
     * sample is its own row group.
     */
    static SampleSource of(Path baseDir, String version, BiFunction<DatasetConfig, RowTally, Stream<Sample>> open) {
        Objects.requireNonNull(open, "open");
        return byRow(baseDir, version, (dataset, tally) -> open.apply(dataset, tally).map(List::of));
    }
}
