package dev.jtune.data.template;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * One message of a conversation: a role ({@code system}, {@code user}, {@code assistant}, {@code tool}, ...),
 * its text, and any other fields a chat template reads ({@code tool_calls}, {@code name},
 * {@code reasoning_content}, ...: JSON-like values, passed to the template as they are).
 */
public record Message(String role, String content, Map<String, Object> fields) {
    public static final String SYSTEM = "system";
    public static final String USER = "user";
    public static final String ASSISTANT = "assistant";

    public Message {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(content, "content");
        if (role.isBlank()) {
            throw new IllegalArgumentException("a message role must not be blank");
        }
        fields = fields == null || fields.isEmpty() ? Map.of() : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(fields));
        if (fields.containsKey("role") || fields.containsKey("content")) {
            throw new IllegalArgumentException("a message's other fields must not hold 'role' or 'content'");
        }
    }

    public Message(String role, String content) {
        this(role, content, Map.of());
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

    /** This message with another content (its other fields kept). */
    public Message withContent(String newContent) {
        return new Message(role, newContent, fields);
    }

    /** The message as the template sees it: {@code role}, {@code content}, then the other fields. */
    public Map<String, Object> toMap() {
        Map<String, Object> map = new LinkedHashMap<>();
        map.put("role", role);
        map.put("content", content);
        map.putAll(fields);
        return map;
    }
}
