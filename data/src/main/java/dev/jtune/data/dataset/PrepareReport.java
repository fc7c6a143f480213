package dev.jtune.data.dataset;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * What preprocessing did: rows read and skipped by the loader (reason → rows), samples dropped or truncated
 * for length, and per split the samples, rows, tokens, trained tokens and packing efficiency. Saved as
 * {@code report.json} beside the prepared rows and printed by {@code preprocess} with {@link #table()}.
 *
 * @param rowsRead rows the loader read, over all datasets (training and test)
 * @param skipped loader's reason → rows left out (unparseable, missing fields, ...)
 * @param dropped pipeline's reason → samples left out (too long under {@code excess_length_strategy: drop},
 *     empty, no trained tokens)
 * @param truncated samples cut to {@code sequence_len} ({@code excess_length_strategy: truncate})
 * @param sequenceLen {@code sequence_len}
 * @param packed whether samples were packed ({@code sample_packing})
 * @param train the training split
 * @param eval the evaluation split (all zero when there is none)
 */
public record PrepareReport(long rowsRead, Map<String, Long> skipped, Map<String, Long> dropped, long truncated,
        int sequenceLen, boolean packed, SplitStats train, SplitStats eval) {

    /** Reason in {@link #dropped()} for samples over {@code sequence_len} under {@code drop}. */
    public static final String TOO_LONG = "longer than sequence_len";
    /** Reason in {@link #dropped()} for samples under {@code min_sample_len} tokens. */
    public static final String TOO_SHORT = "shorter than min_sample_len";
    /** Reason in {@link #dropped()} for repeats of an earlier sample ({@code dataset_exact_deduplication}). */
    public static final String DUPLICATE = "exact duplicate (dataset_exact_deduplication)";
    /** Reason in {@link #dropped()} for samples with no tokens. */
    public static final String EMPTY = "no tokens";
    /** Reason in {@link #dropped()} for samples whose every label is ignored: they would train nothing. */
    public static final String NOTHING_TRAINED = "no trained tokens";

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    public PrepareReport {
        skipped = Map.copyOf(skipped);
        dropped = Map.copyOf(dropped);
    }

    /**
     * One split's figures.
     *
     * @param samples samples in the split
     * @param rows rows after packing (= samples without packing)
     * @param tokens real tokens
     * @param trainedTokens labels the loss uses ({@link Row#trainedTokens()})
     * @param packingEfficiency {@code tokens / (rows × sequence_len)}: the share of full-length rows that is
     *     not padding
     */
    public record SplitStats(long samples, long rows, long tokens, long trainedTokens, double packingEfficiency) {
        public static final SplitStats EMPTY = new SplitStats(0, 0, 0, 0, 0);

        /** The figures of {@code rows} built from {@code samples} samples. */
        public static SplitStats of(long samples, List<Row> rows, int sequenceLen) {
            long tokens = 0;
            long trained = 0;
            for (Row r : rows) {
                tokens += r.length();
                trained += r.trainedTokens();
            }
            return new SplitStats(samples, rows.size(), tokens, trained, Packer.efficiency(rows, sequenceLen));
        }
    }

    public long skippedTotal() {
        return skipped.values().stream().mapToLong(Long::longValue).sum();
    }

    public long droppedTotal() {
        return dropped.values().stream().mapToLong(Long::longValue).sum();
    }

    /**
     * Why the data has no training sample, for the error that says so: the skip or drop reason that took the most
     * rows or samples, with its count ("longer than sequence_len: 640 of 640 rows read"), or "no rows read".
     */
    public String emptyReason() {
        if (rowsRead == 0) {
            return "no rows read";
        }
        var worst = java.util.stream.Stream.concat(skipped.entrySet().stream(), dropped.entrySet().stream())
                .max(Map.Entry.<String, Long>comparingByValue().thenComparing(Map.Entry.comparingByKey()));
        return worst.map(e -> e.getKey() + ": " + e.getValue() + " of " + rowsRead + " rows read"
                + (dropped.containsKey(e.getKey()) && skipped.get(e.getKey()) == null ? " (samples)" : ""))
                .orElse("every sample went to evaluation (val_set_size)");
    }

    /** The report as pretty-printed JSON (keys sorted). */
    public String toJson() {
        try {
            return JSON.writeValueAsString(this) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Reads {@link #toJson()}'s output. */
    public static PrepareReport fromJson(String json) throws JsonProcessingException {
        return JSON.readValue(json, PrepareReport.class);
    }

    /** A readable table for the terminal. */
    public String table() {
        var sb = new StringBuilder();
        line(sb, "rows read", rowsRead);
        line(sb, "rows skipped", skippedTotal());
        reasons(sb, skipped);
        line(sb, "samples dropped", droppedTotal());
        reasons(sb, dropped);
        if (truncated > 0) line(sb, "samples truncated", truncated);
        sb.append(String.format(Locale.ROOT, "%-26s %12d%s%n", "sequence_len", sequenceLen,
                packed ? "  (sample_packing)" : ""));
        sb.append(String.format(Locale.ROOT, "%n%-26s %12s %12s%n", "", "train", "eval"));
        pair(sb, "samples", train.samples, eval.samples);
        pair(sb, "rows", train.rows, eval.rows);
        pair(sb, "tokens", train.tokens, eval.tokens);
        pair(sb, "trained tokens", train.trainedTokens, eval.trainedTokens);
        sb.append(String.format(Locale.ROOT, "%-26s %11.1f%% %11.1f%%%n", "packing efficiency",
                100 * train.packingEfficiency, 100 * eval.packingEfficiency));
        return sb.toString();
    }

    private static void line(StringBuilder sb, String name, long value) {
        sb.append(String.format(Locale.ROOT, "%-26s %12d%n", name, value));
    }

    private static void pair(StringBuilder sb, String name, long train, long eval) {
        sb.append(String.format(Locale.ROOT, "%-26s %12d %12d%n", name, train, eval));
    }

    private static void reasons(StringBuilder sb, Map<String, Long> byReason) {
        new TreeMap<>(byReason).forEach((reason, n) ->
                sb.append(String.format(Locale.ROOT, "  %-24s %12d%n", reason, n)));
    }
}
