package dev.jtune.data.template.jinja;

import dev.jtune.data.template.jinja.Py.Undefined;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Jinja2's built-in filters chat templates use, and transformers' {@code tojson}. */
final class Filters {
    private Filters() {}

    static Object apply(Interpreter in, String name, Object v, List<Object> args, Map<String, Object> kw, int line) {
        if (name.equals("safe")) {
            return v instanceof Py.Markup ? v : new Py.Markup(Py.str(v));
        }
        if (Py.equalsAny(name, "e", "escape", "forceescape")) {
            return v instanceof Py.Markup && !name.equals("forceescape") ? v : new Py.Markup(escape(Py.str(v)));
        }
        v = Py.plain(v);
        Object a0 = args.isEmpty() ? null : Py.plain(args.get(0));
        switch (name) {
            case "tojson" -> {
                // transformers: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
                Object ascii = opt(args, kw, 0, "ensure_ascii", false);
                Object indent = opt(args, kw, 1, "indent", null);
                Object seps = opt(args, kw, 2, "separators", null);
                Object sort = opt(args, kw, 3, "sort_keys", false);
                String itemSep = null;
                String keySep = null;
                if (seps instanceof List<?> l && l.size() == 2) {
                    itemSep = Py.str(l.get(0));
                    keySep = Py.str(l.get(1));
                }
                if (v instanceof Undefined u) {
                    throw new JinjaException("line " + line + ": " + Py.undefinedMessage(u) + " (given to tojson)");
                }
                return Py.toJson(v, Py.truthy(ascii), indent, itemSep, keySep, Py.truthy(sort));
            }
            case "length", "count" -> {
                return Py.len(v);
            }
            case "trim" -> {
                return Strings.strip(Py.str(v), a0 == null ? null : Py.str(a0), true, true);
            }
            case "string" -> {
                return Py.str(v);
            }
            case "upper" -> {
                return Py.str(v).toUpperCase(java.util.Locale.ROOT);
            }
            case "lower" -> {
                return Py.str(v).toLowerCase(java.util.Locale.ROOT);
            }
            case "title" -> {
                return Strings.jinjaTitle(Py.str(v));
            }
            case "capitalize" -> {
                return Strings.capitalize(Py.str(v));
            }
            case "replace" -> {
                long count = args.size() > 2 ? Py.toLong(args.get(2)) : kw.containsKey("count") ? Py.toLong(kw.get("count")) : -1;
                return Strings.replace(Py.str(v), Py.str(a0), Py.str(Interpreter.arg(args, kw, 1, "new")), count);
            }
            case "default", "d" -> {
                Object dflt = opt(args, kw, 0, "default_value", "");
                boolean bool = Py.truthy(opt(args, kw, 1, "boolean", false));
                return v instanceof Undefined || (bool && !Py.truthy(v)) ? dflt : v;
            }
            case "first" -> {
                List<Object> l = Py.iterate(v);
                return l.isEmpty() ? new Undefined("the sequence given to first is empty") : l.get(0);
            }
            case "last" -> {
                if (v instanceof Py.Generator) {
                    throw new JinjaException("line " + line + ": 'generator' object is not reversible (last)");
                }
                List<Object> l = Py.iterate(v);
                return l.isEmpty() ? new Undefined("the sequence given to last is empty") : l.get(l.size() - 1);
            }
            case "list" -> {
                return new ArrayList<>(Py.iterate(v));
            }
            case "reverse" -> {
                if (v instanceof String s) {
                    return new StringBuilder(s).reverse().toString();
                }
                List<Object> l = new ArrayList<>(Py.iterate(v));
                Collections.reverse(l);
                return l;
            }
            case "join" -> {
                String sep = a0 == null ? Py.str(kw.getOrDefault("d", "")) : Py.str(a0);
                Object attribute = opt(args, kw, 1, "attribute", null);
                StringBuilder sb = new StringBuilder();
                List<Object> items = Py.iterate(v);
                for (int i = 0; i < items.size(); i++) {
                    Object item = attribute == null ? items.get(i) : lookup(items.get(i), attribute, line);
                    sb.append(i == 0 ? "" : sep).append(Py.str(item));
                }
                return sb.toString();
            }
            case "items" -> {
                if (v instanceof Undefined) {
                    return List.of();
                }
                return Methods.call(v, "items", List.of(), Map.of(), line);
            }
            case "dictsort" -> {
                boolean byValue = "value".equals(opt(args, kw, 2, "by", "key"));
                boolean reverse = Py.truthy(opt(args, kw, 3, "reverse", false));
                @SuppressWarnings("unchecked")
                List<Object> items = new ArrayList<>((List<Object>) Methods.call(v, "items", List.of(), Map.of(), line));
                items.sort((x, y) -> sortCompare(((List<?>) x).get(byValue ? 1 : 0), ((List<?>) y).get(byValue ? 1 : 0), line));
                if (reverse) {
                    Collections.reverse(items);
                }
                return items;
            }
            case "sort" -> {
                boolean reverse = Py.truthy(opt(args, kw, 0, "reverse", false));
                Object attribute = opt(args, kw, 2, "attribute", null);
                List<Object> items = new ArrayList<>(Py.iterate(v));
                items.sort((x, y) -> sortCompare(attribute == null ? x : lookup(x, attribute, line),
                        attribute == null ? y : lookup(y, attribute, line), line));
                if (reverse) {
                    Collections.reverse(items);
                }
                return items;
            }
            case "unique" -> {
                List<Object> out = new ArrayList<>();
                for (Object o : Py.iterate(v)) {
                    if (!Py.contains(out, o)) {
                        out.add(o);
                    }
                }
                return out;
            }
            case "min", "max" -> {
                List<Object> items = Py.iterate(v);
                if (items.isEmpty()) {
                    return new Undefined("no items for " + name);
                }
                Object best = items.get(0);
                for (Object o : items) {
                    int c = sortCompare(o, best, line);
                    if (name.equals("min") ? c < 0 : c > 0) {
                        best = o;
                    }
                }
                return best;
            }
            case "sum" -> {
                Object attribute = opt(args, kw, 0, "attribute", null);
                Object total = opt(args, kw, 1, "start", 0L);
                for (Object o : Py.iterate(v)) {
                    total = Ops.binary("+", total, attribute == null ? o : lookup(o, attribute, line), line);
                }
                return total;
            }
            case "abs" -> {
                return v instanceof Double d ? (Object) Math.abs(d) : (Object) Math.abs(Py.toLong(v));
            }
            case "round" -> {
                long precision = Py.toLong(opt(args, kw, 0, "precision", 0L));
                String method = Py.str(opt(args, kw, 1, "method", "common"));
                double scale = Math.pow(10, precision);
                double x = Py.toDouble(v) * scale;
                double r = switch (method) {
                    case "ceil" -> Math.ceil(x);
                    case "floor" -> Math.floor(x);
                    default -> Math.signum(x) * Math.floor(Math.abs(x) + 0.5);
                };
                return r / scale;
            }
            case "int" -> {
                Object dflt = opt(args, kw, 0, "default", 0L);
                if (v instanceof Long || v instanceof Boolean) {
                    return Py.toLong(v);
                }
                if (v instanceof Double d) {
                    return (long) (double) d;
                }
                try {
                    return Long.parseLong(Py.str(v).strip());
                } catch (NumberFormatException e) {
                    try {
                        return (long) Double.parseDouble(Py.str(v).strip());
                    } catch (NumberFormatException e2) {
                        return dflt;
                    }
                }
            }
            case "float" -> {
                Object dflt = opt(args, kw, 0, "default", 0.0);
                if (Py.isNumber(v)) {
                    return Py.toDouble(v);
                }
                try {
                    return Double.parseDouble(Py.str(v).strip());
                } catch (NumberFormatException e) {
                    return dflt;
                }
            }
            case "wordcount" -> {
                return (long) Strings.splitWhitespace(Py.str(v), -1, false).size();
            }
            case "indent" -> {
                return indent(Py.str(v), opt(args, kw, 0, "width", 4L), Py.truthy(opt(args, kw, 1, "first", false)),
                        Py.truthy(opt(args, kw, 2, "blank", false)));
            }
            case "attr" -> {
                return Methods.attr(v, Py.str(a0), line);
            }
            case "map" -> {
                List<Object> out = new ArrayList<>();
                if (!Py.truthy(v) && !(v instanceof Py.Generator)) {
                    return new Py.Generator(out); // Jinja: "if seq:" first, so None maps to nothing
                }
                Object attribute = kw.get("attribute");
                for (Object o : Py.iterate(v)) {
                    in.countStep();
                    if (attribute != null) {
                        Object x = lookup(o, attribute, line);
                        out.add(x instanceof Undefined && kw.containsKey("default") ? kw.get("default") : x);
                    } else {
                        out.add(apply(in, Py.str(a0), o, args.subList(1, args.size()), Map.of(), line));
                    }
                }
                return new Py.Generator(out);
            }
            case "select", "reject", "selectattr", "rejectattr" -> {
                boolean attrMode = name.endsWith("attr");
                boolean keep = name.startsWith("select");
                Object attribute = attrMode ? a0 : null;
                int testAt = attrMode ? 1 : 0;
                String test = args.size() > testAt ? Py.str(args.get(testAt)) : null;
                List<Object> testArgs = args.size() > testAt + 1 ? args.subList(testAt + 1, args.size()) : List.of();
                List<Object> out = new ArrayList<>();
                if (!Py.truthy(v) && !(v instanceof Py.Generator)) {
                    return new Py.Generator(out); // Jinja: "if seq:" first, so None selects nothing
                }
                for (Object o : Py.iterate(v)) {
                    in.countStep();
                    Object x = attrMode ? lookup(o, attribute, line) : o;
                    boolean ok = test == null ? Py.truthy(x) : Tests.apply(test, x, testArgs, line);
                    if (ok == keep) {
                        out.add(o);
                    }
                }
                return new Py.Generator(out);
            }
            case "batch" -> {
                long n = Py.toLong(a0);
                List<Object> out = new ArrayList<>();
                List<Object> cur = new ArrayList<>();
                for (Object o : Py.iterate(v)) {
                    cur.add(o);
                    if (cur.size() == n) {
                        out.add(cur);
                        cur = new ArrayList<>();
                    }
                }
                if (!cur.isEmpty()) {
                    out.add(cur);
                }
                return out;
            }
            case "center" -> {
                String s = Py.str(v);
                int width = (int) Py.toLong(opt(args, kw, 0, "width", 80L));
                int n = (int) Py.len(s);
                if (n >= width) {
                    return s;
                }
                int total = width - n;
                int left = total / 2 + (total & width & 1);
                return " ".repeat(left) + s + " ".repeat(total - left);
            }
            case "dict" -> {
                return new LinkedHashMap<>((Map<?, ?>) v);
            }
            default -> throw new JinjaException("line " + line + ": no filter named '" + name + "'");
        }
    }

    /** An attribute path ({@code "a.b"}, or an int index) looked up as Jinja's {@code make_attrgetter} does. */
    private static Object lookup(Object o, Object attribute, int line) {
        if (attribute instanceof Long) {
            return Py.getItem(o, attribute);
        }
        Object cur = o;
        for (String part : Py.str(attribute).split("\\.")) {
            if (cur instanceof Undefined) {
                return cur;
            }
            Object key = part.chars().allMatch(Character::isDigit) && !part.isEmpty() ? (Object) Long.parseLong(part) : part;
            cur = cur instanceof Map<?, ?> m ? (m.containsKey(key) ? m.get(key) : new Undefined("no attribute '" + part + "'"))
                    : key instanceof Long ? Py.getItem(cur, key) : Methods.attr(cur, part, line);
        }
        return cur;
    }

    private static int sortCompare(Object a, Object b, int line) {
        if (a instanceof String x && b instanceof String y) {
            return x.toLowerCase(java.util.Locale.ROOT).compareTo(y.toLowerCase(java.util.Locale.ROOT));
        }
        return Ops.order(a, b, line);
    }

    private static Object opt(List<Object> args, Map<String, Object> kw, int index, String name, Object dflt) {
        if (index < args.size()) {
            return args.get(index);
        }
        return kw.containsKey(name) ? kw.get(name) : dflt;
    }

    private static String indent(String s, Object width, boolean first, boolean blank) {
        String ind = width instanceof String w ? w : " ".repeat((int) Py.toLong(width));
        List<String> lines = Strings.splitlines(s + "\n");
        StringBuilder rv = new StringBuilder();
        if (blank) {
            rv.append(String.join("\n" + ind, lines));
        } else {
            rv.append(lines.get(0));
            for (int i = 1; i < lines.size(); i++) {
                rv.append('\n');
                if (!lines.get(i).isEmpty()) {
                    rv.append(ind);
                }
                rv.append(lines.get(i));
            }
        }
        return first ? ind + rv : rv.toString();
    }

    static String escape(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> sb.append("&amp;");
                case '<' -> sb.append("&lt;");
                case '>' -> sb.append("&gt;");
                case '"' -> sb.append("&#34;");
                case '\'' -> sb.append("&#39;");
                default -> sb.append(c);
            }
        }
        return sb.toString();
    }
}
