package dev.jtune.data.template;

import java.util.List;
import java.util.Objects;

/**
 * Vicuna v1.1, as FastChat's {@code conversation.py} ({@code vicuna_v1.1}: {@code SeparatorStyle.ADD_COLON_TWO},
 * roles {@code USER}/{@code ASSISTANT}, {@code sep=" "}, {@code sep2="</s>"}) writes it:
 * {@code BOS SYSTEM USER: Q ASSISTANT: A</s>USER: Q2 ASSISTANT:}. The system line is the first message's
 * content when that is a system message, else {@link #DEFAULT_SYSTEM}. FastChat's {@code </s>} is the
 * tokenizer's EOS token here, and its training tokenizes with the tokenizer's BOS in front, which this template
 * writes (nothing when the tokenizer has none). Markers: an assistant's {@code </s>} (a user turn has none).
 */
public final class VicunaTemplate implements ChatTemplate {
    public static final String NAME = "vicuna_v1.1";
    public static final String DEFAULT_SYSTEM = "A chat between a curious user and an artificial intelligence assistant. "
            + "The assistant gives helpful, detailed, and polite answers to the user's questions.";

    private final String bos;
    private final String eos;

    /** @param bos written first ("" for none) @param eos the end of an assistant turn (FastChat: "</s>") */
    public VicunaTemplate(String bos, String eos) {
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
        w.append(" ");
        for (int i = first; i < messages.size(); i++) {
            Message m = messages.get(i);
            switch (m.role()) {
                case Message.USER -> w.begin(m.role()).append("USER: ").content(m.content()).append(" ");
                case Message.ASSISTANT -> w.begin(m.role()).append("ASSISTANT: ").content(m.content()).marker(eos);
                default -> throw TurnWriter.unsupportedRole(NAME, i, m, "user and assistant messages after an optional first system message");
            }
        }
        if (addGenerationPrompt) {
            w.append("ASSISTANT:");
        }
        return w.build();
    }

    @Override
    public String toString() {
        return NAME;
    }
}
