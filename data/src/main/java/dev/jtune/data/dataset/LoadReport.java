package dev.jtune.data.dataset;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * What reading one dataset did, filled in while its samples are read (so complete once the stream is
 * consumed): rows read, rows skipped by reason ({@code skip_invalid}), samples produced, and texts that
 * {@code completion} split into several {@code sequence_len} chunks. Not thread-safe.
 */
public final class LoadReport {
    private long rowsRead;
    private long samples;
    private long textsSplit;
    private long chunksFromSplits;
    private final Map<String, Long> skipped = new TreeMap<>();

    void rowRead() {
        rowsRead++;
    }

    void skipped(String reason) {
        skipped.merge(reason, 1L, Long::sum);
    }

    void sample() {
        samples++;
    }

    void split(int chunks) {
        textsSplit++;
        chunksFromSplits += chunks;
    }

    /** Rows read from the files, skipped ones included. */
    public long rowsRead() {
        return rowsRead;
    }

    /** Rows skipped, in all. */
    public long rowsSkipped() {
        return skipped.values().stream().mapToLong(Long::longValue).sum();
    }

    /** Rows skipped per reason (the error without its place, e.g. {@code field 'output' missing ...}), sorted. */
    public Map<String, Long> skippedByReason() {
        return Collections.unmodifiableMap(skipped);
    }

    /** Samples produced. */
    public long samples() {
        return samples;
    }

    /** Completion texts longer than {@code sequence_len} that were split. */
    public long textsSplit() {
        return textsSplit;
    }

    /** Samples those split texts gave. */
    public long chunksFromSplits() {
        return chunksFromSplits;
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder(rowsRead + " rows read, " + samples + " samples");
        if (textsSplit > 0) {
            s.append(", ").append(textsSplit).append(" long texts split into ").append(chunksFromSplits).append(" chunks");
        }
        if (!skipped.isEmpty()) {
            s.append(", ").append(rowsSkipped()).append(" rows skipped");
            skipped.forEach((reason, n) -> s.append("\n  ").append(n).append(" x ").append(reason));
        }
        return s.toString();
    }
}
