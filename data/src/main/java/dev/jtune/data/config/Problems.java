package dev.jtune.data.config;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Supplier;

/** Collects every problem of one file, so that a single run reports them all (sorted by position). */
final class Problems {
    private final Path file;
    private final List<ConfigException> found = new ArrayList<>();

    Problems(Path file) {
        this.file = file;
    }

    void add(ConfigException problem) {
        if (problem.problems().size() > 1) {
            found.addAll(problem.problems());
        } else {
            found.add(problem);
        }
    }

    /** The supplier's value; on a problem, records it and gives {@code fallback} so reading can go on. */
    <T> T attempt(Supplier<T> read, T fallback) {
        try {
            return read.get();
        } catch (ConfigException e) {
            add(e);
            return fallback;
        }
    }

    void attempt(Runnable check) {
        attempt(() -> {
            check.run();
            return null;
        }, null);
    }

    boolean isEmpty() {
        return found.isEmpty();
    }

    /** @throws ConfigException the one problem, or one listing them all */
    void throwIfAny() {
        if (found.isEmpty()) return;
        if (found.size() == 1) throw found.get(0);
        List<ConfigException> sorted = found.stream()
                .sorted(Comparator.comparingInt(ConfigException::line).thenComparingInt(ConfigException::column))
                .toList();
        throw new ConfigException(file, sorted);
    }
}
