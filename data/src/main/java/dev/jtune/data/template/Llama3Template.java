package dev.jtune.data.template;

import java.util.List;

/**
 * Meta's Llama 3 format: {@code <|begin_of_text|>}, then per message
 * {@code <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>} with the content stripped of
 * surrounding whitespace (as Meta's template's {@code | trim}); the generation prompt is
 * {@code <|start_header_id|>assistant<|end_header_id|>\n\n}. Marker of every message: {@code <|eot_id|>}.
 */
public final class Llama3Template implements ChatTemplate {
    public static final String NAME = "llama3";
    public static final String BEGIN_OF_TEXT = "<|begin_of_text|>";
    public static final String EOT = "<|eot_id|>";

    @Override
    public String name() {
        return NAME;
    }

    private static String header(String role) {
        return "<|start_header_id|>" + role + "<|end_header_id|>\n\n";
    }

    @Override
    public RenderedChat render(List<Message> messages, boolean addGenerationPrompt) {
        TurnWriter w = new TurnWriter();
        w.append(BEGIN_OF_TEXT);
        for (Message m : messages) {
            w.begin(m.role()).append(header(m.role()));
            w.content(TurnWriter.pyStrip(m.content())).marker(EOT);
        }
        if (addGenerationPrompt) {
            w.append(header(Message.ASSISTANT));
        }
        return w.build();
    }

    @Override
    public String toString() {
        return NAME;
    }
}
