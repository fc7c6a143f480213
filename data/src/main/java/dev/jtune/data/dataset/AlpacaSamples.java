package dev.jtune.data.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jtune.data.config.DatasetFormat;
import dev.jtune.data.config.InstructionKind;
import dev.jtune.data.config.PromptStyle;
import dev.jtune.data.template.AlpacaTemplate;
import dev.jtune.data.tokenizer.Tokenizer;
import java.util.List;
import java.util.Objects;

/**
 * {@code type: alpaca} and the other types Axolotl formats with its Alpaca prompter ({@link InstructionKind}:
 * {@code jeopardy}, {@code oasst}, {@code gpteacher}, ..., each with an optional {@link PromptStyle}), as Axolotl's
 * {@code InstructionPromptTokenizingStrategy} does it at {@code dev.jtune.data.config.AxolotlKeys#COMMIT}: the
 * prompt (the system line, then the turn with the instruction and the input when the input is non-empty) and the
 * response are tokenized <em>separately</em>, each with the tokenizer's own special tokens, and concatenated; the
 * response gets EOS unless it already ends in it, and loses a leading BOS. Labels: the response's ids, the prompt
 * masked (everything trained with {@code train_on_inputs}). An empty response adds nothing (no EOS), as Axolotl.
 *
 * <p>Tokenizing the two parts apart is also cheaper than the whole text plus the prompt (one pass over each
 * character). Axolotl truncates each part to {@code sequence_len} before concatenating; jtune leaves that to
 * {@code excess_length_strategy}, which gives the same first {@code sequence_len} tokens (a part that long already
 * makes the row too long).
 */
public final class AlpacaSamples implements SampleBuilder {
    /** Stanford Alpaca's first line when there is an input. */
    public static final String PREAMBLE_WITH_INPUT = "Below is an instruction that describes a task, paired with an input "
            + "that provides further context. Write a response that appropriately completes the request.";
    private static final String EXPLAIN = "Choose the answer that best answers the question. Explain your reasoning.\n";
    private static final String CONCISE = "Choose the answer that best answers the question. Be concise in your response.\n\n";

    private final DatasetFormat.Alpaca format;
    private final Tokenizer tokenizer;
    private final boolean trainOnInputs;

    public AlpacaSamples(DatasetFormat.Alpaca format, Tokenizer tokenizer, boolean trainOnInputs) {
        this.format = Objects.requireNonNull(format, "format");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.trainOnInputs = trainOnInputs;
    }

    /**
     * The prompt Axolotl's prompter builds for {@code kind} in {@code style} (prompters.py {@code _build_result}
     * without the output): the system line when the prompter has one, then the turn; a null or empty input takes
     * the no-input turn, as Python's {@code if input:}.
     */
    public static String prompt(InstructionKind kind, PromptStyle style, String instruction, String input) {
        String turn = style.turnFormat();
        String turnNoInput = style.turnNoInputFormat();
        String systemFormat = style.systemFormat();
        String system = PREAMBLE_WITH_INPUT;
        String systemNoInput = AlpacaTemplate.DEFAULT_SYSTEM;
        switch (kind) {
            case CONCISECHOICE -> { // overrides match_prompt_style: fixed chat turns, the class's "{system}"
                turn = PromptStyle.CHAT.turnFormat();
                turnNoInput = PromptStyle.CHAT.turnNoInputFormat();
                systemFormat = "{system}";
                system = systemNoInput = CONCISE;
            }
            case SUMMARIZETLDR -> {
                turn = "USER: Summarize the following article as a TL;DR.\n{instruction}\n{input}\nASSISTANT:";
                turnNoInput = "USER: Summarize the following article as a TL;DR.\n{instruction}\nASSISTANT:";
                system = systemNoInput = "";
            }
            case EXPLAINCHOICE -> system = systemNoInput = EXPLAIN;
            default -> { }
        }
        boolean hasInput = input != null && !input.isEmpty();
        String sys = hasInput ? system : systemNoInput;
        String head = sys.isEmpty() ? "" : systemFormat.replace("{system}", sys);
        return head + format(hasInput ? turn : turnNoInput, instruction, hasInput ? input : "");
    }

    /**
     * Python's {@code str.format(instruction=..., input=...)} on a prompter's format: one pass, so braces inside a
     * value (an instruction that contains {@code {input}}) stay as they are. Also the user-defined format's.
     */
    static String format(String template, String instruction, String input) {
        StringBuilder b = new StringBuilder(template.length() + instruction.length() + input.length());
        int i = 0;
        while (i < template.length()) {
            if (template.startsWith("{instruction}", i)) {
                b.append(instruction);
                i += "{instruction}".length();
            } else if (template.startsWith("{input}", i)) {
                b.append(input);
                i += "{input}".length();
            } else {
                b.append(template.charAt(i++));
            }
        }
        return b.toString();
    }

    @Override
    public List<Sample> build(SourceRow row) {
        JsonNode o = Fields.object(row);
        String instruction;
        String input;
        String response;
        switch (format.kind()) {
            case ALPACA -> {
                instruction = Fields.string(row, o, format.fieldInstruction(), format.fieldInstruction());
                input = Fields.optionalString(row, o, format.fieldInput(), format.fieldInput());
                response = Fields.string(row, o, format.fieldOutput(), format.fieldOutput());
            }
            case JEOPARDY -> {
                instruction = Fields.string(row, o, "question", "question");
                input = Fields.string(row, o, "category", "category");
                response = "what is " + Fields.string(row, o, "answer", "answer");
            }
            case OASST -> {
                instruction = Fields.string(row, o, "INSTRUCTION", "INSTRUCTION");
                input = "";
                response = Fields.string(row, o, "RESPONSE", "RESPONSE");
            }
            case GPTEACHER -> {
                instruction = Fields.string(row, o, "instruction", "instruction");
                input = Fields.optionalString(row, o, "input", "input");
                response = Fields.string(row, o, "response", "response");
            }
            case SUMMARIZETLDR -> {
                instruction = Fields.string(row, o, "article", "article");
                input = "";
                response = Fields.string(row, o, "summary", "summary");
            }
            case EXPLAINCHOICE, CONCISECHOICE -> {
                instruction = Fields.string(row, o, "question", "question");
                input = choices(row, o);
                response = o.has("solution") ? Fields.string(row, o, "solution", "solution")
                        : Fields.string(row, o, "explanation", "solution (or explanation)");
            }
            default -> throw new IllegalStateException(format.kind().toString());
        }
        String prompt = prompt(format.kind(), format.style(), instruction, input);
        return List.of(InstructionTokens.promptThenResponse(tokenizer, prompt, response, trainOnInputs));
    }

    /** {@code "\n".join(f'- "{choice}"' for choice in prompt["choices"])}. */
    private static String choices(SourceRow row, JsonNode o) {
        JsonNode list = o.get("choices");
        if (list == null || !list.isArray()) {
            throw row.error("field 'choices' must be a list of strings");
        }
        StringBuilder b = new StringBuilder();
        for (JsonNode c : list) {
            if (!c.isTextual()) {
                throw row.error("field 'choices' must be a list of strings, found " + Fields.kind(c));
            }
            if (!b.isEmpty()) b.append('\n');
            b.append("- \"").append(c.asText()).append('"');
        }
        return b.toString();
    }
}
