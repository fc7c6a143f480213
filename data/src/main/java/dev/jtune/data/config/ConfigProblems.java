package dev.jtune.data.config;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Collects the problems that checks made after a config loaded find (those that read the trainer keys into their
 * records, or compare the config with the model's config.json and tokenizer), and reports them as the loader reports
 * its own: each as {@code file:line:column: problem} at the key at fault, all of them in one
 * {@link ConfigException}.
 *
 * <p>A check names the key it reads; a problem whose message begins with a key path the file holds
 * ({@code fsdp_config.fsdp_offload_params: ...}, {@code lora_r is set but ...}) is placed at that key instead.
 */
public final class ConfigProblems {
    // The key path a message may begin with: lora_r, fsdp_config.fsdp_offload_params, datasets[0].split.
    private static final Pattern LEADING_PATH = Pattern.compile("^([A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z0-9_]+|\\[\\d+])*)");

    private final TrainConfig config;
    private final List<ConfigException> found = new ArrayList<>();

    public ConfigProblems(TrainConfig config) {
        this.config = config;
    }

    /** A problem at {@code key} (a dotted path, or "" for the file as a whole). */
    public void add(String key, String problem) {
        String text = withoutSource(problem);
        String at = key;
        Matcher m = LEADING_PATH.matcher(text);
        if (m.find() && (config.positions().containsKey(m.group(1)) || key.isEmpty())) {
            at = m.group(1); // the message names the key at fault itself
        }
        Optional<TrainConfig.Position> position = at.isEmpty() ? Optional.empty() : config.position(at);
        found.add(new ConfigException(config.source(), position.map(TrainConfig.Position::line).orElse(0),
                position.map(TrainConfig.Position::column).orElse(0), text));
    }

    /**
     * Runs one check of {@code key}: its result, or empty when it threw an {@link IllegalArgumentException} or a
     * {@link ConfigException}, which is then one problem at the key (each of a ConfigException's problems).
     */
    public <T> Optional<T> check(String key, Supplier<T> check) {
        try {
            return Optional.ofNullable(check.get());
        } catch (ConfigException e) {
            for (ConfigException one : e.problems()) {
                if (one.line() > 0) {
                    found.add(one);
                } else {
                    add(key, one.problem());
                }
            }
        } catch (IllegalArgumentException e) {
            add(key, e.getMessage());
        }
        return Optional.empty();
    }

    /** {@link #check} for a check without a result; whether it passed. */
    public boolean run(String key, Runnable check) {
        int before = found.size();
        check(key, () -> {
            check.run();
            return Boolean.TRUE;
        });
        return found.size() == before;
    }

    /** Whether no problem was found. */
    public boolean isEmpty() {
        return found.isEmpty();
    }

    /** The problems found so far, sorted by position (file-wide ones first). */
    public List<ConfigException> problems() {
        return found.stream().sorted(Comparator.comparingInt(ConfigException::line)
                .thenComparingInt(ConfigException::column)).toList();
    }

    /** @throws ConfigException the one problem found, or one listing them all */
    public void throwIfAny() {
        List<ConfigException> sorted = problems();
        if (sorted.size() == 1) throw sorted.get(0);
        if (sorted.size() > 1) throw new ConfigException(config.source(), sorted);
    }

    /** Messages of the trainer's own checks begin with the config file's name; here the position says it. */
    private String withoutSource(String problem) {
        String prefix = config.source() + ": ";
        return problem != null && problem.startsWith(prefix) ? problem.substring(prefix.length())
                : String.valueOf(problem);
    }
}
