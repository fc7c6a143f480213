package dev.jtune.data.config;

/** Which end-of-turn tokens count as labels in a conversation dataset ({@code train_on_eos}). */
public enum TrainOnEos {
    /** The end-of-turn token of every turn that is itself trained on. */
    TURN("turn"),
    /** Only the end-of-turn token of the last turn. */
    LAST("last"),
    /** Every end-of-turn token, whoever's turn. */
    ALL("all"),
    /** None. */
    NONE("none");

    private final String yamlName;

    TrainOnEos(String yamlName) {
        this.yamlName = yamlName;
    }

    /** The name as written in the config file. */
    public String yamlName() {
        return yamlName;
    }
}
