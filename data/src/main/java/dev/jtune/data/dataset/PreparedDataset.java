package dev.jtune.data.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.config.TrainConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * A prepared dataset on disk: the training and evaluation rows (memory-mapped, read on demand) and the
 * {@link PrepareReport}, in a directory named by its {@link PreparedKey} under the cache root
 * ({@code dataset_prepared_path}, default {@code <output_dir>/last_run_prepared}, after Axolotl's
 * {@code last_run_prepared}).
 *
 * <pre>
 *   ROOT/KEY/meta.json     {"format": 1, "key": KEY}
 *   ROOT/KEY/report.json   the PrepareReport
 *   ROOT/KEY/train.rows    training rows (RowFile format)
 *   ROOT/KEY/eval.rows     evaluation rows
 * </pre>
 *
 * A directory is written whole under {@code ROOT/.tmp-KEY-*} and renamed into place, so a directory named by a
 * key is always complete; a killed writer leaves only a temp directory, which is ignored and removed once it
 * is older than {@link #STALE_TEMP}. Close to unmap the rows.
 */
public final class PreparedDataset implements AutoCloseable {
    public static final String DEFAULT_DIR_NAME = "last_run_prepared";
    public static final String TRAIN_FILE = "train.rows";
    public static final String EVAL_FILE = "eval.rows";
    public static final String REPORT_FILE = "report.json";
    public static final String META_FILE = "meta.json";
    static final String TEMP_PREFIX = ".tmp-";
    /** Temp directories older than this are taken to be left by a killed writer. */
    public static final Duration STALE_TEMP = Duration.ofHours(1);

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path directory;
    private final String key;
    private final Arena arena;
    private final List<Row> train;
    private final List<Row> eval;
    private final PrepareReport report;
    private final boolean reused;

    private PreparedDataset(Path directory, String key, Arena arena, List<Row> train, List<Row> eval,
            PrepareReport report, boolean reused) {
        this.directory = directory;
        this.key = key;
        this.arena = arena;
        this.train = train;
        this.eval = eval;
        this.report = report;
        this.reused = reused;
    }

    /** The cache root for {@code config}: {@code dataset_prepared_path}, else {@code <output_dir>/last_run_prepared}, against {@code baseDir}. */
    public static Path root(TrainConfig config, Path baseDir) {
        return config.datasetPreparedPath().map(baseDir::resolve)
                .orElseGet(() -> baseDir.resolve(config.outputDir()).resolve(DEFAULT_DIR_NAME));
    }

    /**
     * Opens the prepared dataset for {@code config} if one with the same key exists, otherwise runs
     * {@link Preprocessor#prepare} and stores the result first.
     *
     * @param tokenizerDir the tokenizer's directory (its files are part of the key)
     * @param baseDir what relative paths in the config are resolved against (Axolotl: the working directory)
     */
    public static PreparedDataset prepareOrLoad(TrainConfig config, Path tokenizerDir, SampleSource source, Path baseDir) {
        String key = PreparedKey.of(config, tokenizerDir, source);
        Path root = root(config, baseDir);
        Path dir = root.resolve(key);
        if (Files.isDirectory(dir)) return open(dir, true);
        Preprocessor.Prepared prepared = Preprocessor.prepare(config, source);
        write(root, key, prepared);
        return open(dir, false);
    }

    /**
     * Stores {@code prepared} as {@code root/key}, atomically. If another writer finished the same key first,
     * its directory is kept (same key, same content) and this one discarded.
     */
    public static Path write(Path root, String key, Preprocessor.Prepared prepared) {
        try {
            Files.createDirectories(root);
            removeStaleTemps(root, Instant.now().minus(STALE_TEMP));
            Path target = root.resolve(key);
            Path tmp = Files.createTempDirectory(root, TEMP_PREFIX + key + "-");
            try {
                RowFile.write(tmp.resolve(TRAIN_FILE), prepared.train());
                RowFile.write(tmp.resolve(EVAL_FILE), prepared.eval());
                Files.writeString(tmp.resolve(REPORT_FILE), prepared.report().toJson(), StandardCharsets.UTF_8);
                Files.writeString(tmp.resolve(META_FILE),
                        "{\"format\": " + PreparedKey.FORMAT_VERSION + ", \"key\": \"" + key + "\"}\n", StandardCharsets.UTF_8);
                try {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                } catch (AtomicMoveNotSupportedException e) {
                    throw new IOException(root + ": the file system cannot rename directories atomically", e);
                } catch (FileSystemException e) {
                    if (!Files.isDirectory(target)) throw e;
                    // Lost a race with an identical writer: theirs is complete and equivalent.
                }
                return target;
            } finally {
                deleteTree(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(root.resolve(key) + ": cannot write the prepared dataset: " + e.getMessage(), e);
        }
    }

    /** Opens a prepared-dataset directory, checking every file. */
    public static PreparedDataset open(Path dir) {
        return open(dir, true);
    }

    private static PreparedDataset open(Path dir, boolean reused) {
        Path metaFile = dir.resolve(META_FILE);
        String key;
        PrepareReport report;
        try {
            JsonNode meta = JSON.readTree(Files.readString(metaFile, StandardCharsets.UTF_8));
            if (meta == null || meta.path("format").asInt(-1) != PreparedKey.FORMAT_VERSION || !meta.path("key").isTextual()) {
                throw RowFile.corrupt(metaFile, "expected {\"format\": " + PreparedKey.FORMAT_VERSION + ", \"key\": ...}");
            }
            key = meta.get("key").asText();
            if (!dir.getFileName().toString().equals(key)) {
                throw RowFile.corrupt(metaFile, "key " + key + " does not match the directory name");
            }
        } catch (IOException e) {
            throw new CorruptPreparedDataException(metaFile + ": cannot read the prepared dataset's metadata: "
                    + e.getMessage() + "; delete " + dir + " to rebuild it", e);
        }
        Path reportFile = dir.resolve(REPORT_FILE);
        try {
            report = PrepareReport.fromJson(Files.readString(reportFile, StandardCharsets.UTF_8));
        } catch (IOException | RuntimeException e) {
            throw new CorruptPreparedDataException(reportFile + ": cannot read the report: " + e.getMessage()
                    + "; delete " + dir + " to rebuild it", e);
        }
        Arena arena = Arena.ofShared();
        try {
            List<Row> train = RowFile.open(dir.resolve(TRAIN_FILE), arena);
            List<Row> eval = RowFile.open(dir.resolve(EVAL_FILE), arena);
            if (train.size() != report.train().rows() || eval.size() != report.eval().rows()) {
                throw RowFile.corrupt(dir, "row counts differ from " + REPORT_FILE);
            }
            return new PreparedDataset(dir, key, arena, train, eval, report, reused);
        } catch (IOException e) {
            arena.close();
            throw new CorruptPreparedDataException(dir + ": cannot read the prepared rows: " + e
                    + "; delete the directory to rebuild it", e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    static void removeStaleTemps(Path root, Instant olderThan) throws IOException {
        try (Stream<Path> list = Files.list(root)) {
            for (Path p : list.filter(p -> p.getFileName().toString().startsWith(TEMP_PREFIX)).toList()) {
                try {
                    if (Files.getLastModifiedTime(p).compareTo(FileTime.from(olderThan)) < 0) deleteTree(p);
                } catch (IOException e) {
                    // Another process may be removing it too; a leftover temp directory is harmless.
                }
            }
        }
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) return;
        try (Stream<Path> walk = Files.walk(p)) {
            for (Path q : walk.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(q);
        }
    }

    /** The directory ({@code ROOT/KEY}). */
    public Path directory() {
        return directory;
    }

    public String key() {
        return key;
    }

    /** Training rows in stored order; a read-only view valid until {@link #close()}. */
    public List<Row> train() {
        return train;
    }

    /** Evaluation rows (empty if there is no evaluation split); valid until {@link #close()}. */
    public List<Row> eval() {
        return eval;
    }

    public PrepareReport report() {
        return report;
    }

    /** Whether {@link #prepareOrLoad} found this dataset already prepared. */
    public boolean reused() {
        return reused;
    }

    /** Unmaps the rows; the lists must not be used afterwards. */
    @Override
    public void close() {
        arena.close();
    }
}
