package dev.jtune.data.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jtune.data.config.DatasetFormat;
import dev.jtune.data.tokenizer.Tokenizer;
import java.util.List;
import java.util.Objects;

/**
 * Axolotl's user-defined prompt format ({@code type:} as a mapping): the prompt is {@code system_format} with
 * {@code {system}} (the row's system field, else {@code system_prompt}; left out when both are empty) followed by
 * {@code format} with {@code {instruction}} and {@code {input}} ({@code no_input_format} with {@code {instruction}}
 * when the row has no input); the output (optional, as Axolotl's {@code prompt[field_output] if field_output in
 * prompt else ""}) follows, tokenized apart from the prompt by Axolotl's rule ({@link InstructionTokens}): the
 * output and EOS are trained (everything with {@code train_on_inputs}).
 */
public final class UserDefinedSamples implements SampleBuilder {
    private final DatasetFormat.UserDefined format;
    private final Tokenizer tokenizer;
    private final boolean trainOnInputs;

    public UserDefinedSamples(DatasetFormat.UserDefined format, Tokenizer tokenizer, boolean trainOnInputs) {
        this.format = Objects.requireNonNull(format, "format");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.trainOnInputs = trainOnInputs;
    }

    /** The prompt of a row, as Axolotl's UserDefinedPrompter builds it (Python's str.format on the names). */
    public static String prompt(DatasetFormat.UserDefined f, String system, String instruction, String input) {
        String sys = system != null && !system.isEmpty() ? system : f.systemPrompt();
        String out = sys.isEmpty() ? "" : f.systemFormat().replace("{system}", sys);
        if (input != null && !input.isEmpty()) {
            return out + AlpacaSamples.format(f.format(), instruction, input);
        }
        return out + f.noInputFormat().replace("{instruction}", instruction);
    }

    @Override
    public List<Sample> build(SourceRow row) {
        JsonNode o = Fields.object(row);
        String instruction = Fields.string(row, o, format.fieldInstruction(), format.fieldInstruction());
        String input = Fields.optionalString(row, o, format.fieldInput(), format.fieldInput());
        String system = Fields.optionalString(row, o, format.fieldSystem(), format.fieldSystem());
        String output = Fields.optionalString(row, o, format.fieldOutput(), format.fieldOutput());
        String prompt = prompt(format, system, instruction, input);
        return List.of(InstructionTokens.promptThenResponse(tokenizer, prompt, output == null ? "" : output, trainOnInputs));
    }
}
