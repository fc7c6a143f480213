package dev.jtune.data.dataset;

import dev.jtune.data.config.SplitSpec;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * The rows of a dataset's files that its {@code split:} selects ({@link SplitSpec}), in the order of its
 * instructions: {@code train[:10%]+train[-5%:]} gives the first tenth, then the last twentieth. A row is a
 * position in {@link JsonRows}' order, a malformed line included (with {@code skip_invalid} it is read and
 * skipped where it falls), so slices count rows as datasets does for well-formed files. A sliced split counts the
 * rows in a first pass, then reads each slice from the files again; {@code train} alone is one plain pass.
 */
final class SlicedRows implements Iterator<SourceRow>, AutoCloseable {
    private final List<Path> files;
    private final Iterator<long[]> slices;
    private JsonRows current;
    private long remaining;

    private SlicedRows(List<Path> files, List<long[]> slices) {
        this.files = files;
        this.slices = slices.iterator();
    }

    /** @throws DatasetException from the counting pass (a file that cannot be read) or a slice datasets refuses */
    static SlicedRows open(List<Path> files, SplitSpec spec) {
        List<long[]> slices = new ArrayList<>();
        if (!spec.sliced()) {
            for (int i = 0; i < spec.instructions().size(); i++) slices.add(new long[] {0, Long.MAX_VALUE});
        } else {
            long n = count(files);
            for (SplitSpec.Instruction instruction : spec.instructions()) {
                try {
                    slices.add(instruction.rows(n));
                } catch (IllegalArgumentException e) {
                    throw new DatasetException(files.getFirst(), 0, e.getMessage(), e);
                }
            }
        }
        return new SlicedRows(List.copyOf(files), slices);
    }

    /** Whether {@code e} leaves the iteration usable, as {@link JsonRows#recoverable}. */
    static boolean recoverable(DatasetException e) {
        return JsonRows.recoverable(e);
    }

    /** Rows of the files, malformed lines included (JSON lines are counted, not parsed). */
    private static long count(List<Path> files) {
        long n = 0;
        try (JsonRows rows = JsonRows.open(files)) {
            while (rows.hasNextRaw()) {
                rows.nextRaw();
                n++;
            }
            return n;
        }
    }

    /**
     * Whether a row of the slices is left.
     *
     * @throws DatasetException when a file cannot be read or a JSON file is malformed (not recoverable)
     */
    @Override
    public boolean hasNext() {
        while (current == null || remaining == 0) {
            if (current != null) {
                current.close();
                current = null;
            }
            if (!slices.hasNext()) return false;
            long[] slice = slices.next();
            remaining = slice[1] - slice[0];
            if (remaining == 0) continue;
            current = JsonRows.open(files);
            for (long skip = 0; skip < slice[0] && current.hasNextRaw(); skip++) {
                current.nextRaw(); // a malformed line is a row too; it is not parsed
            }
        }
        if (current.hasNextRaw()) return true;
        remaining = 0; // the end of the files (train: every row)
        return hasNext();
    }

    /**
     * The next row, parsed.
     *
     * @throws DatasetException a {@linkplain #recoverable recoverable} one for a malformed JSON line, which still
     *     counts as a row of its slice
     */
    @Override
    public SourceRow next() {
        return nextRaw().parse();
    }

    /** The next row as read ({@link JsonRows#nextRaw}): parse it with {@link JsonRows.Raw#parse}, on any thread. */
    JsonRows.Raw nextRaw() {
        if (!hasNext()) throw new NoSuchElementException();
        remaining--;
        return current.nextRaw();
    }

    @Override
    public void close() {
        if (current != null) {
            current.close();
            current = null;
        }
    }
}
