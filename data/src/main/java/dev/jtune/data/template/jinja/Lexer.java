package dev.jtune.data.template.jinja;

import java.util.ArrayList;
import java.util.List;

/**
 * Splits a template into tokens the way Jinja2's lexer does with transformers' settings: {@code trim_blocks}
 * (the first newline after a block or comment tag is dropped), {@code lstrip_blocks} (spaces and tabs from the
 * start of a line up to a block or comment tag are dropped, only when nothing else precedes the tag on that
 * line), {@code -} and {@code +} whitespace control on either side of a tag, newlines normalised to
 * {@code \n}, and one trailing newline of the template dropped ({@code keep_trailing_newline=False}).
 */
final class Lexer {

    enum Kind { TEXT, VAR_BEGIN, VAR_END, BLOCK_BEGIN, BLOCK_END, NAME, STRING, INT, FLOAT, OP, EOF }

    record Token(Kind kind, String text, Object value, int line) {
        boolean is(Kind k, String t) {
            return kind == k && text.equals(t);
        }

        boolean isOp(String t) {
            return kind == Kind.OP && text.equals(t);
        }

        boolean isName(String t) {
            return kind == Kind.NAME && text.equals(t);
        }
    }

    private static final String[] OPERATORS = {
        "//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}",
        ">", "<", "=", ".", ":", "|", ",", ";"
    };

    private final String src;
    private final List<Token> out = new ArrayList<>();
    private int pos;
    private int line = 1;
    private boolean lineStarting = true;

    private Lexer(String source) {
        String s = source.replace("\r\n", "\n").replace('\r', '\n');
        if (s.endsWith("\n")) {
            s = s.substring(0, s.length() - 1);
        }
        this.src = s;
    }

    static List<Token> tokenize(String source) {
        Lexer lx = new Lexer(source);
        lx.run();
        return lx.out;
    }

    private void run() {
        while (pos < src.length()) {
            int tag = nextTag(pos);
            if (tag < 0) {
                emitText(src.substring(pos));
                pos = src.length();
                break;
            }
            char kind = src.charAt(tag + 1); // '{', '%' or '#'
            char sign = tag + 2 < src.length() ? src.charAt(tag + 2) : 0;
            String text = src.substring(pos, tag);
            if (sign == '-') {
                text = rstrip(text);
            } else if (sign != '+' && kind != '{') {
                int lpos = text.lastIndexOf('\n') + 1;
                if ((lpos > 0 || lineStarting) && lpos < text.length() && isAllSpace(text, lpos)) {
                    text = text.substring(0, lpos);
                }
            }
            emitText(text);
            line += countNewlines(src, pos, tag);
            pos = tag + 2 + (sign == '-' || sign == '+' ? 1 : 0);
            lineStarting = false;
            if (kind == '#') {
                comment();
            } else if (kind == '%' && isRaw()) {
                raw();
            } else {
                tag(kind == '{');
            }
        }
        out.add(new Token(Kind.EOF, "", null, line));
    }

    private int nextTag(int from) {
        int i = from;
        while (true) {
            i = src.indexOf('{', i);
            if (i < 0 || i + 1 >= src.length()) {
                return -1;
            }
            char c = src.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') {
                return i;
            }
            i++;
        }
    }

    private void emitText(String text) {
        if (!text.isEmpty()) {
            out.add(new Token(Kind.TEXT, text, text, line));
        }
    }

    private void comment() {
        int end = src.indexOf("#}", pos);
        if (end < 0) {
            throw new JinjaException("line " + line + ": missing end of comment tag");
        }
        char before = end > pos ? src.charAt(end - 1) : 0;
        line += countNewlines(src, pos, end);
        pos = end + 2;
        closeTag(before == '-', before == '+');
    }

    /** After a tag's closing delimiter: {@code -} strips all whitespace, else trim_blocks drops one newline. */
    private void closeTag(boolean minus, boolean plus) {
        int start = pos;
        if (minus) {
            while (pos < src.length() && isSpace(src.charAt(pos))) {
                pos++;
            }
        } else if (!plus && pos < src.length() && src.charAt(pos) == '\n') {
            pos++;
        }
        line += countNewlines(src, start, pos);
        lineStarting = pos > 0 && src.charAt(pos - 1) == '\n';
    }

    private boolean isRaw() {
        int i = skipSpace(pos);
        return src.startsWith("raw", i) && (i + 3 >= src.length() || !isNameChar(src.charAt(i + 3)));
    }

    private void raw() {
        int i = skipSpace(skipSpace(pos) + 3);
        boolean minus = src.startsWith("-%}", i);
        if (!minus && !src.startsWith("%}", i)) {
            throw new JinjaException("line " + line + ": expected %} after raw");
        }
        pos = i + (minus ? 3 : 2);
        if (minus) {
            while (pos < src.length() && isSpace(src.charAt(pos))) {
                pos++;
            }
        }
        int search = pos;
        while (true) {
            int tag = src.indexOf("{%", search);
            if (tag < 0) {
                throw new JinjaException("line " + line + ": missing {% endraw %}");
            }
            int j = tag + 2;
            char sign = j < src.length() ? src.charAt(j) : 0;
            if (sign == '-' || sign == '+') {
                j++;
            }
            j = skipSpace(j);
            if (src.startsWith("endraw", j)) {
                j = skipSpace(j + 6);
                boolean endMinus = src.startsWith("-%}", j);
                boolean endPlus = src.startsWith("+%}", j);
                if (endMinus || endPlus || src.startsWith("%}", j)) {
                    String text = src.substring(pos, tag);
                    if (sign == '-') {
                        text = rstrip(text);
                    }
                    emitText(text);
                    line += countNewlines(src, pos, tag);
                    pos = j + (endMinus || endPlus ? 3 : 2);
                    closeTag(endMinus, endPlus);
                    return;
                }
            }
            search = tag + 2;
        }
    }

    /** The inside of a {@code {{ ... }}} or {@code {% ... %}} tag, up to and including its end. */
    private void tag(boolean variable) {
        out.add(new Token(variable ? Kind.VAR_BEGIN : Kind.BLOCK_BEGIN, variable ? "{{" : "{%", null, line));
        String end = variable ? "}}" : "%}";
        int depth = 0;
        while (true) {
            while (pos < src.length() && isSpace(src.charAt(pos))) {
                if (src.charAt(pos) == '\n') {
                    line++;
                }
                pos++;
            }
            if (pos >= src.length()) {
                throw new JinjaException("line " + line + ": unexpected end of template, expected '" + end + "'");
            }
            if (depth == 0) {
                boolean minus = src.startsWith("-" + end, pos);
                boolean plus = !variable && src.startsWith("+" + end, pos);
                if (minus || plus || src.startsWith(end, pos)) {
                    out.add(new Token(variable ? Kind.VAR_END : Kind.BLOCK_END, end, null, line));
                    pos += end.length() + (minus || plus ? 1 : 0);
                    if (variable) {
                        if (minus) {
                            closeTag(true, false);
                        } else {
                            lineStarting = false;
                        }
                    } else {
                        closeTag(minus, plus);
                    }
                    return;
                }
            }
            char c = src.charAt(pos);
            if (c == '\'' || c == '"') {
                string(c);
            } else if (Character.isDigit(c)) {
                number();
            } else if (Character.isLetter(c) || c == '_') {
                int s = pos;
                while (pos < src.length() && isNameChar(src.charAt(pos))) {
                    pos++;
                }
                String name = src.substring(s, pos);
                out.add(new Token(Kind.NAME, name, name, line));
            } else {
                String op = null;
                for (String o : OPERATORS) {
                    if (src.startsWith(o, pos)) {
                        op = o;
                        break;
                    }
                }
                if (op == null) {
                    throw new JinjaException("line " + line + ": unexpected character '" + c + "'");
                }
                switch (op) {
                    case "(", "[", "{" -> depth++;
                    case ")", "]", "}" -> {
                        if (depth == 0) {
                            throw new JinjaException("line " + line + ": unexpected '" + op + "'");
                        }
                        depth--;
                    }
                    default -> { }
                }
                out.add(new Token(Kind.OP, op, null, line));
                pos += op.length();
            }
        }
    }

    private void string(char quote) {
        int startLine = line;
        StringBuilder sb = new StringBuilder();
        int i = pos + 1;
        while (true) {
            if (i >= src.length()) {
                throw new JinjaException("line " + startLine + ": unterminated string");
            }
            char c = src.charAt(i);
            if (c == quote) {
                break;
            }
            if (c == '\n') {
                line++;
            }
            if (c != '\\' || i + 1 >= src.length()) {
                sb.append(c);
                i++;
                continue;
            }
            // Python's "unicode-escape" decoding, as Jinja2 applies it to string literals
            char e = src.charAt(i + 1);
            i += 2;
            switch (e) {
                case 'n' -> sb.append('\n');
                case 't' -> sb.append('\t');
                case 'r' -> sb.append('\r');
                case '\\' -> sb.append('\\');
                case '\'' -> sb.append('\'');
                case '"' -> sb.append('"');
                case 'a' -> sb.append('\u0007');
                case 'b' -> sb.append('\b');
                case 'f' -> sb.append('\f');
                case 'v' -> sb.append('\u000B');
                case '\n' -> line++;
                case 'x', 'u', 'U' -> {
                    int len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    if (i + len > src.length()) {
                        throw new JinjaException("line " + line + ": truncated \\" + e + " escape");
                    }
                    sb.appendCodePoint(Integer.parseInt(src.substring(i, i + len), 16));
                    i += len;
                }
                default -> {
                    if (e >= '0' && e <= '7') {
                        int s = i - 1;
                        int end = s;
                        while (end < src.length() && end < s + 3 && src.charAt(end) >= '0' && src.charAt(end) <= '7') {
                            end++;
                        }
                        sb.appendCodePoint(Integer.parseInt(src.substring(s, end), 8));
                        i = end;
                    } else {
                        sb.append('\\').append(e);
                    }
                }
            }
        }
        pos = i + 1;
        String s = sb.toString();
        out.add(new Token(Kind.STRING, s, s, startLine));
    }

    private void number() {
        int s = pos;
        while (pos < src.length() && (Character.isDigit(src.charAt(pos)) || src.charAt(pos) == '_')) {
            pos++;
        }
        boolean isFloat = false;
        if (pos + 1 < src.length() && src.charAt(pos) == '.' && Character.isDigit(src.charAt(pos + 1))) {
            isFloat = true;
            pos++;
            while (pos < src.length() && (Character.isDigit(src.charAt(pos)) || src.charAt(pos) == '_')) {
                pos++;
            }
        }
        if (pos < src.length() && (src.charAt(pos) == 'e' || src.charAt(pos) == 'E')) {
            int p = pos + 1;
            if (p < src.length() && (src.charAt(p) == '+' || src.charAt(p) == '-')) {
                p++;
            }
            if (p < src.length() && Character.isDigit(src.charAt(p))) {
                isFloat = true;
                pos = p;
                while (pos < src.length() && Character.isDigit(src.charAt(pos))) {
                    pos++;
                }
            }
        }
        String text = src.substring(s, pos).replace("_", "");
        Object v = isFloat ? (Object) Double.parseDouble(text) : (Object) Long.parseLong(text);
        out.add(new Token(isFloat ? Kind.FLOAT : Kind.INT, text, v, line));
    }

    private int skipSpace(int i) {
        while (i < src.length() && isSpace(src.charAt(i))) {
            i++;
        }
        return i;
    }

    private static boolean isNameChar(char c) {
        return Character.isLetterOrDigit(c) || c == '_';
    }

    private static int countNewlines(String s, int from, int to) {
        int n = 0;
        for (int i = from; i < to; i++) {
            if (s.charAt(i) == '\n') {
                n++;
            }
        }
        return n;
    }

    private static boolean isAllSpace(String s, int from) {
        for (int i = from; i < s.length(); i++) {
            if (!isSpace(s.charAt(i))) {
                return false;
            }
        }
        return true;
    }

    static String rstrip(String s) {
        int e = s.length();
        while (e > 0 && isSpace(s.charAt(e - 1))) {
            e--;
        }
        return s.substring(0, e);
    }

    /** Python's {@code str.isspace} for one character (what {@code \s} and {@code strip()} match). */
    static boolean isSpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085';
    }
}
