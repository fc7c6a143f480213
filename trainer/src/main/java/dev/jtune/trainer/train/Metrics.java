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
 * rank 0 only) and the same lines kept as transformers' {@code log_history} for {@code trainer_state.json}; with
 * {@code use_tensorboard: true}, every number of a line but its step also as a TensorBoard scalar
 * ({@link TensorBoard}).
 */
final class Metrics implements AutoCloseable {
    static final String FILE = "metrics.jsonl";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final boolean writes;
    private final List<JsonNode> history = new ArrayList<>();
    private final Path outputDir;
    private final boolean tensorboard;
    private TensorBoard events;

    /** @param writes whether this rank writes the file (rank 0); every rank keeps the history */
    Metrics(Path outputDir, boolean writes) {
        this(outputDir, writes, false);
    }

    /** @param tensorboard also write TensorBoard events (rank 0), in a new run folder opened at the first line */
    Metrics(Path outputDir, boolean writes, boolean tensorboard) {
        this.file = outputDir.resolve(FILE);
        this.writes = writes;
        this.outputDir = outputDir;
        this.tensorboard = tensorboard;
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
            if (tensorboard) {
                if (events == null) events = TensorBoard.open(outputDir);
                long step = line.path("step").asLong();
                line.properties().forEach(e -> {
                    if (!e.getKey().equals("step") && e.getValue().isNumber()) {
                        events.scalar(e.getKey(), e.getValue().asDouble(), step);
                    }
                });
            }
        }
        history.add(line);
    }

    /** The TensorBoard event file being written, if any. */
    java.util.Optional<Path> eventsFile() {
        return java.util.Optional.ofNullable(events).map(TensorBoard::file);
    }

    @Override
    public void close() {
        if (events != null) {
            events.close();
            events = null;
        }
    }

    /** The newest line of the history, or null. */
    JsonNode newest() {
        return history.isEmpty() ? null : history.getLast();
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
