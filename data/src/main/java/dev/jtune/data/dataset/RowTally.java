package dev.jtune.data.dataset;

import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * What a {@link SampleSource} counts while it reads one dataset: rows read, and rows skipped with the reason
 * (e.g. {@code "missing field 'output'"}). The loader's own report feeds it; the pipeline adds it to the
 * {@link PrepareReport}. Not thread-safe: one tally per opened stream.
 */
public final class RowTally {
    private long read;
    private final Map<String, Long> skipped = new TreeMap<>();

    /** Counts {@code n} more rows read from the dataset files (skipped ones included). */
    public void read(long n) {
        if (n < 0) throw new IllegalArgumentException("negative count " + n);
        read += n;
    }

    /** Counts {@code n} rows left out for {@code reason}. */
    public void skipped(String reason, long n) {
        Objects.requireNonNull(reason, "reason");
        if (n < 0) throw new IllegalArgumentException("negative count " + n);
        if (n > 0) skipped.merge(reason, n, Long::sum);
    }

    /** Adds every reason→count of {@code counts} (the shape of a loader's report). */
    public void skipped(Map<String, ? extends Number> counts) {
        counts.forEach((reason, n) -> skipped(reason, n.longValue()));
    }

    public long read() {
        return read;
    }

    /** Reason → rows, sorted by reason. */
    public Map<String, Long> skipped() {
        return Map.copyOf(skipped);
    }

    long skippedTotal() {
        return skipped.values().stream().mapToLong(Long::longValue).sum();
    }

    void addTo(Map<String, Long> into) {
        skipped.forEach((k, v) -> into.merge(k, v, Long::sum));
    }
}
