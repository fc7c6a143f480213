package dev.jtune.data.template;

import java.util.Objects;

/** One message of a conversation: a role ({@code system}, {@code user}, {@code assistant}, ...) and its text. */
public record Message(String role, String content) {
    public static final String SYSTEM = "system";
    public static final String USER = "user";
    public static final String ASSISTANT = "assistant";

    public Message {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(content, "content");
        if (role.isBlank()) {
            throw new IllegalArgumentException("a message role must not be blank");
        }
    }

    public static Message system(String content) {
        return new Message(SYSTEM, content);
    }

    public static Message user(String content) {
        return new Message(USER, content);
    }

    public static Message assistant(String content) {
        return new Message(ASSISTANT, content);
    }

    public boolean isAssistant() {
        return ASSISTANT.equals(role);
    }
}
