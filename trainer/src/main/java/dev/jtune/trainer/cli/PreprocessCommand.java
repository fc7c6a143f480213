package dev.jtune.trainer.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.dataset.PreparedDataset;
import dev.jtune.data.dataset.Row;
import dev.jtune.data.dataset.Sample;
import dev.jtune.data.dataset.DatasetReader;
import dev.jtune.data.dataset.SampleSource;
import dev.jtune.data.tokenizer.Tokenizer;
import dev.jtune.model.hf.ModelLocator;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code preprocess}: tokenizes, masks and packs the config's datasets into the prepared-dataset cache
 * ({@link PreparedDataset}) and prints the report; {@code --show N} prints N rows with trained and masked
 * tokens told apart.
 */
final class PreprocessCommand {
    static final String USAGE = """
            usage: ./launch.sh preprocess CONFIG.yml [--show N] [--show-format text|json]

              CONFIG.yml      training config (Axolotl keys); its data section is prepared
              --show N        print the first N prepared training rows
              --show-format   text (default): decoded text; trained tokens in green and masked ones grey on a
                              terminal, otherwise masked tokens inside [[ ]]; packed samples are separated by
                              a '--- sample' line.
                              json: one line per row {"input_ids": [...], "labels": [...], "position_ids": [...]}
                              (the report then goes to stderr, so stdout is plain JSON lines)

            The prepared rows are stored under dataset_prepared_path (default OUTPUT_DIR/last_run_prepared) in a
            directory named by a hash of the data keys, tokenizer files and dataset file contents; train reuses
            it, and any change to those rebuilds it. Relative paths are read against the working directory.
            """;

    static final String GREEN = "\u001b[32m";
    static final String GREY = "\u001b[90m";
    static final String RESET = "\u001b[0m";
    static final String MASK_OPEN = "[[";
    static final String MASK_CLOSE = "]]";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** How the verb gets its samples; tests pass their own. */
    @FunctionalInterface
    interface SourceFactory {
        SampleSource create(TrainConfig config, Tokenizer tokenizer, Path baseDir);
    }

    private PreprocessCommand() {}

    /** The sample source of {@code preprocess} and {@code train}: the dataset loaders. */
    static SampleSource sampleSource(TrainConfig config, Tokenizer tokenizer, Path baseDir) {
        return DatasetReader.source(config, tokenizer, baseDir);
    }

    static int run(String[] argv) throws Exception {
        return run(argv, System.out, System.err, PreprocessCommand::sampleSource, Path.of("").toAbsolutePath(),
                System.console() != null);
    }

    static int run(String[] argv, PrintStream out, PrintStream err, SourceFactory sources, Path baseDir, boolean colour)
            throws Exception {
        Args args = Args.parse("preprocess", argv, Set.of("show", "show-format"), Set.of());
        if (args.positional().size() != 1) {
            throw new Args.UsageException("preprocess: expected one CONFIG.yml, got " + args.positional().size() + " arguments");
        }
        long show = args.getLong("show", 0);
        if (show < 0) throw new Args.UsageException("preprocess: --show must not be negative");
        String format = args.get("show-format", "text");
        if (!format.equals("text") && !format.equals("json")) {
            throw new Args.UsageException("preprocess: --show-format expects text or json, got '" + format + "'");
        }
        TrainConfig config = TrainConfig.load(baseDir.resolve(args.positional().get(0)));
        config.notes().forEach(err::println); // stderr: stdout may carry --show-format json rows
        // Refuses what train would refuse, before the data work: every problem of the file at once.
        dev.jtune.trainer.setup.ConfigChecks.check(config, baseDir);
        dev.jtune.trainer.setup.VocabSettings vocab = dev.jtune.trainer.setup.VocabSettings.from(config);
        Path outputDir = baseDir.resolve(config.outputPath()).toAbsolutePath().normalize();
        Path sourceTokenizerDir = tokenizerDir(config, baseDir);
        // The diffusion objective's mask token, when Axolotl adds it, is in train's tokenizer too.
        vocab = dev.jtune.trainer.setup.DiffusionSettings.vocab(config, vocab, sourceTokenizerDir);
        Path tokenizerDir = vocab.writeTokenizer(sourceTokenizerDir, outputDir);
        PrintStream reportOut = format.equals("json") ? err : out;
        long t0 = System.nanoTime();
        try (Tokenizer tokenizer = Tokenizer.load(tokenizerDir);
                PreparedDataset prepared = PreparedDataset.prepareOrLoad(config, tokenizerDir,
                        sources.create(config, tokenizer, baseDir), baseDir)) {
            double seconds = (System.nanoTime() - t0) / 1e9;
            reportOut.printf(Locale.ROOT, "prepared dataset: %s (%s in %.1f s)%n", prepared.directory(),
                    prepared.reused() ? "reused" : "built", seconds);
            reportOut.print(prepared.report().table());
            List<Row> rows = prepared.train();
            if (rows.isEmpty()) {
                // Training would stop on it: say so now, with the reason that emptied the data, not exit 0.
                throw new IllegalArgumentException(config.source() + ": no training samples left — "
                        + prepared.report().emptyReason() + " (see the report above)");
            }
            int n = (int) Math.min(show, rows.size());
            if (n > 0 && format.equals("text")) {
                out.println();
                if (!colour) out.println("legend: masked tokens (no loss) are inside " + MASK_OPEN + " " + MASK_CLOSE + "; the rest is trained");
            }
            for (int i = 0; i < n; i++) {
                Row row = rows.get(i);
                if (format.equals("json")) {
                    out.println(json(row));
                } else {
                    out.printf("=== row %d: %d tokens, %d samples, %d trained ===%n", i, row.length(), row.samples(),
                            row.trainedTokens());
                    out.println(text(row, tokenizer, colour));
                }
            }
        }
        return 0;
    }

    /** {@code tokenizer_config}, else {@code base_model}, as a local directory or a cached Hub id. */
    static Path tokenizerDir(TrainConfig config, Path baseDir) {
        String where = config.tokenizerConfig().orElse(config.baseModel());
        Path local = baseDir.resolve(where);
        return java.nio.file.Files.isDirectory(local) ? local : ModelLocator.resolve(where);
    }

    static String json(Row row) throws JsonProcessingException {
        ObjectNode o = JSON.createObjectNode();
        var ids = o.putArray("input_ids");
        for (int v : row.inputIds()) ids.add(v);
        var labels = o.putArray("labels");
        for (int v : row.labels()) labels.add(v);
        var pos = o.putArray("position_ids");
        for (int v : row.positionIds()) pos.add(v);
        return JSON.writeValueAsString(o);
    }

    /**
     * The row's text, sample by sample; each run of tokens that are all trained or all masked is decoded
     * together (so multi-byte characters split over tokens come out whole) and marked.
     */
    static String text(Row row, Tokenizer tokenizer, boolean colour) {
        var sb = new StringBuilder();
        int[] cu = row.cuSeqlens();
        for (int s = 0; s + 1 < cu.length; s++) {
            if (s > 0) sb.append("\n--- sample ").append(s).append(" ---\n");
            int i = cu[s];
            while (i < cu[s + 1]) {
                boolean trained = row.labels()[i] != Sample.IGNORE_INDEX;
                int j = i;
                while (j < cu[s + 1] && (row.labels()[j] != Sample.IGNORE_INDEX) == trained) j++;
                String piece = tokenizer.decode(Arrays.copyOfRange(row.inputIds(), i, j), false);
                if (colour) {
                    sb.append(trained ? GREEN : GREY).append(piece).append(RESET);
                } else {
                    sb.append(trained ? piece : MASK_OPEN + piece + MASK_CLOSE);
                }
                i = j;
            }
        }
        return sb.toString();
    }
}
