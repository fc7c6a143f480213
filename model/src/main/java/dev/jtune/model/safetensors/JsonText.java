package dev.jtune.model.safetensors;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.util.Comparator;

/**
 * JSON helpers: a strict parser, and string output matching the writers the format's other implementations
 * use (serde_json for safetensors headers, Python's {@code json.dumps} for PEFT and bitsandbytes files).
 */
public final class JsonText {
    private JsonText() {}


    /**
     * Headers may legally hold up to 100 MB, so Jackson's default string and name caps (which serde_json lacks)
     * are lifted; trailing garbage is rejected as serde_json rejects it.
     */
    static final ObjectMapper MAPPER = JsonMapper.builder(JsonFactory.builder()
                    .streamReadConstraints(StreamReadConstraints.builder()
                            .maxStringLength(Integer.MAX_VALUE)
                            .maxNameLength(Integer.MAX_VALUE)
                            .build())
                    .build())
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    /**
     * Unicode code point order: what Rust's {@code str} ordering and Python's {@code sorted} use. {@link String}'s
     * natural order compares UTF-16 units and disagrees for characters beyond the BMP.
     */
    static final Comparator<String> CODE_POINT_ORDER = (a, b) -> {
        int i = 0;
        int j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i);
            int cb = b.codePointAt(j);
            if (ca != cb) {
                return Integer.compare(ca, cb);
            }
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Boolean.compare(i < a.length(), j < b.length());
    };

    private static final char[] HEX = "0123456789abcdef".toCharArray();


    /** Appends {@code s} as a JSON string the way serde_json (the Rust crate's writer) does: only controls escaped. */
    static void appendSerde(StringBuilder out, String s) {
        appendQuoted(out, s, Character.MAX_VALUE);
    }

    /**
     * Appends {@code s} as Python's {@code json.dumps} does by default ({@code ensure_ascii=True}): everything outside
     * printable ASCII becomes a six-character unicode escape, characters beyond the BMP a surrogate pair of them.
     */
    public static void appendPython(StringBuilder out, String s) {
        appendQuoted(out, s, (char) 0x7E);
    }

    /** The escaping both writers share; characters above {@code maxLiteral} become unicode escapes. */
    private static void appendQuoted(StringBuilder out, String s, char maxLiteral) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20 || c > maxLiteral) {
                        appendUnicodeEscape(out, c);
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }

    private static void appendUnicodeEscape(StringBuilder out, char c) {
        out.append("\\u").append(HEX[c >> 12 & 0xF]).append(HEX[c >> 8 & 0xF]).append(HEX[c >> 4 & 0xF]).append(HEX[c & 0xF]);
    }
}
