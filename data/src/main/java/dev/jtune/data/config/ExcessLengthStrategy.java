package dev.jtune.data.config;

/** What happens to an example longer than {@code sequence_len} ({@code excess_length_strategy}). */
public enum ExcessLengthStrategy {
    /** Leave the example out. */
    DROP("drop"),
    /** Keep its first {@code sequence_len} tokens. */
    TRUNCATE("truncate");

    private final String yamlName;

    ExcessLengthStrategy(String yamlName) {
        this.yamlName = yamlName;
    }

    /** The name as written in the config file. */
    public String yamlName() {
        return yamlName;
    }
}
