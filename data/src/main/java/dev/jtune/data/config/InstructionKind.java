package dev.jtune.data.config;

import java.util.Optional;

/**
 * The instruction dataset types Axolotl builds with its Alpaca prompter ({@code utils/data/wrappers.py}'s
 * {@code DATASET_HANDLERS} at {@link AxolotlKeys#COMMIT}): which columns hold the instruction, the input and the
 * response, and which system line and turn formats the prompter writes. All are {@link DatasetType#ALPACA} rows
 * to jtune; each may carry a {@link PromptStyle} after a colon ({@code alpaca:chatml}).
 */
public enum InstructionKind {
    /** {@code instruction}, optional {@code input}, {@code output}; Stanford Alpaca's system lines. */
    ALPACA("alpaca"),
    /** {@code question}, {@code category} as the input, {@code "what is " + answer}; Alpaca's system lines. */
    JEOPARDY("jeopardy"),
    /** OpenAssistant's {@code INSTRUCTION} and {@code RESPONSE}; no input; Alpaca's system lines. */
    OASST("oasst"),
    /** {@code instruction}, optional {@code input}, {@code response}; Alpaca's system lines. */
    GPTEACHER("gpteacher"),
    /** {@code article} and {@code summary}, no system line, its own "Summarize ... TL;DR" chat turn. */
    SUMMARIZETLDR("summarizetldr"),
    /** {@code question}, {@code choices} listed as the input, {@code solution} (else {@code explanation}). */
    EXPLAINCHOICE("explainchoice"),
    /** As {@link #EXPLAINCHOICE}, with the "be concise" system line and a fixed chat turn. */
    CONCISECHOICE("concisechoice");

    private final String yamlName;

    InstructionKind(String yamlName) {
        this.yamlName = yamlName;
    }

    public String yamlName() {
        return yamlName;
    }

    /** The kind a type's base name (before any {@code :style}) names. */
    public static Optional<InstructionKind> byName(String base) {
        for (InstructionKind k : values()) {
            if (k.yamlName.equals(base)) return Optional.of(k);
        }
        return Optional.empty();
    }
}
