package dev.jtune.data.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.Objects;

/**
 * One row of a dataset file and where it came from: {@code line} is the 1-based line where it starts (a
 * JSON-lines line, or where an element of a JSON array begins).
 */
public record SourceRow(Path file, long line, JsonNode value) {
    public SourceRow {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(value, "value");
    }

    /** An error about this row. */
    public DatasetException error(String reason) {
        return new DatasetException(file, line, reason);
    }
}
