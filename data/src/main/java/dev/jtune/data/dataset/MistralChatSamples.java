package dev.jtune.data.dataset;

import dev.jtune.data.config.DatasetFormat;
import dev.jtune.data.config.TrainOnEos;
import dev.jtune.data.template.Message;
import dev.jtune.data.template.MistralInstruct;
import dev.jtune.data.template.MistralInstruct.Turn;
import dev.jtune.data.template.TokenizedChat;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * {@code type: chat_template} with {@code tokenizer_use_mistral_common: true}: Axolotl's {@code MistralStrategy}
 * (prompt_strategies/chat_template.py at the pinned commit). The row's messages are read as {@link ChatSamples} reads
 * them (roles mapped, list contents joined as Axolotl joins them, so {@code type: thinking} parts are left out as
 * there) and encoded by mistral-common's instruct encoding ({@link MistralInstruct}); no chat template is involved.
 *
 * <p>Labels exactly as Axolotl computes them, quirks included: for each turn to train (its
 * {@code message_field_training} flag, else {@code train_on_inputs} or its role in {@code roles_to_train}) Axolotl's
 * {@code find_turn} encodes the conversation up to that turn twice, once with the turn's content replaced by
 * {@code [[dummy_message]]}, and trains the tokens between the first and the last difference of the two encodings, at
 * those positions of the whole conversation's ids. Then the first {@code </s>} from the end of that span, when at most
 * 3 tokens on, is trained per {@code train_on_eos} (mistral-common has no end-of-turn token: Axolotl uses the EOS). A
 * system message first is never trained (Axolotl: "mistral does not output message if it contains only system
 * message"). Where the prefix encodes differently from the whole conversation (v3 puts the system prompt in the last
 * user message) the positions shift as they do in Axolotl.
 */
public final class MistralChatSamples implements SampleBuilder {
    static final String DUMMY = "[[dummy_message]]";

    private final ChatSamples reader;
    private final DatasetFormat.Chat format;
    private final MistralInstruct instruct;
    private final boolean trainOnInputs;

    public MistralChatSamples(DatasetFormat.Chat format, ChatSamples reader, MistralInstruct instruct,
            boolean trainOnInputs) {
        this.format = Objects.requireNonNull(format, "format");
        this.reader = Objects.requireNonNull(reader, "reader");
        this.instruct = Objects.requireNonNull(instruct, "instruct");
        this.trainOnInputs = trainOnInputs;
    }

    @Override
    public List<Sample> build(SourceRow row) {
        ChatSamples.Conversation conv = reader.parse(row);
        if (conv.tools() != null) {
            throw row.error("tool schemas ('" + format.extras().fieldTools() + "') with tokenizer_use_mistral_common:"
                    + " mistral-common's [AVAILABLE_TOOLS] encoding is not implemented in jtune");
        }
        List<Turn> turns = new ArrayList<>();
        for (int i = 0; i < conv.messages().size(); i++) {
            Message m = conv.messages().get(i);
            if (m.fields().containsKey("tool_calls") || m.role().equals("tool")) {
                throw row.error("message " + i + ": tool calls and tool results with tokenizer_use_mistral_common:"
                        + " mistral-common's [TOOL_CALLS]/[TOOL_RESULTS] encoding is not implemented in jtune");
            }
            if (conv.detail().get(i) != null) {
                throw row.error("message " + i + ": message_field_training_detail with tokenizer_use_mistral_common is"
                        + " not implemented in jtune");
            }
            turns.add(new Turn(m.role(), m.content()));
        }
        try {
            return List.of(sample(turns, conv.training()));
        } catch (MistralInstruct.MistralException e) {
            throw row.error("mistral-common: " + e.getMessage());
        }
    }

    Sample sample(List<Turn> turns, List<Boolean> training) {
        int[] ids = instruct.encode(turns);
        int[] labels = new int[ids.length];
        Arrays.fill(labels, TokenizedChat.IGNORE_INDEX);
        TrainOnEos onEos = format.trainOnEos();
        int lastEos = -1;
        for (int index = 0; index < turns.size(); index++) {
            Turn turn = turns.get(index);
            Boolean flag = training.get(index);
            boolean train = flag != null ? flag : trainOnInputs || format.rolesToTrain().contains(turn.role());
            if (!train && onEos != TrainOnEos.ALL) {
                continue;
            }
            int[] span = findTurn(turns, index);
            if (train && span[0] != -1 && span[1] != -1) {
                for (int i = span[0]; i < Math.min(span[1], ids.length); i++) {
                    labels[i] = ids[i];
                }
            }
            // Axolotl looks for the EOT then the EOS; MistralStrategy's EOT is the EOS and train_on_eot defaults to
            // train_on_eos: the same token twice, with the same effect.
            int at = firstEos(ids, span[1]);
            if (at != -1 && Math.abs(at - span[1]) <= 3) {
                lastEos = at;
                if (onEos == TrainOnEos.ALL || (onEos == TrainOnEos.TURN && train)) {
                    labels[at] = ids[at];
                }
            }
        }
        if (onEos == TrainOnEos.LAST && lastEos != -1) {
            labels[lastEos] = ids[lastEos];
        }
        return new Sample(ids, labels);
    }

    /** Axolotl's {@code find_turn}: {start, end} of turn {@code index}'s tokens, or {-1, -1}. */
    private int[] findTurn(List<Turn> turns, int index) {
        Turn turn = turns.get(index);
        if (index == 0 && turn.role().equals(Message.SYSTEM)) {
            return new int[] {-1, -1};
        }
        List<Turn> withDummy = new ArrayList<>(turns.subList(0, index));
        withDummy.add(new Turn(turn.role(), DUMMY));
        int[] dummy = instruct.encode(withDummy);
        int[] full = instruct.encode(turns.subList(0, index + 1));
        int min = Math.min(dummy.length, full.length);
        int start = -1;
        for (int i = 0; i < min; i++) {
            if (dummy[i] != full[i]) {
                start = i;
                break;
            }
        }
        if (start == -1) {
            return new int[] {-1, -1};
        }
        int end = -1;
        for (int i = 0; i < min; i++) {
            if (dummy[dummy.length - 1 - i] != full[full.length - 1 - i]) {
                end = full.length - i;
                break;
            }
        }
        if (end == -1 || end <= start) {
            return new int[] {-1, -1};
        }
        return new int[] {start, end};
    }

    /** Axolotl's {@code find_first_eos_token}, Python indexing included: a negative start counts from the end. */
    private int firstEos(int[] ids, int start) {
        for (int i = start; i < ids.length; i++) {
            int k = i < 0 ? ids.length + i : i;
            if (k >= 0 && ids[k] == instruct.eosId()) {
                return i;
            }
        }
        return -1;
    }
}
