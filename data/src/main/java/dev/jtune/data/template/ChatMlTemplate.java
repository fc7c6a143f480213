package dev.jtune.data.template;

import java.util.List;

/**
 * ChatML: {@code <|im_start|>ROLE\nCONTENT<|im_end|>\n} per message, any role; the generation prompt is
 * {@code <|im_start|>assistant\n}. No BOS. Marker of every message: {@code <|im_end|>} (not the newline
 * after it). Same text as the usual Jinja ChatML template.
 */
public final class ChatMlTemplate implements ChatTemplate {
    public static final String NAME = "chatml";
    public static final String IM_START = "<|im_start|>";
    public static final String IM_END = "<|im_end|>";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public RenderedChat render(List<Message> messages, boolean addGenerationPrompt) {
        TurnWriter w = new TurnWriter();
        for (Message m : messages) {
            w.begin(m.role()).append(IM_START + m.role() + "\n");
            w.content(m.content()).marker(IM_END).append("\n");
        }
        if (addGenerationPrompt) {
            w.append(IM_START + Message.ASSISTANT + "\n");
        }
        return w.build();
    }

    @Override
    public String toString() {
        return NAME;
    }
}
