package dev.jtune.data.config;

import java.nio.file.Path;
import java.util.List;

/**
 * A training config file is unreadable or invalid. The message reads {@code file:line:column: problem},
 * with 1-based line and column of the offending key or value, so editors and terminals can jump to it.
 * Line and column are 0 when the problem concerns the whole file (it cannot be read at all).
 *
 * <p>A file with several problems gives one exception listing them all ({@link #problems()}), one per line
 * after a {@code file: N problems} header; its line, column and {@link #problem()} are the first one's.
 */
public final class ConfigException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;
    private final int line;
    private final int column;
    private final String problem;
    private final transient List<ConfigException> problems;

    public ConfigException(Path file, int line, int column, String problem) {
        this(file, line, column, problem, null);
    }

    public ConfigException(Path file, int line, int column, String problem, Throwable cause) {
        super(format(file, line, column, problem), cause);
        this.file = file;
        this.line = line;
        this.column = column;
        this.problem = problem;
        this.problems = List.of(this);
    }

    /** Several problems of one file, in the order given (by position). */
    public ConfigException(Path file, List<ConfigException> problems) {
        super(file + ": " + problems.size() + " problems\n" + String.join("\n",
                problems.stream().map(ConfigException::getMessage).toList()));
        if (problems.size() < 2) throw new IllegalArgumentException("expected several problems, got " + problems.size());
        this.file = file;
        this.line = problems.get(0).line();
        this.column = problems.get(0).column();
        this.problem = problems.get(0).problem();
        this.problems = List.copyOf(problems);
    }

    /** Every problem found in the file: this one alone, or each of several. */
    public List<ConfigException> problems() {
        return problems;
    }

    private static String format(Path file, int line, int column, String problem) {
        return line > 0 ? file + ":" + line + ":" + column + ": " + problem : file + ": " + problem;
    }

    /** The config file, as it was given to the loader (not made absolute). */
    public Path file() {
        return file;
    }

    /** 1-based line of the offending key or value; 0 when the whole file is at fault. */
    public int line() {
        return line;
    }

    /** 1-based column of the offending key or value; 0 when the whole file is at fault. */
    public int column() {
        return column;
    }

    /** The message without its {@code file:line:column:} prefix. */
    public String problem() {
        return problem;
    }
}
