package dev.jtune.data.template.jinja;

import dev.jtune.data.template.jinja.Py.Callable;
import dev.jtune.data.template.jinja.Py.Namespace;
import dev.jtune.data.template.jinja.Py.Undefined;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Attribute access and the Python methods a template may call: the whitelist is the sandbox (Jinja2's
 * {@code ImmutableSandboxedEnvironment} refuses the mutating ones, {@code list.append}, {@code dict.update},
 * ...; so does this).
 */
final class Methods {
    private Methods() {}

    private static final Set<String> STR_METHODS = Set.of("strip", "lstrip", "rstrip", "split", "rsplit",
            "startswith", "endswith", "upper", "lower", "title", "capitalize", "replace", "find", "rfind", "index",
            "rindex", "count", "join", "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper",
            "splitlines", "casefold", "swapcase", "zfill", "removeprefix", "removesuffix", "partition", "rpartition");
    private static final Set<String> DICT_METHODS = Set.of("items", "keys", "values", "get", "copy");
    private static final Set<String> LIST_METHODS = Set.of("index", "count", "copy");
    private static final Set<String> UNSAFE = Set.of("append", "extend", "insert", "pop", "remove", "clear",
            "sort", "reverse", "update", "setdefault", "popitem");

    /** {@code obj.name}: Jinja tries the attribute, then the item. */
    static Object attr(Object obj, String name, int line) {
        obj = Py.plain(obj);
        if (obj instanceof Undefined u) {
            throw new JinjaException("line " + line + ": " + Py.undefinedMessage(u) + " (looking up ." + name + ")");
        }
        if (obj instanceof Map<?, ?> m) {
            if (DICT_METHODS.contains(name)) {
                return bound(obj, name, line);
            }
            if (UNSAFE.contains(name)) {
                return unsafe(obj, name, line);
            }
            return m.containsKey(name) ? m.get(name) : new Undefined("'dict object' has no attribute '" + name + "'");
        }
        if (obj instanceof String) {
            return STR_METHODS.contains(name) ? bound(obj, name, line)
                    : new Undefined("'str object' has no attribute '" + name + "'");
        }
        if (obj instanceof List<?>) {
            if (LIST_METHODS.contains(name)) {
                return bound(obj, name, line);
            }
            if (UNSAFE.contains(name)) {
                return unsafe(obj, name, line);
            }
            return new Undefined("'list object' has no attribute '" + name + "'");
        }
        if (obj instanceof Namespace ns) {
            return ns.attrs.containsKey(name) ? ns.attrs.get(name) : new Undefined("the namespace has no attribute '" + name + "'");
        }
        if (obj instanceof Interpreter.Loop l) {
            return l.attr(name);
        }
        return new Undefined("'" + Py.typeName(obj) + " object' has no attribute '" + name + "'");
    }

    private static Callable bound(Object obj, String name, int line) {
        return (args, kw) -> call(obj, name, args, kw, line);
    }

    private static Callable unsafe(Object obj, String name, int line) {
        return (args, kw) -> {
            throw new JinjaException("line " + line + ": access to attribute '" + name + "' of '" + Py.typeName(obj)
                    + "' object is unsafe (templates cannot modify values)");
        };
    }

    static Object call(Object obj, String name, List<Object> args, Map<String, Object> kw, int line) {
        obj = Py.plain(obj);
        if (obj instanceof String s && STR_METHODS.contains(name)) {
            return strMethod(s, name, args, kw, line);
        }
        if (obj instanceof Map<?, ?> m && DICT_METHODS.contains(name)) {
            return switch (name) {
                case "items" -> {
                    List<Object> out = new ArrayList<>(m.size());
                    for (Map.Entry<?, ?> e : m.entrySet()) {
                        out.add(java.util.Arrays.asList(e.getKey(), e.getValue()));
                    }
                    yield out;
                }
                case "keys" -> new ArrayList<Object>(m.keySet());
                case "values" -> new ArrayList<Object>(m.values());
                case "copy" -> new java.util.LinkedHashMap<Object, Object>(m);
                default -> { // get
                    Object k = Py.mapKey(Interpreter.arg(args, kw, 0, "key"));
                    yield m.containsKey(k) ? m.get(k) : (args.size() > 1 ? args.get(1) : kw.getOrDefault("default", null));
                }
            };
        }
        if (obj instanceof List<?> l && LIST_METHODS.contains(name)) {
            return switch (name) {
                case "copy" -> new ArrayList<Object>(l);
                case "count" -> {
                    long n = 0;
                    for (Object o : l) {
                        if (Py.eq(o, args.get(0))) {
                            n++;
                        }
                    }
                    yield n;
                }
                default -> {
                    for (int i = 0; i < l.size(); i++) {
                        if (Py.eq(l.get(i), args.get(0))) {
                            yield (long) i;
                        }
                    }
                    throw new JinjaException("line " + line + ": " + Py.repr(args.get(0)) + " is not in list");
                }
            };
        }
        Object a = attr(obj, name, line);
        if (a instanceof Callable c) {
            return c.call(args, kw);
        }
        throw new JinjaException("line " + line + ": '" + Py.typeName(obj) + "' object has no method '" + name + "'");
    }

    private static Object strMethod(String s, String name, List<Object> args, Map<String, Object> kw, int line) {
        Object a0 = args.isEmpty() ? null : args.get(0);
        switch (name) {
            case "strip", "lstrip", "rstrip" -> {
                String chars = a0 == null ? null : Py.requireString(a0, name + "'s argument");
                return Strings.strip(s, chars, !name.equals("rstrip"), !name.equals("lstrip"));
            }
            case "split", "rsplit" -> {
                Object sep = a0 != null ? a0 : kw.get("sep");
                Object max = args.size() > 1 ? args.get(1) : kw.get("maxsplit");
                long maxsplit = max == null ? -1 : Py.toLong(max);
                List<Object> parts = new ArrayList<>(sep == null ? Strings.splitWhitespace(s, maxsplit, name.equals("rsplit"))
                        : Strings.split(s, Py.requireString(sep, "split's separator"), maxsplit, name.equals("rsplit"), line));
                return parts;
            }
            case "startswith", "endswith" -> {
                List<Object> options = a0 instanceof List<?> l ? new ArrayList<>(l) : List.of(Py.requireString(a0, name + "'s argument"));
                for (Object o : options) {
                    String p = Py.requireString(o, name + "'s argument");
                    if (name.equals("startswith") ? s.startsWith(p) : s.endsWith(p)) {
                        return true;
                    }
                }
                return false;
            }
            case "upper" -> {
                return s.toUpperCase(java.util.Locale.ROOT);
            }
            case "lower", "casefold" -> {
                return s.toLowerCase(java.util.Locale.ROOT);
            }
            case "swapcase" -> {
                StringBuilder sb = new StringBuilder();
                s.codePoints().forEach(c -> sb.appendCodePoint(Character.isUpperCase(c) ? Character.toLowerCase(c)
                        : Character.isLowerCase(c) ? Character.toUpperCase(c) : c));
                return sb.toString();
            }
            case "title" -> {
                return Strings.pyTitle(s);
            }
            case "capitalize" -> {
                return Strings.capitalize(s);
            }
            case "replace" -> {
                String old = Py.requireString(a0, "replace's first argument");
                String neu = Py.requireString(Interpreter.arg(args, kw, 1, "new"), "replace's second argument");
                long count = args.size() > 2 ? Py.toLong(args.get(2)) : kw.containsKey("count") ? Py.toLong(kw.get("count")) : -1;
                return Strings.replace(s, old, neu, count);
            }
            case "find", "rfind", "index", "rindex" -> {
                String sub = Py.requireString(a0, name + "'s argument");
                int i = name.startsWith("r") ? s.lastIndexOf(sub) : s.indexOf(sub);
                if (i < 0 && name.endsWith("index")) {
                    throw new JinjaException("line " + line + ": substring not found");
                }
                return (long) (i < 0 ? -1 : s.codePointCount(0, i));
            }
            case "count" -> {
                String sub = Py.requireString(a0, "count's argument");
                if (sub.isEmpty()) {
                    return Py.len(s) + 1;
                }
                long n = 0;
                for (int i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length())) {
                    n++;
                }
                return n;
            }
            case "join" -> {
                StringBuilder sb = new StringBuilder();
                List<Object> items = Py.iterate(a0);
                for (int i = 0; i < items.size(); i++) {
                    sb.append(i == 0 ? "" : s).append(Py.requireString(items.get(i), "join's items"));
                }
                return sb.toString();
            }
            case "isdigit" -> {
                return !s.isEmpty() && s.codePoints().allMatch(Character::isDigit);
            }
            case "isalpha" -> {
                return !s.isEmpty() && s.codePoints().allMatch(Character::isLetter);
            }
            case "isalnum" -> {
                return !s.isEmpty() && s.codePoints().allMatch(Character::isLetterOrDigit);
            }
            case "isspace" -> {
                return !s.isEmpty() && s.chars().allMatch(c -> Lexer.isSpace((char) c));
            }
            case "islower" -> {
                return s.codePoints().anyMatch(Character::isLowerCase) && s.codePoints().noneMatch(Character::isUpperCase);
            }
            case "isupper" -> {
                return s.codePoints().anyMatch(Character::isUpperCase) && s.codePoints().noneMatch(Character::isLowerCase);
            }
            case "splitlines" -> {
                return new ArrayList<Object>(Strings.splitlines(s));
            }
            case "zfill" -> {
                int width = (int) Py.toLong(a0);
                int n = (int) Py.len(s);
                if (n >= width) {
                    return s;
                }
                boolean signed = !s.isEmpty() && (s.charAt(0) == '-' || s.charAt(0) == '+');
                return (signed ? s.substring(0, 1) : "") + "0".repeat(width - n) + (signed ? s.substring(1) : s);
            }
            case "removeprefix" -> {
                String p = Py.requireString(a0, "removeprefix's argument");
                return s.startsWith(p) ? s.substring(p.length()) : s;
            }
            case "removesuffix" -> {
                String p = Py.requireString(a0, "removesuffix's argument");
                return !p.isEmpty() && s.endsWith(p) ? s.substring(0, s.length() - p.length()) : s;
            }
            case "partition", "rpartition" -> {
                String sep = Py.requireString(a0, name + "'s argument");
                int i = name.equals("partition") ? s.indexOf(sep) : s.lastIndexOf(sep);
                if (i < 0) {
                    return name.equals("partition") ? List.of(s, "", "") : List.of("", "", s);
                }
                return List.of(s.substring(0, i), sep, s.substring(i + sep.length()));
            }
            default -> throw new IllegalStateException(name);
        }
    }
}
