package dev.jtune.data.config;

import java.nio.file.Path;

/**
 * A line the config earns without being wrong: a key jtune honours another way ({@link Level#INFO}) or a service
 * it does not reach ({@link Level#WARNING}), as {@link AxolotlKeys} decides. The verbs print each once, when the
 * config loads.
 *
 * @param level info or warning
 * @param file the config file
 * @param line 1-based line of the key
 * @param column 1-based column of the key
 * @param key the key, with its dataset prefix for a {@code datasets:} entry ({@code datasets[0].revision})
 * @param value the value as written, short
 * @param note what jtune does instead (info) or what does not happen (warning)
 */
public record ConfigNote(Level level, Path file, int line, int column, String key, String value, String note) {

    /** How much a note matters. */
    public enum Level {
        /** Equivalent here: jtune's own code gives the result the key asks for. */
        INFO,
        /** Not available offline: the trained result is the same, the service or report is missing. */
        WARNING
    }

    /** {@code info: file:line:column: key: value — note}. */
    @Override
    public String toString() {
        return (level == Level.INFO ? "info" : "warning") + ": " + file + ":" + line + ":" + column + ": " + key
                + ": " + value + " — " + note;
    }
}
