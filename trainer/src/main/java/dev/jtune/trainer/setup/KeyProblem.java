package dev.jtune.trainer.setup;

import dev.jtune.data.config.TrainConfig;
import java.util.List;

/**
 * One problem of a config key (a dotted path such as {@code qat.group_size}), as the settings readers find it and
 * {@link ConfigChecks} reports it, at the key's position.
 */
public record KeyProblem(String key, String message) {

    /** {@code settings} when {@code problems} is empty; else an error naming the config file and every problem. */
    static <T> T orThrow(TrainConfig config, List<KeyProblem> problems, T settings) {
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException(config.source() + ": " + String.join("; ",
                    problems.stream().map(KeyProblem::message).toList()));
        }
        return settings;
    }
}
