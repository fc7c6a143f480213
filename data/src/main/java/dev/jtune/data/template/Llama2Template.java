package dev.jtune.data.template;

import java.util.List;

/**
 * Llama 2 chat, as Meta's reference code and transformers' Llama-2 chat template write it: an optional
 * leading system message, then user and assistant messages alternating, starting with user.
 * {@code <s>[INST] USER [/INST]} per user message (the first one prefixed, inside {@code [INST]}, by
 * {@code <<SYS>>\nSYSTEM\n<</SYS>>\n\n}; the whole stripped), {@code  ASSISTANT </s>} per assistant
 * message (stripped content between spaces). A user message already cues the answer, so the generation prompt
 * adds nothing. The system message's turn is empty: its text is inside the first user turn. Contents: the
 * stripped user and assistant texts; markers: an assistant's {@code " </s>"} (a user turn has none).
 */
public final class Llama2Template implements ChatTemplate {
    public static final String NAME = "llama2";
    public static final String ALTERNATE = "Conversation roles must alternate user/assistant/user/assistant/...";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public RenderedChat render(List<Message> messages, boolean addGenerationPrompt) {
        TurnWriter w = new TurnWriter();
        String system = w.beginLeadingSystem(messages);
        int first = system == null ? 0 : 1;
        for (int i = first; i < messages.size(); i++) {
            Message m = messages.get(i);
            boolean userExpected = (i - first) % 2 == 0;
            if (!m.role().equals(userExpected ? Message.USER : Message.ASSISTANT)) {
                throw new ChatTemplateException(NAME + ": message " + i + " has role \"" + m.role() + "\": " + ALTERNATE
                        + " (after an optional first system message)");
            }
            w.begin(m.role());
            if (userExpected) {
                String prefix = i == first && system != null ? "<<SYS>>\n" + system + "\n<</SYS>>\n\n" : "";
                // the template strips system prefix + content as one string
                String stripped = TurnWriter.pyStrip(prefix + m.content());
                int prefixKept = Math.min(prefix.length(), stripped.length());
                w.append("<s>[INST] " + stripped.substring(0, prefixKept)).content(stripped.substring(prefixKept)).append(" [/INST]");
            } else {
                w.append(" ").content(TurnWriter.pyStrip(m.content())).marker(" </s>");
            }
        }
        return w.build();
    }

    @Override
    public String toString() {
        return NAME;
    }
}
