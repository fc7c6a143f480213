package dev.jtune.data.config;

import java.util.Map;
import java.util.Optional;
import java.util.Set;

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
    /**
     * Plain text in overlapping windows with EOS, every token trained: Axolotl's {@code pretrain}, read only in
     * {@code pretraining_dataset:} (Axolotl takes its text column from there).
     */
    PRETRAIN("pretrain"),
    /** Template-free rows: {@code segments} of {@code {text, label}}, each tokenized alone, trained where label. */
    INPUT_OUTPUT("input_output"),
    /** Axolotl's user-defined prompt format: {@code type:} given as a mapping ({@code format}, ...). */
    USER_DEFINED("user_defined"),
    /**
     * No {@code type:} (absent or empty, as Axolotl's example "leave empty to load pre-tokenized"): rows of
     * {@code input_ids}, {@code attention_mask} and {@code labels}, used as they are. Not a name a config writes.
     */
    PRE_TOKENIZED("");

    private final String yamlName;

    DatasetType(String yamlName) {
        this.yamlName = yamlName;
    }

    /**
     * Other spellings of these types that Axolotl's loaders (prompt_strategies/__init__.py {@code load} and
     * utils/data/wrappers.py at {@link AxolotlKeys#COMMIT}) resolve to the same strategy: {@code <module>.load}
     * calls the module's {@code load}, the strategy the bare module name calls; {@code alpaca_instruct} builds the
     * same AlpacaPromptTokenizingStrategy(AlpacaPrompter(INSTRUCT)) as {@code alpaca}. ({@code alpaca:<style>} and
     * the other prompter types are read by ConfigReader with their {@link InstructionKind} and {@link PromptStyle}.)
     */
    static final Map<String, DatasetType> ALIASES = Map.of(
            "chat_template.load", CHAT_TEMPLATE,
            "completion.load", COMPLETION,
            "input_output.load", INPUT_OUTPUT,
            "alpaca_instruct", ALPACA,
            "alpaca_instruct.load", ALPACA);

    /**
     * The modules of Axolotl's preference and reward strategies (prompt_strategies/dpo, kto, orpo, bradley_terry,
     * ebft): a type {@code <module>.<function>} there, e.g. {@code chat_template.default}, is a preference-data
     * format read only with {@code rl:}; in an SFT run Axolotl's own loader finds no such strategy.
     */
    private static final Set<String> PREFERENCE_MODULES = Set.of("chat_template", "chatml", "llama3", "passthrough",
            "user_defined", "zephyr", "bradley_terry", "ebft");

    /** The type a config's {@code type:} string names, by its name or an {@link #ALIASES alias}. */
    static Optional<DatasetType> byName(String text) {
        for (DatasetType type : values()) {
            if (type != USER_DEFINED && type != PRE_TOKENIZED && type != PRETRAIN && type.yamlName.equals(text)) return Optional.of(type);
        }
        return Optional.ofNullable(ALIASES.get(text));
    }

    /** Why {@code text} is not an SFT type, when it is one of Axolotl's preference-data types; else empty. */
    static Optional<String> preferenceType(String text) {
        int dot = text.indexOf('.');
        if (dot <= 0 || !PREFERENCE_MODULES.contains(text.substring(0, dot)) || ALIASES.containsKey(text)) {
            return Optional.empty();
        }
        return Optional.of("'" + text + "' is one of Axolotl's preference/reward data formats (its"
                + " prompt_strategies/dpo, kto, orpo, bradley_terry or ebft modules), read only with rl: or"
                + " reward_model:; jtune trains SFT only: for conversations give type: chat_template");
    }

    /** The name as written in the config file. */
    public String yamlName() {
        return yamlName;
    }
}
