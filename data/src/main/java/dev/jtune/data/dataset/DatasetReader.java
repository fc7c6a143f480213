package dev.jtune.data.dataset;

import dev.jtune.data.config.DatasetConfig;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/**
 * A dataset's samples: its {@link DatasetFiles} read by {@link JsonRows} and formatted by a
 * {@link SampleBuilder}, lazily, one row at a time.
 */
public final class DatasetReader {
    private DatasetReader() {}

    /** Bumped when the same files and config would give other samples: part of the prepared-data cache key. */
    public static final String VERSION = "1";

    /** Rows read ahead and built together. */
    private static final int CHUNK = 512;

    private record BuiltRow(List<Sample> samples) {}

    /**
     * These loaders as the pipeline's {@link SampleSource}: {@link #samples} per dataset entry, its rows read
     * and skipped passed on to the tally when the stream closes.
     */
    public static SampleSource source(TrainConfig cfg, Tokenizer tokenizer, Path baseDir) {
        return SampleSource.byRow(baseDir, VERSION, (ds, tally) -> {
            LoadReport report = new LoadReport();
            return samplesByRow(ds, cfg, tokenizer, baseDir, report).onClose(() -> {
                tally.read(report.rowsRead());
                tally.skipped(report.skippedByReason());
            });
        });
    }

    /**
     * The samples of {@code ds}, in file and row order, read as the stream is consumed; close the stream
     * (try-with-resources) to close the open file. A bad row throws a {@link DatasetException} naming file,
     * line and field, unless {@code skip_invalid} is set: then it is skipped and counted in {@code report}
     * (by reason), as are malformed lines of a {@code .jsonl} file (malformed JSON files stay fatal).
     *
     * @param baseDir what a relative dataset {@code path} is resolved against
     * @throws DatasetException at once when the files cannot be found or the chat template cannot be had
     */
    public static Stream<Sample> samples(DatasetConfig ds, TrainConfig cfg, Tokenizer tokenizer, Path baseDir,
            LoadReport report) {
        return samplesByRow(ds, cfg, tokenizer, baseDir, report).flatMap(List::stream);
    }

    /** {@link #samples}, one list per source row kept (a row may give several samples, or none). */
    public static Stream<List<Sample>> samplesByRow(DatasetConfig ds, TrainConfig cfg, Tokenizer tokenizer,
            Path baseDir, LoadReport report) {
        List<Path> files = DatasetFiles.resolve(ds, baseDir);
        SampleBuilder builder = SampleBuilder.of(ds, cfg, tokenizer, baseDir);
        SlicedRows rows = SlicedRows.open(files, ds.splitSpec());
        Iterator<List<Sample>> it = new Iterator<>() {
            private final ArrayDeque<List<Sample>> pending = new ArrayDeque<>();

            @Override
            public boolean hasNext() {
                while (pending.isEmpty()) {
                    List<Object> chunk = readChunk();
                    if (chunk.isEmpty()) {
                        return false;
                    }
                    // Formatting and tokenizing dominate; rows of a chunk are built in parallel, then taken in
                    // order, so errors, counts and samples come out as a sequential read would give them.
                    List<Object> built = chunk.parallelStream().map(this::build).toList();
                    for (Object result : built) {
                        switch (result) {
                            case String skipReason -> {
                                report.rowRead();
                                report.skipped(skipReason);
                            }
                            case DatasetException e -> throw e;
                            case BuiltRow b -> {
                                report.rowRead();
                                if (b.samples().size() > 1) {
                                    report.split(b.samples().size());
                                }
                                pending.add(b.samples());
                            }
                            default -> throw new IllegalStateException(String.valueOf(result));
                        }
                    }
                }
                return true;
            }

            /** Up to {@link #CHUNK} rows: a SourceRow, a skip reason, or the DatasetException that ends the read. */
            private List<Object> readChunk() {
                List<Object> chunk = new ArrayList<>(CHUNK);
                while (chunk.size() < CHUNK) {
                    try {
                        if (!rows.hasNext()) {
                            break;
                        }
                        chunk.add(rows.next());
                    } catch (DatasetException e) {
                        if (ds.skipInvalid() && SlicedRows.recoverable(e)) {
                            chunk.add(e.reason());
                            continue;
                        }
                        chunk.add(e);
                        break;
                    }
                }
                return chunk;
            }

            private Object build(Object item) {
                if (!(item instanceof SourceRow row)) {
                    return item;
                }
                try {
                    return new BuiltRow(builder.build(row));
                } catch (DatasetException e) {
                    return ds.skipInvalid() ? e.reason() : e;
                }
            }

            @Override
            public List<Sample> next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                List<Sample> row = pending.poll();
                for (int i = 0; i < row.size(); i++) report.sample();
                return row;
            }
        };
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(it, Spliterator.ORDERED | Spliterator.NONNULL), false)
                .onClose(rows::close);
    }
}
