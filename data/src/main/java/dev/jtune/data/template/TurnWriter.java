package dev.jtune.data.template;

import java.util.ArrayList;
import java.util.List;

/** Builds a {@link RenderedChat} piece by piece for the built-in templates. */
final class TurnWriter {
    private final StringBuilder text = new StringBuilder();
    private final List<String> roles = new ArrayList<>();
    private final List<int[]> marks = new ArrayList<>(); // {start, contentStart, contentEnd, markerEnd}

    /** Starts message {@code roles.size()}; the first one starts at 0 whatever was written before. */
    TurnWriter begin(String role) {
        int at = roles.isEmpty() ? 0 : text.length();
        roles.add(role);
        marks.add(new int[] {at, -1, -1, -1});
        return this;
    }

    /**
     * Starts the system turn when the conversation opens with a system message, as every built-in allows.
     *
     * @return that message's content, or null when the conversation has none (its messages then start at 0,
     *     otherwise at 1)
     */
    String beginLeadingSystem(List<Message> messages) {
        if (messages.isEmpty() || !messages.getFirst().role().equals(Message.SYSTEM)) {
            return null;
        }
        begin(Message.SYSTEM);
        return messages.getFirst().content();
    }

    /**
     * Writes the conversation's leading system message as a system turn's content, or, when it has none,
     * {@code fallback} as plain text (not a turn: nothing to train or mask as a message).
     *
     * @return the index of the first message after the system one (1 or 0)
     */
    int leadingSystemOr(List<Message> messages, String fallback) {
        String given = beginLeadingSystem(messages);
        if (given == null) {
            append(fallback);
            return 0;
        }
        content(given);
        return 1;
    }

    TurnWriter append(String s) {
        text.append(s);
        return this;
    }

    /** Appends {@code s} as the current message's content. */
    TurnWriter content(String s) {
        int[] m = marks.getLast();
        m[1] = text.length();
        text.append(s);
        m[2] = text.length();
        m[3] = text.length();
        return this;
    }

    /** Appends {@code s} as the current message's end-of-turn marker, right after its {@link #content}. */
    TurnWriter marker(String s) {
        int[] m = marks.getLast();
        if (m[2] != text.length()) {
            throw new IllegalStateException("the marker must follow the content directly");
        }
        text.append(s);
        m[3] = text.length();
        return this;
    }

    int length() {
        return text.length();
    }

    RenderedChat build() {
        List<RenderedChat.Turn> turns = new ArrayList<>(roles.size());
        for (int i = 0; i < roles.size(); i++) {
            int[] m = marks.get(i);
            int end = i + 1 < roles.size() ? marks.get(i + 1)[0] : text.length();
            int contentStart = m[1] < 0 ? m[0] : m[1];
            int contentEnd = m[2] < 0 ? m[0] : m[2];
            int markerEnd = m[3] < 0 ? m[0] : m[3];
            turns.add(new RenderedChat.Turn(i, roles.get(i), m[0], end, contentStart, contentEnd, markerEnd));
        }
        return new RenderedChat(text.toString(), turns);
    }

    /** Python's {@code str.strip()} (and Jinja's {@code trim}): strips Unicode whitespace at both ends. */
    static String pyStrip(String s) {
        int b = 0;
        int e = s.length();
        while (b < e && isPySpace(s.charAt(b))) {
            b++;
        }
        while (e > b && isPySpace(s.charAt(e - 1))) {
            e--;
        }
        return s.substring(b, e);
    }

    static boolean isPySpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085';
    }

    static ChatTemplateException unsupportedRole(String template, int index, Message m, String allowed) {
        return new ChatTemplateException(template + ": message " + index + " has role \"" + m.role()
                + "\"; this template takes " + allowed);
    }
}
