package dev.jtune.trainer.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The run's metrics: {@code output_dir/metrics.jsonl} (one JSON object per logged step or evaluation, written by
 * rank 0 only) and the same lines kept as transformers' {@code log_history} for {@code trainer_state.json}.
 */
final class Metrics {
    static final String FILE = "metrics.jsonl";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final boolean writes;
    private final List<JsonNode> history = new ArrayList<>();

    /** @param writes whether this rank writes the file (rank 0); every rank keeps the history */
    Metrics(Path outputDir, boolean writes) {
        this.file = outputDir.resolve(FILE);
        this.writes = writes;
    }

    /** A new line to fill; {@link #add} records it. */
    ObjectNode line(long step, double epoch) {
        ObjectNode o = JSON.createObjectNode();
        o.put("step", step);
        o.put("epoch", epoch);
        return o;
    }

    /** JSON has no NaN/inf: such values are written as null. */
    static void putNumber(ObjectNode o, String key, double v) {
        if (Double.isFinite(v)) {
            o.put(key, v);
        } else {
            o.putNull(key);
        }
    }

    /** Appends {@code line} to the file and the history. */
    void add(ObjectNode line) {
        if (writes) {
            try {
                Files.writeString(file, JSON.writeValueAsString(line) + "\n", StandardOpenOption.CREATE,
                        StandardOpenOption.APPEND);
            } catch (IOException e) {
                throw new UncheckedIOException(file + ": " + e.getMessage(), e);
            }
        }
        history.add(line);
    }

    List<JsonNode> history() {
        return List.copyOf(history);
    }

    /**
     * Continues a resumed run: the history is the checkpoint's, and the file keeps only the lines of steps up to
     * {@code step} (a resumed run rewrites what came after); 0 starts the file afresh.
     */
    void resume(long step, List<JsonNode> checkpointHistory) throws IOException {
        history.clear();
        history.addAll(checkpointHistory);
        if (!writes || !Files.exists(file)) {
            return;
        }
        StringBuilder kept = new StringBuilder();
        for (String line : Files.readAllLines(file)) {
            if (line.isBlank()) continue;
            JsonNode n;
            try {
                n = JSON.readTree(line);
            } catch (IOException e) {
                continue; // a line cut by a crash
            }
            if (n.path("step").asLong(Long.MAX_VALUE) <= step) {
                kept.append(line).append('\n');
            }
        }
        Checkpoints.writeAtomically(file, kept.toString());
    }
}
