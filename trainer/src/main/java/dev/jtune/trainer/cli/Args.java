package dev.jtune.trainer.cli;

import dev.jtune.data.config.Suggest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Command-line arguments of one verb: {@code --name value} options, {@code --flag} switches and
 * positional words. Every option must be declared, so a typo is an error, not a silent default.
 */
final class Args {
    private final String verb;
    private final Map<String, String> options = new LinkedHashMap<>();
    private final List<String> positional = new ArrayList<>();

    private Args(String verb) {
        this.verb = verb;
    }

    /**
     * @param valued options that take a value ({@code --out DIR}); also accepted as {@code --out=DIR}
     * @param flags options without a value ({@code --help})
     */
    static Args parse(String verb, String[] argv, Set<String> valued, Set<String> flags) {
        Args a = new Args(verb);
        for (int i = 0; i < argv.length; i++) {
            String arg = argv[i];
            if (arg.startsWith("--")) {
                String name = arg.substring(2);
                String value = null;
                int eq = name.indexOf('=');
                if (eq >= 0) {
                    value = name.substring(eq + 1);
                    name = name.substring(0, eq);
                }
                if (flags.contains(name) && value == null) {
                    a.options.put(name, "true");
                } else if (valued.contains(name)) {
                    if (value == null) {
                        if (i + 1 >= argv.length) {
                            throw new UsageException(verb + ": --" + name + " needs a value");
                        }
                        value = argv[++i];
                    }
                    a.options.put(name, value);
                } else {
                    throw new UsageException(verb + ": unknown option --" + name
                            + Suggest.closest(name, union(valued, flags)).map(s -> " (did you mean --" + s + "?)")
                                    .orElse(""));
                }
            } else {
                a.positional.add(arg);
            }
        }
        return a;
    }

    private static List<String> union(Set<String> a, Set<String> b) {
        var all = new ArrayList<>(a);
        all.addAll(b);
        return all;
    }

    String require(String name) {
        String v = options.get(name);
        if (v == null) {
            throw new UsageException(verb + ": missing --" + name);
        }
        return v;
    }

    String get(String name, String fallback) {
        return options.getOrDefault(name, fallback);
    }

    boolean has(String name) {
        return options.containsKey(name);
    }

    boolean flag(String name) {
        return options.containsKey(name);
    }

    long getLong(String name, long fallback) {
        String v = options.get(name);
        if (v == null) {
            return fallback;
        }
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new UsageException(verb + ": --" + name + " expects an integer, got '" + v + "'");
        }
    }

    List<String> positional() {
        return positional;
    }

    /** Bad command-line usage: printed with the verb's help, exit code 2. */
    static final class UsageException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        UsageException(String message) {
            super(message);
        }
    }
}
