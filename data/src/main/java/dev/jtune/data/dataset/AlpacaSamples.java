package dev.jtune.data.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jtune.data.config.DatasetFormat;
import dev.jtune.data.template.AlpacaTemplate;
import dev.jtune.data.template.ChatTemplates;
import dev.jtune.data.template.Message;
import dev.jtune.data.template.RenderedChat;
import dev.jtune.data.template.TokenizedChat;
import dev.jtune.data.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * {@code type: alpaca}: the Stanford Alpaca prompt ({@link #PREAMBLE_WITH_INPUT} and the {@code ### Input:}
 * section when the row's input is present and non-empty, as Axolotl's {@code if input:}; else
 * {@link AlpacaTemplate#DEFAULT_SYSTEM}), then the output and EOS, with BOS in front: the text of
 * {@link AlpacaTemplate}. Labels: the output and EOS, or everything with {@code train_on_inputs}.
 *
 * <p>The whole text is tokenized at once (as at inference, prompt and answer together); Axolotl tokenizes
 * prompt and answer separately, which gives the same ids where the prompt ends in a newline that the
 * tokenizer keeps apart from the answer (byte-level BPE); with SentencePiece the answer's first token may differ.
 */
public final class AlpacaSamples implements SampleBuilder {
    /** Stanford Alpaca's first line when there is an input. */
    public static final String PREAMBLE_WITH_INPUT = "Below is an instruction that describes a task, paired with an input "
            + "that provides further context. Write a response that appropriately completes the request.";

    private final DatasetFormat.Alpaca format;
    private final Tokenizer tokenizer;
    private final boolean trainOnInputs;
    private final AlpacaTemplate template;

    public AlpacaSamples(DatasetFormat.Alpaca format, Tokenizer tokenizer, boolean trainOnInputs) {
        this.format = Objects.requireNonNull(format, "format");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.trainOnInputs = trainOnInputs;
        this.template = (AlpacaTemplate) ChatTemplates.byName(AlpacaTemplate.NAME, tokenizer);
    }

    /** The conversation {@link AlpacaTemplate} renders as the Stanford prompt plus output. */
    public static List<Message> messages(String instruction, String input, String output) {
        List<Message> m = new ArrayList<>(3);
        if (input != null && !input.isEmpty()) {
            m.add(Message.system(PREAMBLE_WITH_INPUT));
            m.add(Message.user(instruction + "\n\n### Input:\n" + input));
        } else {
            m.add(Message.user(instruction));
        }
        m.add(Message.assistant(output));
        return m;
    }

    @Override
    public List<Sample> build(SourceRow row) {
        JsonNode o = Fields.object(row);
        String instruction = Fields.string(row, o, format.fieldInstruction(), format.fieldInstruction());
        String input = Fields.optionalString(row, o, format.fieldInput(), format.fieldInput());
        String output = Fields.string(row, o, format.fieldOutput(), format.fieldOutput());
        RenderedChat chat = template.render(messages(instruction, input, output), false);
        if (trainOnInputs) {
            return List.of(SampleBuilder.allTrained(tokenizer.encode(chat.text(), false)));
        }
        RenderedChat.Turn answer = chat.turns().get(chat.turns().size() - 1);
        if (answer.markerEnd() != chat.text().length()) {
            TokenizedChat t = TokenizedChat.of(tokenizer, chat); // the general rule, if the template ever changes
            return List.of(new Sample(t.inputIds(), t.labels()));
        }
        // The trained part runs to the end of the text, so TokenizedChat's rule reduces to one boundary: the
        // tokens the prompt alone shares with the whole text stay masked, the rest (a token straddling the
        // boundary included) is trained. One prefix encoding instead of one per turn: preprocessing's hot path.
        int[] ids = tokenizer.encode(chat.text(), false);
        int[] prompt = tokenizer.encode(chat.text().substring(0, answer.contentStart()), false);
        int common = 0;
        while (common < prompt.length && common < ids.length && prompt[common] == ids[common]) {
            common++;
        }
        int[] labels = ids.clone();
        java.util.Arrays.fill(labels, 0, common, Sample.IGNORE_INDEX);
        return List.of(new Sample(ids, labels));
    }
}
