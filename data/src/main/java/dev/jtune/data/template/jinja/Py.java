package dev.jtune.data.template.jinja;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Python's semantics for the values a template sees: {@code None} is {@code null}, {@code int} is {@link Long},
 * {@code float} is {@link Double}, {@code str} is {@link String}, {@code list}/{@code tuple} is {@link List},
 * {@code dict} is {@link Map} (insertion-ordered). Truth, equality, ordering, {@code str()}, {@code repr()},
 * {@code len()}, indexing and slicing follow Python, as do {@code json.dumps} ({@link #toJson}).
 */
final class Py {
    private Py() {}

    /** Jinja2's default {@code Undefined}: prints as "", is false, iterates as empty; using it further fails. */
    record Undefined(String hint) {
        @Override
        public String toString() {
            return "";
        }
    }

    /**
     * What Jinja2's {@code map}, {@code select}, {@code reject}, {@code selectattr} and {@code rejectattr} give:
     * a Python generator, which iterates (for, join, list, first, ...) but has no length, index or JSON form,
     * and is true even when empty.
     */
    record Generator(List<Object> items) {}

    /**
     * MarkupSafe's {@code Markup}, what {@code |safe} and {@code |escape} give: a string that, added to a plain
     * string with {@code +}, HTML-escapes the other one (Python's {@code Markup.__add__}); elsewhere a string.
     */
    record Markup(String s) {
        @Override
        public String toString() {
            return s;
        }
    }

    /** A Markup as the plain string it holds; other values as they are. */
    static Object plain(Object v) {
        return v instanceof Markup m ? m.s() : v;
    }

    /** {@code namespace(...)}: the one mutable object a template can assign attributes of. */
    static final class Namespace {
        final Map<Object, Object> attrs = new LinkedHashMap<>();
    }

    /** Something a template can call: a global function, a macro, a bound method. */
    @FunctionalInterface
    interface Callable {
        Object call(List<Object> args, Map<String, Object> kwargs);
    }

    static boolean truthy(Object v) {
        if (v == null || v instanceof Undefined) {
            return false;
        }
        if (v instanceof Markup m) {
            return !m.s().isEmpty();
        }
        if (v instanceof Boolean b) {
            return b;
        }
        if (v instanceof Long l) {
            return l != 0;
        }
        if (v instanceof Double d) {
            return d != 0.0;
        }
        if (v instanceof String s) {
            return !s.isEmpty();
        }
        if (v instanceof List<?> l) {
            return !l.isEmpty();
        }
        if (v instanceof Map<?, ?> m) {
            return !m.isEmpty();
        }
        return true;
    }

    static String typeName(Object v) {
        if (v == null) {
            return "NoneType";
        }
        if (v instanceof Undefined) {
            return "Undefined";
        }
        if (v instanceof Boolean) {
            return "bool";
        }
        if (v instanceof Long) {
            return "int";
        }
        if (v instanceof Double) {
            return "float";
        }
        if (v instanceof String) {
            return "str";
        }
        if (v instanceof List<?>) {
            return "list";
        }
        if (v instanceof Map<?, ?>) {
            return "dict";
        }
        if (v instanceof Namespace) {
            return "Namespace";
        }
        if (v instanceof Callable) {
            return "function";
        }
        if (v instanceof Generator) {
            return "generator";
        }
        return v.getClass().getSimpleName();
    }

    /** Python's {@code str(v)}, as Jinja prints a value. */
    static String str(Object v) {
        if (v instanceof String s) {
            return s;
        }
        if (v instanceof Markup m) {
            return m.s();
        }
        if (v instanceof Undefined) {
            return "";
        }
        return repr(v);
    }

    static String repr(Object v) {
        if (v == null) {
            return "None";
        }
        if (v instanceof Boolean b) {
            return b ? "True" : "False";
        }
        if (v instanceof Long l) {
            return l.toString();
        }
        if (v instanceof Double d) {
            return floatRepr(d);
        }
        if (v instanceof String s) {
            return strRepr(s);
        }
        if (v instanceof Markup m) {
            return "Markup(" + strRepr(m.s()) + ")";
        }
        if (v instanceof Undefined) {
            return "";
        }
        if (v instanceof List<?> l) {
            StringBuilder sb = new StringBuilder("[");
            for (int i = 0; i < l.size(); i++) {
                sb.append(i == 0 ? "" : ", ").append(repr(l.get(i)));
            }
            return sb.append(']').toString();
        }
        if (v instanceof Map<?, ?> m) {
            StringBuilder sb = new StringBuilder("{");
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                sb.append(first ? "" : ", ").append(repr(e.getKey())).append(": ").append(repr(e.getValue()));
                first = false;
            }
            return sb.append('}').toString();
        }
        if (v instanceof Namespace ns) {
            return "<Namespace " + repr(ns.attrs) + ">";
        }
        if (v instanceof Generator) {
            return "<generator object>";
        }
        return "<" + typeName(v) + ">";
    }

    static String strRepr(String s) {
        char q = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
        StringBuilder sb = new StringBuilder().append(q);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c == q) {
                        sb.append('\\').append(c);
                    } else if (c < 0x20 || c == 0x7f) {
                        sb.append(String.format("\\x%02x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        return sb.append(q).toString();
    }

    /** Python's {@code repr(float)}: shortest round-trip digits, fixed notation for 1e-4 <= |x| < 1e16. */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) {
            return "nan";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "inf" : "-inf";
        }
        if (d == 0) {
            return (1 / d < 0) ? "-0.0" : "0.0";
        }
        BigDecimal b = new BigDecimal(Double.toString(d)).stripTrailingZeros();
        String digits = b.unscaledValue().abs().toString();
        int exp = digits.length() - 1 - b.scale(); // decimal exponent of the first digit
        String sign = d < 0 ? "-" : "";
        if (exp >= -4 && exp < 16) {
            String plain = b.abs().toPlainString();
            return sign + (plain.contains(".") ? plain : plain + ".0");
        }
        String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return sign + mantissa + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
    }

    static boolean isNumber(Object v) {
        return v instanceof Long || v instanceof Double || v instanceof Boolean;
    }

    static double toDouble(Object v) {
        if (v instanceof Boolean b) {
            return b ? 1 : 0;
        }
        return ((Number) v).doubleValue();
    }

    static long toLong(Object v) {
        if (v instanceof Boolean b) {
            return b ? 1 : 0;
        }
        return ((Number) v).longValue();
    }

    static boolean eq(Object a, Object b) {
        a = plain(a);
        b = plain(b);
        if (a == b) {
            return true;
        }
        if (a == null || b == null) {
            return false;
        }
        if (isNumber(a) && isNumber(b)) {
            if (a instanceof Double || b instanceof Double) {
                return toDouble(a) == toDouble(b);
            }
            return toLong(a) == toLong(b);
        }
        if (a instanceof Undefined && b instanceof Undefined) {
            return true;
        }
        if (a instanceof List<?> x && b instanceof List<?> y) {
            if (x.size() != y.size()) {
                return false;
            }
            for (int i = 0; i < x.size(); i++) {
                if (!eq(x.get(i), y.get(i))) {
                    return false;
                }
            }
            return true;
        }
        if (a instanceof Map<?, ?> x && b instanceof Map<?, ?> y) {
            if (x.size() != y.size()) {
                return false;
            }
            for (Map.Entry<?, ?> e : x.entrySet()) {
                if (!y.containsKey(e.getKey()) || !eq(e.getValue(), y.get(e.getKey()))) {
                    return false;
                }
            }
            return true;
        }
        return a.equals(b);
    }

    /** Python's ordering of two values ({@code <} etc.); numbers with numbers, strings, lists. */
    static int compare(Object a, Object b) {
        a = plain(a);
        b = plain(b);
        if (isNumber(a) && isNumber(b)) {
            if (a instanceof Double || b instanceof Double) {
                return Double.compare(toDouble(a), toDouble(b));
            }
            return Long.compare(toLong(a), toLong(b));
        }
        if (a instanceof String x && b instanceof String y) {
            return Integer.signum(compareCodePoints(x, y));
        }
        if (a instanceof List<?> x && b instanceof List<?> y) {
            for (int i = 0; i < Math.min(x.size(), y.size()); i++) {
                if (!eq(x.get(i), y.get(i))) {
                    return compare(x.get(i), y.get(i));
                }
            }
            return Integer.compare(x.size(), y.size());
        }
        throw new JinjaException("'<' not supported between instances of '" + typeName(a) + "' and '" + typeName(b) + "'");
    }

    private static int compareCodePoints(String x, String y) {
        int i = 0;
        int j = 0;
        while (i < x.length() && j < y.length()) {
            int a = x.codePointAt(i);
            int b = y.codePointAt(j);
            if (a != b) {
                return Integer.compare(a, b);
            }
            i += Character.charCount(a);
            j += Character.charCount(b);
        }
        return Boolean.compare(i < x.length(), j < y.length());
    }

    static boolean contains(Object container, Object item) {
        container = plain(container);
        item = plain(item);
        if (container instanceof String s) {
            if (!(item instanceof String sub)) {
                throw new JinjaException("'in <string>' requires string as left operand, not " + typeName(item));
            }
            return s.contains(sub);
        }
        if (container instanceof List<?> l) {
            for (Object o : l) {
                if (eq(o, item)) {
                    return true;
                }
            }
            return false;
        }
        if (container instanceof Map<?, ?> m) {
            return m.containsKey(mapKey(item));
        }
        if (container instanceof Namespace ns) {
            return ns.attrs.containsKey(item);
        }
        if (container instanceof Undefined) {
            return false;
        }
        if (container instanceof Generator g) {
            return contains(g.items(), item);
        }
        throw new JinjaException("argument of type '" + typeName(container) + "' is not iterable");
    }

    /** Map keys: ints and strings are kept as Long / String so that lookups agree with Python's hashing. */
    static Object mapKey(Object k) {
        if (k instanceof Integer i) {
            return (long) i;
        }
        return k;
    }

    /** The items a {@code for} loop or a filter iterates: a list, a string's characters, a dict's keys. */
    static List<Object> iterate(Object v) {
        v = plain(v);
        if (v instanceof List<?> l) {
            @SuppressWarnings("unchecked")
            List<Object> o = (List<Object>) l;
            return o;
        }
        if (v instanceof Map<?, ?> m) {
            return new ArrayList<>(m.keySet());
        }
        if (v instanceof String s) {
            return new ArrayList<>(chars(s));
        }
        if (v instanceof Undefined) {
            return List.of();
        }
        if (v instanceof Generator g) {
            return g.items();
        }
        if (v instanceof Iterable<?> it) {
            List<Object> out = new ArrayList<>();
            Iterator<?> i = it.iterator();
            while (i.hasNext()) {
                out.add(i.next());
            }
            return out;
        }
        throw new JinjaException("'" + typeName(v) + "' object is not iterable");
    }

    /** A string's characters as Python sees them: code points. */
    static List<String> chars(String s) {
        List<String> out = new ArrayList<>(s.length());
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            int n = Character.charCount(cp);
            out.add(s.substring(i, i + n));
            i += n;
        }
        return out;
    }

    static boolean hasSurrogates(String s) {
        for (int i = 0; i < s.length(); i++) {
            if (Character.isSurrogate(s.charAt(i))) {
                return true;
            }
        }
        return false;
    }

    static long len(Object v) {
        v = plain(v);
        if (v instanceof String s) {
            return s.codePointCount(0, s.length());
        }
        if (v instanceof List<?> l) {
            return l.size();
        }
        if (v instanceof Map<?, ?> m) {
            return m.size();
        }
        if (v instanceof Undefined) {
            return 0;
        }
        throw new JinjaException("object of type '" + typeName(v) + "' has no len()");
    }

    /** {@code v[key]}: list/str index (negative from the end), dict key; Undefined when absent. */
    static Object getItem(Object v, Object key) {
        v = plain(v);
        key = plain(key);
        if (v instanceof Map<?, ?> m) {
            Object k = mapKey(key);
            return m.containsKey(k) ? m.get(k) : new Undefined("no key " + repr(key));
        }
        if (v instanceof List<?> l && isIndex(key)) {
            long i = toLong(key);
            if (i < 0) {
                i += l.size();
            }
            return i >= 0 && i < l.size() ? l.get((int) i) : new Undefined("index " + repr(key) + " out of range");
        }
        if (v instanceof String s && isIndex(key)) {
            List<String> cs = hasSurrogates(s) ? chars(s) : null;
            int n = cs == null ? s.length() : cs.size();
            long i = toLong(key);
            if (i < 0) {
                i += n;
            }
            if (i < 0 || i >= n) {
                return new Undefined("string index " + repr(key) + " out of range");
            }
            return cs == null ? String.valueOf(s.charAt((int) i)) : cs.get((int) i);
        }
        if (v instanceof Namespace ns) {
            return ns.attrs.containsKey(key) ? ns.attrs.get(key) : new Undefined("no attribute " + repr(key));
        }
        if (v instanceof Undefined u) {
            throw new JinjaException(undefinedMessage(u) + " has no item " + repr(key));
        }
        if (v instanceof Generator) {
            throw new JinjaException("'generator' object is not subscriptable");
        }
        return new Undefined("'" + typeName(v) + "' object has no item " + repr(key));
    }

    static String undefinedMessage(Undefined u) {
        return u.hint() == null ? "an undefined value" : u.hint();
    }

    private static boolean isIndex(Object key) {
        return key instanceof Long || key instanceof Boolean;
    }

    /** {@code v[start:stop:step]} for lists and strings, with Python's clamping and negative steps. */
    static Object slice(Object v, Object start, Object stop, Object step) {
        v = plain(v);
        long st = step == null ? 1 : toLong(step);
        if (st == 0) {
            throw new JinjaException("slice step cannot be zero");
        }
        List<?> items;
        boolean string = v instanceof String;
        if (v instanceof String s) {
            items = chars(s);
        } else if (v instanceof List<?> l) {
            items = l;
        } else if (v instanceof Undefined u) {
            throw new JinjaException(undefinedMessage(u) + " cannot be sliced");
        } else {
            throw new JinjaException("'" + typeName(v) + "' object is not subscriptable");
        }
        int n = items.size();
        long lo;
        long hi;
        if (st > 0) {
            lo = start == null ? 0 : clamp(toLong(start), n, 0, n);
            hi = stop == null ? n : clamp(toLong(stop), n, 0, n);
        } else {
            lo = start == null ? n - 1 : clamp(toLong(start), n, -1, n - 1);
            hi = stop == null ? -1 : clamp(toLong(stop), n, -1, n - 1);
        }
        List<Object> out = new ArrayList<>();
        for (long i = lo; st > 0 ? i < hi : i > hi; i += st) {
            out.add(items.get((int) i));
        }
        if (string) {
            StringBuilder sb = new StringBuilder();
            for (Object o : out) {
                sb.append((String) o);
            }
            return sb.toString();
        }
        return out;
    }

    private static long clamp(long i, int n, long min, long max) {
        if (i < 0) {
            i += n;
        }
        return Math.max(min, Math.min(max, i));
    }

    // ---- json.dumps

    /**
     * Python's {@code json.dumps(v, ensure_ascii=..., indent=..., separators=..., sort_keys=...)}, as
     * transformers' {@code tojson} filter calls it (its defaults: {@code ensure_ascii=False}).
     */
    static String toJson(Object v, boolean ensureAscii, Object indent, String itemSep, String keySep, boolean sortKeys) {
        String ind = null;
        if (indent instanceof String s) {
            ind = s;
        } else if (indent != null && !(indent instanceof Undefined)) {
            ind = " ".repeat((int) Math.max(0, toLong(indent)));
        }
        if (itemSep == null) {
            itemSep = ind == null ? ", " : ",";
        }
        if (keySep == null) {
            keySep = ": ";
        }
        StringBuilder sb = new StringBuilder();
        json(sb, v, ensureAscii, ind, itemSep, keySep, sortKeys, 0);
        return sb.toString();
    }

    private static void json(StringBuilder sb, Object v, boolean ascii, String ind, String itemSep, String keySep,
            boolean sortKeys, int level) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof Boolean b) {
            sb.append(b ? "true" : "false");
        } else if (v instanceof Long l) {
            sb.append(l);
        } else if (v instanceof Double d) {
            sb.append(Double.isNaN(d) ? "NaN" : Double.isInfinite(d) ? (d > 0 ? "Infinity" : "-Infinity") : floatRepr(d));
        } else if (v instanceof String || v instanceof Markup) {
            jsonString(sb, str(v), ascii);
        } else if (v instanceof List<?> l) {
            if (l.isEmpty()) {
                sb.append("[]");
                return;
            }
            sb.append('[');
            for (int i = 0; i < l.size(); i++) {
                if (i > 0) {
                    sb.append(itemSep);
                }
                newline(sb, ind, level + 1);
                json(sb, l.get(i), ascii, ind, itemSep, keySep, sortKeys, level + 1);
            }
            newline(sb, ind, level);
            sb.append(']');
        } else if (v instanceof Map<?, ?> m) {
            if (m.isEmpty()) {
                sb.append("{}");
                return;
            }
            List<Map.Entry<?, ?>> entries = new ArrayList<>(m.entrySet());
            if (sortKeys) {
                entries.sort((x, y) -> compare(jsonKey(x.getKey()), jsonKey(y.getKey())));
            }
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : entries) {
                if (!first) {
                    sb.append(itemSep);
                }
                first = false;
                newline(sb, ind, level + 1);
                jsonString(sb, jsonKey(e.getKey()), ascii);
                sb.append(keySep);
                json(sb, e.getValue(), ascii, ind, itemSep, keySep, sortKeys, level + 1);
            }
            newline(sb, ind, level);
            sb.append('}');
        } else if (v instanceof Namespace || v instanceof Undefined || v instanceof Callable || v instanceof Generator) {
            throw new JinjaException("Object of type " + typeName(v) + " is not JSON serializable");
        } else {
            jsonString(sb, v.toString(), ascii);
        }
    }

    private static String jsonKey(Object k) {
        if (k instanceof String s) {
            return s;
        }
        if (k == null) {
            return "null";
        }
        if (k instanceof Boolean b) {
            return b ? "true" : "false";
        }
        if (k instanceof Long || k instanceof Double) {
            return repr(k);
        }
        throw new JinjaException("keys must be str, int, float, bool or None, not " + typeName(k));
    }

    private static void newline(StringBuilder sb, String ind, int level) {
        if (ind != null) {
            sb.append('\n').append(ind.repeat(level));
        }
    }

    private static void jsonString(StringBuilder sb, String s, boolean ascii) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20 || (ascii && c > 0x7e)) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    /** Deep copy of a Java value into the template's value types (ints to Long, maps to ordered maps). */
    static Object fromJava(Object v) {
        if (v == null || v instanceof String || v instanceof Long || v instanceof Double || v instanceof Boolean) {
            return v;
        }
        if (v instanceof Integer || v instanceof Short || v instanceof Byte) {
            return ((Number) v).longValue();
        }
        if (v instanceof Float f) {
            return f.doubleValue();
        }
        if (v instanceof Number n) {
            return n.doubleValue();
        }
        if (v instanceof Map<?, ?> m) {
            Map<Object, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : m.entrySet()) {
                out.put(fromJava(e.getKey()), fromJava(e.getValue()));
            }
            return out;
        }
        if (v instanceof Iterable<?> it) {
            List<Object> out = new ArrayList<>();
            for (Object o : it) {
                out.add(fromJava(o));
            }
            return out;
        }
        if (v instanceof Object[] arr) {
            return fromJava(List.of(arr));
        }
        if (v instanceof Callable) {
            return v;
        }
        throw new IllegalArgumentException("a template variable cannot be a " + v.getClass().getName());
    }

    static String requireString(Object v, String what) {
        v = plain(v);
        if (v instanceof String s) {
            return s;
        }
        throw new JinjaException(what + " must be a string, not " + typeName(v));
    }

    static boolean equalsAny(Object a, Object... options) {
        for (Object o : options) {
            if (Objects.equals(a, o)) {
                return true;
            }
        }
        return false;
    }
}
