package dev.jtune.lora;

import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * A Python {@code re} pattern (3.11+) as a {@link Pattern} with the same meaning, for PEFT's
 * {@code re.fullmatch(target_modules, key)}. The common syntax is shared; what the two engines spell differently is
 * translated ({@code (?P<name>...)}, {@code (?P=name)}, {@code \Z}, {@code {,n}}, {@code \a}, {@code \v},
 * {@code \U0001F600}, {@code [} inside a set); what one of them lacks or reads otherwise is refused with the
 * reason: Java-only syntax ({@code \p{..}}, {@code \Q..\E}, {@code \h}, {@code \R}, {@code &&} in a set,
 * {@code (?<name>)}) that Python rejects or reads literally, and Python-only syntax ({@code (?#...)},
 * {@code (?(1)a|b)}, {@code \N{...}}, inline flags a, L, u) that Java lacks. Both are Unicode-aware
 * ({@code \w}, {@code \d}, {@code \s}, case folding), as a Python {@code str} pattern is.
 */
public final class PyRegex {
    private PyRegex() {}

    /**
     * Translates and compiles.
     *
     * @throws IllegalArgumentException naming the construct at fault and why
     */
    public static Pattern compile(String python) {
        String java = translate(python);
        try {
            return Pattern.compile(java, Pattern.UNICODE_CHARACTER_CLASS | Pattern.UNICODE_CASE);
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException("not a valid regular expression: " + e.getDescription() + " near index "
                    + e.getIndex());
        }
    }

    static String translate(String p) {
        StringBuilder out = new StringBuilder();
        boolean inSet = false;
        int setStart = -1;
        for (int i = 0; i < p.length(); i++) {
            char c = p.charAt(i);
            if (c == '\\') {
                if (i + 1 >= p.length()) throw refuse(p, i, "a trailing backslash");
                i = escape(p, i, inSet, out);
                continue;
            }
            if (inSet) {
                if (c == ']' && i > setStart) {
                    inSet = false;
                    out.append(c);
                } else if (c == '[') {
                    out.append("\\["); // a literal in Python; Java would open a nested set
                } else if (c == '&' && i + 1 < p.length() && p.charAt(i + 1) == '&') {
                    out.append("\\&\\&"); // a literal pair in Python; Java's set intersection
                    i++;
                } else {
                    out.append(c);
                }
                continue;
            }
            switch (c) {
                case '[' -> {
                    inSet = true;
                    out.append(c);
                    // Python: a ']' right after '[' or '[^' is a literal member.
                    int j = i + 1;
                    if (j < p.length() && p.charAt(j) == '^') {
                        out.append('^');
                        j++;
                    }
                    if (j < p.length() && p.charAt(j) == ']') {
                        out.append("\\]");
                        j++;
                    }
                    i = j - 1;
                    setStart = j;
                }
                case '(' -> i = group(p, i, out);
                case '{' -> i = brace(p, i, out);
                default -> out.append(c);
            }
        }
        if (inSet) throw refuse(p, p.length(), "an unterminated character set");
        return out.toString();
    }

    /** An escape at {@code i}; returns the index of its last character. */
    private static int escape(String p, int i, boolean inSet, StringBuilder out) {
        char e = p.charAt(i + 1);
        switch (e) {
            case 'd', 'D', 'w', 'W', 's', 'S', 'n', 't', 'r', 'f' -> out.append('\\').append(e);
            case 'b', 'B' -> {
                if (inSet) {
                    if (e == 'B') throw refuse(p, i, "\\B inside a set (an error in Python)");
                    out.append("\\x08"); // backspace in a Python set
                } else {
                    out.append('\\').append(e);
                }
            }
            case 'A' -> out.append(inSet ? refuseAppend(p, i, "\\A inside a set") : "\\A");
            case 'Z' -> out.append(inSet ? refuseAppend(p, i, "\\Z inside a set") : "\\z"); // Python's \Z: the very end
            case 'a' -> out.append("\\x07");
            case 'v' -> out.append("\\x0B"); // vertical tab in Python; a class of vertical whitespace in Java
            case 'x' -> {
                if (i + 3 >= p.length() || !p.substring(i + 2, i + 4).matches("[0-9a-fA-F]{2}")) {
                    throw refuse(p, i, "an incomplete \\x escape (Python wants two hex digits)");
                }
                out.append(p, i, i + 4);
                return i + 3;
            }
            case 'u', 'U' -> {
                int n = e == 'u' ? 4 : 8;
                if (i + 2 + n > p.length()) throw refuse(p, i, "an incomplete \\" + e + " escape");
                String hex = p.substring(i + 2, i + 2 + n);
                if (!hex.matches("[0-9a-fA-F]+")) throw refuse(p, i, "a bad \\" + e + " escape");
                out.append("\\x{").append(hex).append('}');
                return i + 1 + n;
            }
            case '0' -> {
                // Python: \0 then up to two more octal digits.
                int j = i + 2;
                while (j < p.length() && j < i + 4 && p.charAt(j) >= '0' && p.charAt(j) <= '7') j++;
                out.append("\\0").append(p, i + 1, j);
                return j - 1;
            }
            case '1', '2', '3', '4', '5', '6', '7', '8', '9' -> {
                if (inSet) throw refuse(p, i, "an octal or back-reference escape inside a set");
                int j = i + 1;
                while (j < p.length() && j < i + 3 && Character.isDigit(p.charAt(j))) j++;
                if (j - i - 1 == 2 && j < p.length() && p.charAt(j) >= '0' && p.charAt(j) <= '7') {
                    throw refuse(p, i, "a three-digit octal escape");
                }
                out.append("\\").append(p, i + 1, j).append("(?:)"); // the (?:) keeps Java from reading more digits
                return j - 1;
            }
            default -> {
                if (Character.isLetterOrDigit(e)) {
                    throw refuse(p, i, "\\" + e + " (Python's re rejects it or reads it otherwise than Java: write the"
                            + " pattern with Python's own escapes)");
                }
                out.append('\\').append(e); // an escaped punctuation character: a literal in both
            }
        }
        return i + 1;
    }

    private static String refuseAppend(String p, int i, String what) {
        throw refuse(p, i, what + " (an error in Python)");
    }

    /** A group opening at {@code i}; returns the index of the last character consumed. */
    private static int group(String p, int i, StringBuilder out) {
        if (i + 1 >= p.length() || p.charAt(i + 1) != '?') {
            out.append('(');
            return i;
        }
        String rest = p.substring(i + 2);
        if (rest.startsWith("P<")) {
            int end = rest.indexOf('>');
            if (end < 0) throw refuse(p, i, "an unterminated group name");
            out.append("(?<").append(rest, 2, end).append('>');
            return i + 2 + end;
        }
        if (rest.startsWith("P=")) {
            int end = rest.indexOf(')');
            if (end < 0) throw refuse(p, i, "an unterminated back-reference");
            out.append("\\k<").append(rest, 2, end).append('>');
            return i + 2 + end;
        }
        if (rest.startsWith(":") || rest.startsWith("=") || rest.startsWith("!") || rest.startsWith("<=")
                || rest.startsWith("<!") || rest.startsWith(">")) {
            out.append("(?");
            return i + 1;
        }
        if (rest.startsWith("#")) throw refuse(p, i, "a (?#...) comment (Java has none)");
        if (rest.startsWith("(")) throw refuse(p, i, "a conditional group (?(...)...) (Java has none)");
        if (rest.startsWith("<")) throw refuse(p, i, "(?<name>...) (Python spells a named group (?P<name>...))");
        // Inline flags: (?imsx) at the start, or scoped (?imsx-imsx:...).
        int j = 0;
        while (j < rest.length() && "aiLmsux-".indexOf(rest.charAt(j)) >= 0) j++;
        String flags = rest.substring(0, j);
        if (j == 0 || j >= rest.length() || (rest.charAt(j) != ')' && rest.charAt(j) != ':')) {
            throw refuse(p, i, "an unknown group extension");
        }
        if (flags.chars().anyMatch(f -> "aLu".indexOf(f) >= 0)) {
            throw refuse(p, i, "the inline flags a, L, u (no Java equivalent)");
        }
        if (rest.charAt(j) == ')' && i != 0) {
            throw refuse(p, i, "global inline flags not at the start of the pattern (an error in Python)");
        }
        out.append("(?").append(flags);
        return i + 1 + j;
    }

    /** A '{' at {@code i}: a quantifier ({@code {,n}} becomes {@code {0,n}}) or, as in Python, a literal. */
    private static int brace(String p, int i, StringBuilder out) {
        java.util.regex.Matcher m = Pattern.compile("\\{(\\d*)(,(\\d*))?}").matcher(p).region(i, p.length());
        if (m.lookingAt() && !(m.group(1).isEmpty() && m.group(2) == null)) {
            String min = m.group(1).isEmpty() ? "0" : m.group(1);
            out.append('{').append(min);
            if (m.group(2) != null) out.append(',').append(m.group(3));
            out.append('}');
            return m.end() - 1;
        }
        out.append("\\{"); // not a quantifier: Python reads it literally, Java would reject it
        return i;
    }

    private static IllegalArgumentException refuse(String p, int at, String what) {
        return new IllegalArgumentException("the regular expression '" + p + "' has " + what + " at index " + at);
    }
}
