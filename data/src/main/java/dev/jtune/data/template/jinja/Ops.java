package dev.jtune.data.template.jinja;

import dev.jtune.data.template.jinja.Py.Undefined;
import java.util.ArrayList;
import java.util.List;

/** Python's arithmetic and Jinja's {@code ~} on template values. */
final class Ops {
    private Ops() {}

    static Object binary(String op, Object a, Object b, int line) {
        if (op.equals("~")) {
            return Py.str(a) + Py.str(b);
        }
        if (a instanceof Undefined u) {
            throw new JinjaException("line " + line + ": " + Py.undefinedMessage(u) + " (operand of '" + op + "')");
        }
        if (b instanceof Undefined u) {
            throw new JinjaException("line " + line + ": " + Py.undefinedMessage(u) + " (operand of '" + op + "')");
        }
        if (op.equals("+") && (a instanceof Py.Markup || b instanceof Py.Markup)
                && (a instanceof String || a instanceof Py.Markup) && (b instanceof String || b instanceof Py.Markup)) {
            // MarkupSafe: the plain side is HTML-escaped
            String x = a instanceof Py.Markup m ? m.s() : Filters.escape((String) a);
            String y = b instanceof Py.Markup m ? m.s() : Filters.escape((String) b);
            return new Py.Markup(x + y);
        }
        a = Py.plain(a);
        b = Py.plain(b);
        boolean nums = Py.isNumber(a) && Py.isNumber(b);
        boolean ints = nums && !(a instanceof Double) && !(b instanceof Double);
        switch (op) {
            case "+" -> {
                if (ints) {
                    return Math.addExact(Py.toLong(a), Py.toLong(b));
                }
                if (nums) {
                    return Py.toDouble(a) + Py.toDouble(b);
                }
                if (a instanceof String x && b instanceof String y) {
                    return x + y;
                }
                if (a instanceof List<?> x && b instanceof List<?> y) {
                    List<Object> out = new ArrayList<>(x);
                    out.addAll(y);
                    return out;
                }
            }
            case "-" -> {
                if (ints) {
                    return Math.subtractExact(Py.toLong(a), Py.toLong(b));
                }
                if (nums) {
                    return Py.toDouble(a) - Py.toDouble(b);
                }
            }
            case "*" -> {
                if (ints) {
                    return Math.multiplyExact(Py.toLong(a), Py.toLong(b));
                }
                if (nums) {
                    return Py.toDouble(a) * Py.toDouble(b);
                }
                if (a instanceof String s && isInt(b)) {
                    return repeat(s, Py.toLong(b), line);
                }
                if (b instanceof String s && isInt(a)) {
                    return repeat(s, Py.toLong(a), line);
                }
                if (a instanceof List<?> l && isInt(b)) {
                    List<Object> out = new ArrayList<>();
                    for (long i = 0; i < Py.toLong(b); i++) {
                        out.addAll(l);
                    }
                    return out;
                }
            }
            case "/" -> {
                if (nums) {
                    double d = Py.toDouble(b);
                    if (d == 0) {
                        throw new JinjaException("line " + line + ": division by zero");
                    }
                    return Py.toDouble(a) / d;
                }
            }
            case "//" -> {
                if (ints) {
                    long d = Py.toLong(b);
                    if (d == 0) {
                        throw new JinjaException("line " + line + ": integer division or modulo by zero");
                    }
                    return Math.floorDiv(Py.toLong(a), d);
                }
                if (nums) {
                    return Math.floor(Py.toDouble(a) / Py.toDouble(b));
                }
            }
            case "%" -> {
                if (ints) {
                    long d = Py.toLong(b);
                    if (d == 0) {
                        throw new JinjaException("line " + line + ": integer division or modulo by zero");
                    }
                    return Math.floorMod(Py.toLong(a), d);
                }
                if (nums) {
                    double x = Py.toDouble(a);
                    double y = Py.toDouble(b);
                    double r = x % y;
                    return r != 0 && (r < 0) != (y < 0) ? r + y : r;
                }
                if (a instanceof String) {
                    throw new JinjaException("line " + line + ": printf-style '%' string formatting is not supported");
                }
            }
            case "**" -> {
                if (ints && Py.toLong(b) >= 0) {
                    long r = 1;
                    for (long i = 0; i < Py.toLong(b); i++) {
                        r = Math.multiplyExact(r, Py.toLong(a));
                    }
                    return r;
                }
                if (nums) {
                    return Math.pow(Py.toDouble(a), Py.toDouble(b));
                }
            }
            default -> throw new IllegalStateException(op);
        }
        throw new JinjaException("line " + line + ": unsupported operand type(s) for " + op + ": '"
                + Py.typeName(a) + "' and '" + Py.typeName(b) + "'");
    }

    static Object unary(String op, Object v, int line) {
        if (v instanceof Long l) {
            return op.equals("-") ? -l : l;
        }
        if (v instanceof Double d) {
            return op.equals("-") ? -d : d;
        }
        if (v instanceof Boolean b) {
            return op.equals("-") ? -(b ? 1L : 0L) : (b ? 1L : 0L);
        }
        throw new JinjaException("line " + line + ": bad operand type for unary " + op + ": '" + Py.typeName(v) + "'");
    }

    static int order(Object a, Object b, int line) {
        if (a instanceof Undefined || b instanceof Undefined) {
            throw new JinjaException("line " + line + ": cannot order an undefined value");
        }
        try {
            return Py.compare(a, b);
        } catch (JinjaException e) {
            throw new JinjaException("line " + line + ": " + e.getMessage());
        }
    }

    private static boolean isInt(Object v) {
        return v instanceof Long || v instanceof Boolean;
    }

    private static String repeat(String s, long n, int line) {
        if (n <= 0) {
            return "";
        }
        if (s.length() * n > 10_000_000L) {
            throw new JinjaException("line " + line + ": string repetition too large for the sandbox");
        }
        return s.repeat((int) n);
    }
}
