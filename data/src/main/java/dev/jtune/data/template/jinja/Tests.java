package dev.jtune.data.template.jinja;

import dev.jtune.data.template.jinja.Py.Callable;
import dev.jtune.data.template.jinja.Py.Undefined;
import java.util.List;
import java.util.Map;

/** Jinja2's tests ({@code x is defined}, {@code x is string}, ...). */
final class Tests {
    private Tests() {}

    static boolean apply(String name, Object v, List<Object> args, int line) {
        if (name.equals("escaped")) {
            return v instanceof Py.Markup;
        }
        v = Py.plain(v);
        Object a = args.isEmpty() ? null : args.get(0);
        return switch (name) {
            case "defined" -> !(v instanceof Undefined);
            case "undefined" -> v instanceof Undefined;
            case "none" -> v == null;
            case "boolean" -> v instanceof Boolean;
            case "true" -> Boolean.TRUE.equals(v);
            case "false" -> Boolean.FALSE.equals(v);
            case "integer" -> v instanceof Long;
            case "float" -> v instanceof Double;
            case "number" -> v instanceof Long || v instanceof Double || v instanceof Boolean;
            case "string" -> v instanceof String;
            case "mapping" -> v instanceof Map<?, ?>;
            case "iterable" -> v instanceof String || v instanceof List<?> || v instanceof Map<?, ?> || v instanceof Py.Generator;
            case "sequence" -> v instanceof String || v instanceof List<?> || v instanceof Map<?, ?>;
            case "callable" -> v instanceof Callable;
            case "odd" -> Py.toLong(v) % 2 != 0;
            case "even" -> Py.toLong(v) % 2 == 0;
            case "divisibleby" -> Py.toLong(v) % Py.toLong(a) == 0;
            case "eq", "equalto", "==" -> Py.eq(v, a);
            case "ne", "!=" -> !Py.eq(v, a);
            case "lt", "lessthan", "<" -> Ops.order(v, a, line) < 0;
            case "le", "<=" -> Ops.order(v, a, line) <= 0;
            case "gt", "greaterthan", ">" -> Ops.order(v, a, line) > 0;
            case "ge", ">=" -> Ops.order(v, a, line) >= 0;
            case "in" -> Py.contains(a, v);
            case "sameas" -> v == a || (v instanceof Boolean && v.equals(a)) || (v == null && a == null);
            case "lower" -> v instanceof String s && s.equals(s.toLowerCase(java.util.Locale.ROOT));
            case "upper" -> v instanceof String s && s.equals(s.toUpperCase(java.util.Locale.ROOT));
            default -> throw new JinjaException("line " + line + ": no test named '" + name + "'");
        };
    }
}
