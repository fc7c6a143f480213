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
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/**
 * A dataset's samples: its {@link DatasetFiles} read by {@link JsonRows} and formatted by a
 * {@link SampleBuilder}, lazily, in file and row order.
 *
 * <p>The reading thread only splits the files into rows ({@code .jsonl} lines stay unparsed; a JSON array's
 * elements are parsed by the streaming parser, which cannot be split) and hands them out in chunks; worker
 * threads, one per core, parse the lines, format, tokenize and mask. Chunks are taken back in the order they
 * were read, so samples, counts and errors come out exactly as a sequential read gives them, whichever thread
 * finishes first.
 */
public final class DatasetReader {
    private DatasetReader() {}

    /** Bumped when the same files and config would give other samples: part of the prepared-data cache key. */
    public static final String VERSION = "1";

    /** Rows per chunk handed to a worker: small, so the last chunk leaves a core idle only briefly. */
    static final int CHUNK = 64;

    /** Chunks read ahead per worker: enough that a worker never waits for the reading thread. */
    private static final int AHEAD_PER_WORKER = 4;

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
     * (try-with-resources) to close the open file and stop the workers. A bad row throws a {@link DatasetException}
     * naming file, line and field, unless {@code skip_invalid} is set: then it is skipped and counted in
     * {@code report} (by reason), as are malformed lines of a {@code .jsonl} file (malformed JSON files stay fatal).
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
        return samplesByRow(ds, cfg, tokenizer, baseDir, report, CHUNK, Runtime.getRuntime().availableProcessors());
    }

    /** {@link #samples} with {@code chunkRows} rows per chunk and {@code workers} threads (tests vary both). */
    static Stream<Sample> samples(DatasetConfig ds, TrainConfig cfg, Tokenizer tokenizer, Path baseDir,
            LoadReport report, int chunkRows, int workers) {
        return samplesByRow(ds, cfg, tokenizer, baseDir, report, chunkRows, workers).flatMap(List::stream);
    }

    private static Stream<List<Sample>> samplesByRow(DatasetConfig ds, TrainConfig cfg, Tokenizer tokenizer,
            Path baseDir, LoadReport report, int chunkRows, int workers) {
        if (chunkRows < 1 || workers < 1) {
            throw new IllegalArgumentException("chunkRows and workers must be positive: " + chunkRows + ", " + workers);
        }
        List<Path> files = DatasetFiles.resolve(ds, baseDir);
        SampleBuilder builder = SampleBuilder.of(ds, cfg, tokenizer, baseDir);
        SlicedRows rows = SlicedRows.open(files, ds.splitSpec());
        Pipeline it;
        try {
            it = new Pipeline(rows, builder, ds.skipInvalid(), report, chunkRows, workers);
        } catch (RuntimeException | Error e) {
            rows.close();
            throw e;
        }
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(it, Spliterator.ORDERED | Spliterator.NONNULL), false)
                .onClose(it::close);
    }

    /**
     * Rows read on the consuming thread, built by the workers a chunk at a time, taken back in reading order.
     * Each item of a chunk is a {@link JsonRows.Raw}, or the {@link DatasetException} that ended the reading (a
     * file that cannot be read, a malformed JSON file), which is thrown when its turn comes.
     */
    private static final class Pipeline implements Iterator<List<Sample>>, AutoCloseable {
        private final SlicedRows rows;
        private final SampleBuilder builder;
        private final boolean skipInvalid;
        private final LoadReport report;
        private final int chunkRows;
        private final int ahead;
        private final ExecutorService workers;
        private final ArrayDeque<Future<List<Object>>> inFlight = new ArrayDeque<>();
        private final ArrayDeque<List<Sample>> pending = new ArrayDeque<>();
        private boolean readAll;
        /** A row's error, thrown once the samples of the rows before it have been taken. */
        private DatasetException failure;

        Pipeline(SlicedRows rows, SampleBuilder builder, boolean skipInvalid, LoadReport report, int chunkRows, int workers) {
            this.rows = rows;
            this.builder = builder;
            this.skipInvalid = skipInvalid;
            this.report = report;
            this.chunkRows = chunkRows;
            this.ahead = workers * AHEAD_PER_WORKER;
            ThreadPoolExecutor pool = new ThreadPoolExecutor(workers, workers, 1, TimeUnit.SECONDS,
                    new LinkedBlockingQueue<>(), WORKER_THREADS);
            pool.allowCoreThreadTimeOut(true); // a stream left unclosed leaves no threads behind
            this.workers = pool;
        }

        @Override
        public boolean hasNext() {
            while (pending.isEmpty()) {
                if (failure != null) {
                    throw failure;
                }
                while (!readAll && inFlight.size() < ahead) {
                    List<Object> chunk = readChunk();
                    if (!chunk.isEmpty()) {
                        inFlight.add(workers.submit(() -> build(chunk)));
                    }
                }
                if (inFlight.isEmpty()) {
                    return false;
                }
                take(await(inFlight.poll()));
            }
            return true;
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

        /** Up to {@code chunkRows} rows; the last chunk may end with the exception that ends the reading. */
        private List<Object> readChunk() {
            List<Object> chunk = new ArrayList<>(chunkRows);
            try {
                while (chunk.size() < chunkRows && rows.hasNext()) {
                    chunk.add(rows.nextRaw());
                }
                if (chunk.size() < chunkRows) {
                    readAll = true;
                }
            } catch (DatasetException e) {
                chunk.add(e);
                readAll = true;
            }
            return chunk;
        }

        /** On a worker: each row's samples, or its skip reason, or its DatasetException; other failures propagate. */
        private List<Object> build(List<Object> chunk) {
            List<Object> built = new ArrayList<>(chunk.size());
            for (Object item : chunk) {
                if (Thread.currentThread().isInterrupted()) {
                    break; // closed: the result is not used
                }
                if (item instanceof JsonRows.Raw raw) {
                    try {
                        built.add(new BuiltRow(builder.build(raw.parse())));
                    } catch (DatasetException e) {
                        // Row errors and malformed lines: both are what skip_invalid skips.
                        built.add(skipInvalid ? e.reason() : e);
                    }
                } else {
                    built.add(item);
                }
            }
            return built;
        }

        private static List<Object> await(Future<List<Object>> chunk) {
            try {
                return chunk.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while reading the dataset", e);
            } catch (ExecutionException e) {
                switch (e.getCause()) {
                    case RuntimeException r -> throw r;
                    case Error r -> throw r;
                    default -> throw new IllegalStateException(e.getCause());
                }
            }
        }

        /** A chunk's results, in row order, into the report and the pending samples, up to the first error. */
        private void take(List<Object> built) {
            for (Object result : built) {
                switch (result) {
                    case String skipReason -> {
                        report.rowRead();
                        report.skipped(skipReason);
                    }
                    case DatasetException e -> {
                        failure = e;
                        return;
                    }
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

        /**
         * Stops the workers and waits for them: a row being built finishes first (the tokenizer may be closed as
         * soon as this returns, and must not be in use then).
         */
        @Override
        public void close() {
            workers.shutdownNow();
            boolean interrupted = false;
            while (true) {
                try {
                    if (workers.awaitTermination(1, TimeUnit.MINUTES)) {
                        break;
                    }
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
            rows.close();
        }
    }

    private static final ThreadFactory WORKER_THREADS = new ThreadFactory() {
        private final AtomicInteger n = new AtomicInteger();

        @Override
        public Thread newThread(Runnable r) {
            Thread t = new Thread(r, "jtune-dataset-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        }
    };
}
