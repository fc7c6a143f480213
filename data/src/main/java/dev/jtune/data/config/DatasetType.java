package dev.jtune.data.config;

/** The dataset {@code type:} values jtune understands, named as in Axolotl. */
public enum DatasetType {
    /** Rows with instruction, optional input and output fields, formatted with the Alpaca prompt. */
    ALPACA("alpaca"),
    /** Conversations in ShareGPT layout ({@code conversations} of {@code from}/{@code value} turns). */
    SHAREGPT("sharegpt"),
    /** Conversations as {@code messages} of {@code role}/{@code content} turns, rendered by a chat template. */
    CHAT_TEMPLATE("chat_template"),
    /** Plain text, trained on in full (continued pre-training). */
    COMPLETION("completion"),
    /** Template-free rows: {@code segments} of {@code {text, label}}, each tokenized alone, trained where label. */
    INPUT_OUTPUT("input_output"),
    /** Axolotl's user-defined prompt format: {@code type:} given as a mapping ({@code format}, ...). */
    USER_DEFINED("user_defined");

    private final String yamlName;

    DatasetType(String yamlName) {
        this.yamlName = yamlName;
    }

    /** The name as written in the config file. */
    public String yamlName() {
        return yamlName;
    }
}
