package dev.jtune.data.template;

import java.util.List;
import java.util.Objects;

/**
 * A rendered conversation: its text and one {@link Turn} per message, in order.
 *
 * <p>The turns partition the text: the first starts at 0, each ends where the next starts, the last ends at
 * {@code text.length()}. So text the template writes before the first message (a BOS token, a default
 * system line) belongs to the first turn, and a generation prompt after the last message to the last turn.
 */
public record RenderedChat(String text, List<Turn> turns) {

    /** Characters {@code [start, end)} of the text; empty when {@code start == end}. */
    public record Span(int start, int end) {
        public Span {
            if (start < 0 || end < start) {
                throw new IllegalArgumentException("need 0 <= start <= end, got " + start + ", " + end);
            }
        }

        public boolean isEmpty() {
            return start == end;
        }
    }

    /**
     * The characters of message {@code index}: {@code [start, end)} is its whole turn (headers and separators
     * included); {@code [contentStart, contentEnd)} the message's content as the template wrote it (stripped,
     * where the template strips it); {@code [markerStart, markerEnd)} its end-of-turn marker ({@code </s>},
     * {@code <|im_end|>}, {@code <|eot_id|>}), at or after the content's end, empty where the template ends
     * this turn without one (a user turn of Alpaca or Vicuna, whose prompt just goes on). A message the template
     * does not write, or writes inside another message's turn (Llama 2's system message, inside the first user
     * turn), may have an empty turn, content and marker.
     */
    public record Turn(int index, String role, int start, int end, int contentStart, int contentEnd, int markerStart,
            int markerEnd) {
        public Turn {
            Objects.requireNonNull(role, "role");
            if (start < 0 || start > contentStart || contentStart > contentEnd || contentEnd > markerStart
                    || markerStart > markerEnd || markerEnd > end) {
                throw new IllegalArgumentException("turn " + index
                        + ": need 0 <= start <= contentStart <= contentEnd <= markerStart <= markerEnd <= end, got "
                        + start + ", " + contentStart + ", " + contentEnd + ", " + markerStart + ", " + markerEnd + ", " + end);
            }
        }

        /** A turn whose marker starts right at the content's end (the built-in templates). */
        public Turn(int index, String role, int start, int end, int contentStart, int contentEnd, int markerEnd) {
            this(index, role, start, end, contentStart, contentEnd, contentEnd, markerEnd);
        }

        public boolean isAssistant() {
            return Message.ASSISTANT.equals(role);
        }

        public Span content() {
            return new Span(contentStart, contentEnd);
        }

        public Span marker() {
            return new Span(markerStart, markerEnd);
        }

        /**
         * The characters trained on when the content, the marker, or both are: one span when they are adjacent
         * ({@code [contentStart, contentStart)} when neither is trained); see {@link #trained} for the general case.
         */
        public Span span(boolean content, boolean marker) {
            if (content && marker) return new Span(contentStart, markerEnd);
            if (content) return content();
            if (marker) return marker();
            return new Span(contentStart, contentStart);
        }

        /**
         * The trained characters as separate spans: the content and the marker each, where chosen and non-empty
         * (whatever lies between them, e.g. a space before {@code </s>}, is not trained).
         */
        public List<Span> trained(boolean content, boolean marker) {
            if (content && marker && contentEnd == markerStart) {
                return contentStart == markerEnd ? List.of() : List.of(new Span(contentStart, markerEnd));
            }
            List<Span> out = new java.util.ArrayList<>(2);
            if (content && contentEnd > contentStart) {
                out.add(content());
            }
            if (marker && markerEnd > markerStart) {
                out.add(marker());
            }
            return out;
        }
    }

    public RenderedChat {
        Objects.requireNonNull(text, "text");
        turns = List.copyOf(turns);
        int at = 0;
        for (int i = 0; i < turns.size(); i++) {
            Turn t = turns.get(i);
            if (t.index() != i || t.start() != at) {
                throw new IllegalArgumentException("turn " + i + " must have index " + i + " and start at " + at + ": " + t);
            }
            at = t.end();
        }
        if (!turns.isEmpty() && at != text.length()) {
            throw new IllegalArgumentException("the last turn must end at the text's end " + text.length() + ", not " + at);
        }
    }

    /** The text of turn {@code index}. */
    public String turnText(int index) {
        Turn t = turns.get(index);
        return text.substring(t.start(), t.end());
    }

    /** The content of message {@code index} as rendered. */
    public String contentText(int index) {
        return text(turns.get(index).content());
    }

    /** The end-of-turn marker of message {@code index} ("" when it has none). */
    public String markerText(int index) {
        return text(turns.get(index).marker());
    }

    /** The text of {@code span}. */
    public String text(Span span) {
        return text.substring(span.start(), span.end());
    }
}
