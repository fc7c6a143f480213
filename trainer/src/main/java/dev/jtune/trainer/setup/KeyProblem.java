package dev.jtune.trainer.setup;

import dev.jtune.data.config.TrainConfig;
import java.util.List;

/**
 * One problem of a config key (a dotted path such as {@code qat.group_size}), as the settings readers find it and
 * {@link ConfigChecks} reports it, at the key's position.
 */
public record KeyProblem(String key, String message) {

    /** An error naming the config file and every problem, unless {@code problems} is empty. */
    static void throwIfAny(TrainConfig config, List<KeyProblem> problems) {
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException(config.source() + ": " + String.join("; ",
                    problems.stream().map(KeyProblem::message).toList()));
        }
    }

    /** {@code settings} when {@code problems} is empty; else {@link #throwIfAny}'s error. */
    static <T> T orThrow(TrainConfig config, List<KeyProblem> problems, T settings) {
        throwIfAny(config, problems);
        return settings;
    }
}
