package dev.jtune.data.template.jinja;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** Python's {@code str} methods that differ from Java's: strip sets, split, title, replace counts. */
final class Strings {
    private Strings() {}

    /** {@code strip}/{@code lstrip}/{@code rstrip}: whitespace when {@code chars} is null, else any of chars. */
    static String strip(String s, String chars, boolean left, boolean right) {
        int b = 0;
        int e = s.length();
        if (left) {
            while (b < e && strips(s.charAt(b), chars)) {
                b++;
            }
        }
        if (right) {
            while (e > b && strips(s.charAt(e - 1), chars)) {
                e--;
            }
        }
        return s.substring(b, e);
    }

    private static boolean strips(char c, String chars) {
        return chars == null ? Lexer.isSpace(c) : chars.indexOf(c) >= 0;
    }

    /** {@code s.split()} / {@code s.rsplit()}: runs of whitespace, no empty parts. */
    static List<String> splitWhitespace(String s, long maxsplit, boolean fromRight) {
        List<String> words = new ArrayList<>();
        int i = 0;
        while (i < s.length()) {
            while (i < s.length() && Lexer.isSpace(s.charAt(i))) {
                i++;
            }
            if (i >= s.length()) {
                break;
            }
            int j = i;
            while (j < s.length() && !Lexer.isSpace(s.charAt(j))) {
                j++;
            }
            words.add(s.substring(i, j));
            i = j;
        }
        if (maxsplit < 0 || words.size() <= maxsplit + 1) {
            return words;
        }
        // re-split keeping the rest intact
        if (!fromRight) {
            List<String> out = new ArrayList<>();
            int pos = 0;
            for (int k = 0; k < maxsplit; k++) {
                while (Lexer.isSpace(s.charAt(pos))) {
                    pos++;
                }
                int end = pos;
                while (!Lexer.isSpace(s.charAt(end))) {
                    end++;
                }
                out.add(s.substring(pos, end));
                pos = end;
            }
            while (Lexer.isSpace(s.charAt(pos))) {
                pos++;
            }
            out.add(strip(s.substring(pos), null, false, true));
            return out;
        }
        List<String> out = new ArrayList<>();
        int pos = s.length();
        for (int k = 0; k < maxsplit; k++) {
            while (Lexer.isSpace(s.charAt(pos - 1))) {
                pos--;
            }
            int start = pos;
            while (!Lexer.isSpace(s.charAt(start - 1))) {
                start--;
            }
            out.add(s.substring(start, pos));
            pos = start;
        }
        out.add(strip(s.substring(0, pos), null, true, true));
        Collections.reverse(out);
        return out;
    }

    static List<String> split(String s, String sep, long maxsplit, boolean fromRight, int line) {
        if (sep.isEmpty()) {
            throw new JinjaException("line " + line + ": empty separator");
        }
        List<String> out = new ArrayList<>();
        if (!fromRight) {
            int pos = 0;
            while (maxsplit < 0 || out.size() < maxsplit) {
                int i = s.indexOf(sep, pos);
                if (i < 0) {
                    break;
                }
                out.add(s.substring(pos, i));
                pos = i + sep.length();
            }
            out.add(s.substring(pos));
            return out;
        }
        int end = s.length();
        while (maxsplit < 0 || out.size() < maxsplit) {
            int i = s.lastIndexOf(sep, end - sep.length());
            if (i < 0) {
                break;
            }
            out.add(s.substring(i + sep.length(), end));
            end = i;
        }
        out.add(s.substring(0, end));
        Collections.reverse(out);
        return out;
    }

    static List<String> splitlines(String s) {
        List<String> out = new ArrayList<>();
        int start = 0;
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (c == '\n' || c == '\r' || c == '\u000B' || c == '\f' || c == '\u001C' || c == '\u001D'
                    || c == '\u001E' || c == '\u0085' || c == '\u2028' || c == '\u2029') {
                out.add(s.substring(start, i));
                i += c == '\r' && i + 1 < s.length() && s.charAt(i + 1) == '\n' ? 2 : 1;
                start = i;
            } else {
                i++;
            }
        }
        if (start < s.length()) {
            out.add(s.substring(start));
        }
        return out;
    }

    /** Python's {@code str.title()}: a letter after a non-letter is upper-cased, other letters lower-cased. */
    static String pyTitle(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        boolean prevCased = false;
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            i += Character.charCount(c);
            boolean cased = Character.isUpperCase(c) || Character.isLowerCase(c) || Character.isTitleCase(c);
            if (cased) {
                sb.appendCodePoint(prevCased ? Character.toLowerCase(c) : Character.toTitleCase(c));
            } else {
                sb.appendCodePoint(c);
            }
            prevCased = cased;
        }
        return sb.toString();
    }

    /** Jinja's {@code |title} filter: words split at whitespace and {@code - ( [ { <}. */
    static String jinjaTitle(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        boolean start = true;
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            i += Character.charCount(c);
            boolean sep = c < 0x10000 && (Lexer.isSpace((char) c) || "-([{<".indexOf(c) >= 0);
            if (sep) {
                sb.appendCodePoint(c);
                start = true;
            } else {
                sb.appendCodePoint(start ? Character.toUpperCase(c) : Character.toLowerCase(c));
                start = false;
            }
        }
        return sb.toString();
    }

    static String capitalize(String s) {
        if (s.isEmpty()) {
            return s;
        }
        int c = s.codePointAt(0);
        int n = Character.charCount(c);
        return new StringBuilder().appendCodePoint(Character.toTitleCase(c)).append(s.substring(n).toLowerCase(java.util.Locale.ROOT)).toString();
    }

    static String replace(String s, String old, String neu, long count) {
        if (count < 0) {
            if (old.isEmpty()) {
                StringBuilder sb = new StringBuilder(neu);
                for (String c : Py.chars(s)) {
                    sb.append(c).append(neu);
                }
                return sb.toString();
            }
            return s.replace(old, neu);
        }
        StringBuilder sb = new StringBuilder();
        int pos = 0;
        for (long k = 0; k < count; k++) {
            int i = s.indexOf(old, pos);
            if (i < 0 || old.isEmpty()) {
                break;
            }
            sb.append(s, pos, i).append(neu);
            pos = i + old.length();
        }
        return sb.append(s.substring(pos)).toString();
    }
}
