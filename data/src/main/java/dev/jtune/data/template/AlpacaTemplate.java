package dev.jtune.data.template;

import java.util.List;
import java.util.Objects;

/**
 * Alpaca (Stanford Alpaca's prompt, as Axolotl's {@code alpaca} writes it), extended to several turns:
 * {@code BOS SYSTEM\n\n### Instruction:\nQ\n\n### Response:\nA</s>}, a following turn starting with
 * {@code \n\n### Instruction:\n}. The system line is the first message's content when that is a system
 * message, else {@link #DEFAULT_SYSTEM}; the generation prompt is {@code ### Response:\n}. {@code </s>} is the
 * tokenizer's EOS token and BOS its BOS token ("" when it has none). Contents: the given system line, Q and A;
 * markers: an assistant's {@code </s>} (a user turn has none).
 */
public final class AlpacaTemplate implements ChatTemplate {
    public static final String NAME = "alpaca";
    public static final String DEFAULT_SYSTEM =
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.";

    private final String bos;
    private final String eos;

    public AlpacaTemplate(String bos, String eos) {
        this.bos = Objects.requireNonNull(bos, "bos");
        this.eos = Objects.requireNonNull(eos, "eos");
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public RenderedChat render(List<Message> messages, boolean addGenerationPrompt) {
        TurnWriter w = new TurnWriter();
        w.append(bos);
        int first = w.leadingSystemOr(messages, DEFAULT_SYSTEM);
        w.append("\n\n");
        boolean afterAssistant = false;
        for (int i = first; i < messages.size(); i++) {
            Message m = messages.get(i);
            switch (m.role()) {
                case Message.USER -> w.begin(m.role()).append((afterAssistant ? "\n\n" : "") + "### Instruction:\n").content(m.content()).append("\n\n");
                case Message.ASSISTANT -> w.begin(m.role()).append("### Response:\n").content(m.content()).marker(eos);
                default -> throw TurnWriter.unsupportedRole(NAME, i, m, "user and assistant messages after an optional first system message");
            }
            afterAssistant = m.isAssistant();
        }
        if (addGenerationPrompt) {
            w.append((afterAssistant ? "\n\n" : "") + "### Response:\n");
        }
        return w.build();
    }

    @Override
    public String toString() {
        return NAME;
    }
}
