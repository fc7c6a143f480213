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

    /**
     * The characters of message {@code index}: {@code [start, end)} is its whole turn (headers and separators
     * included), {@code [trainStart, trainEnd)} the part trained on: for an assistant message its content plus
     * the end-of-turn marker ({@code </s>}, {@code <|im_end|>}, {@code <|eot_id|>}, ...); empty
     * ({@code trainStart == trainEnd}) for other roles.
     */
    public record Turn(int index, String role, int start, int end, int trainStart, int trainEnd) {
        public Turn {
            Objects.requireNonNull(role, "role");
            if (start < 0 || start > trainStart || trainStart > trainEnd || trainEnd > end) {
                throw new IllegalArgumentException("turn " + index + ": need 0 <= start <= trainStart <= trainEnd <= end, got "
                        + start + ", " + trainStart + ", " + trainEnd + ", " + end);
            }
        }

        public boolean trainable() {
            return trainEnd > trainStart;
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

    /** The trained text of turn {@code index} (empty for non-assistant turns). */
    public String trainText(int index) {
        Turn t = turns.get(index);
        return text.substring(t.trainStart(), t.trainEnd());
    }
}
