package dev.jtune.data.config;

import java.util.Optional;

/**
 * Axolotl's {@code PromptStyle} (prompters.py at {@link AxolotlKeys#COMMIT}): the turn and system formats of its
 * Alpaca prompter, chosen by the part after the colon in {@code type: alpaca:chat}. {@link #INSTRUCT} is the default.
 */
public enum PromptStyle {
    INSTRUCT("instruct", "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
            "### Instruction:\n{instruction}\n\n### Response:\n", "{system}\n\n"),
    CHAT("chat", "USER: {instruction}\n{input}\nASSISTANT:", "USER: {instruction}\nASSISTANT:", "SYSTEM: {system}\n"),
    CHATML("chatml", "<|im_start|>user\n{instruction}\n{input}<|im_end|>\n<|im_start|>assistant\n",
            "<|im_start|>user\n{instruction}<|im_end|>\n<|im_start|>assistant\n", "<|im_start|>system\n{system}<|im_end|>\n"),
    PHI("phi", "<|user|>\n{instruction}<|end|>{input}<|assistant|>", "<|user|>\n{instruction}<|end|>\n<|assistant|>\n",
            "<|system|>\n{system}<|end|>\n");

    private final String yamlName;
    private final String turnFormat;
    private final String turnNoInputFormat;
    private final String systemFormat;

    PromptStyle(String yamlName, String turnFormat, String turnNoInputFormat, String systemFormat) {
        this.yamlName = yamlName;
        this.turnFormat = turnFormat;
        this.turnNoInputFormat = turnNoInputFormat;
        this.systemFormat = systemFormat;
    }

    public String yamlName() {
        return yamlName;
    }

    /** The turn with {@code {instruction}} and {@code {input}}. */
    public String turnFormat() {
        return turnFormat;
    }

    /** The turn with {@code {instruction}} only, for rows without an input. */
    public String turnNoInputFormat() {
        return turnNoInputFormat;
    }

    /** The system line's format, with {@code {system}}. */
    public String systemFormat() {
        return systemFormat;
    }

    public static Optional<PromptStyle> byName(String name) {
        for (PromptStyle s : values()) {
            if (s.yamlName.equals(name)) return Optional.of(s);
        }
        return Optional.empty();
    }
}
