package dev.jtune.data.dataset;

import com.fasterxml.jackson.databind.JsonNode;

/** Typed access to a row's fields, with errors naming the field and what was expected. */
final class Fields {
    private Fields() {}

    static JsonNode object(SourceRow row) {
        if (!row.value().isObject()) {
            throw row.error("the row is " + kind(row.value()) + ", expected a JSON object");
        }
        return row.value();
    }

    /** The string at {@code parent.get(key)}; {@code name} is how the error names the field. */
    static String string(SourceRow row, JsonNode parent, String key, String name) {
        JsonNode v = parent.get(key);
        if (v == null || v.isMissingNode()) {
            throw row.error("field '" + name + "' missing (expected a string)");
        }
        if (!v.isTextual()) {
            throw row.error("field '" + name + "' is " + kind(v) + " (expected a string)");
        }
        return v.asText();
    }

    /** The string, or null when the field is missing or null. */
    static String optionalString(SourceRow row, JsonNode parent, String key, String name) {
        JsonNode v = parent.get(key);
        if (v == null || v.isNull() || v.isMissingNode()) {
            return null;
        }
        if (!v.isTextual()) {
            throw row.error("field '" + name + "' is " + kind(v) + " (expected a string)");
        }
        return v.asText();
    }

    static String kind(JsonNode v) {
        return switch (v.getNodeType()) {
            case ARRAY -> "an array";
            case OBJECT -> "an object";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case NULL -> "null";
            case STRING -> "a string";
            default -> v.getNodeType().toString().toLowerCase(java.util.Locale.ROOT);
        };
    }
}
