package dev.jtune.lora;

import java.math.BigDecimal;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Text exactly as Python's {@code json.dumps(obj, indent=2, sort_keys=True)} writes it, for the value types a
 * PEFT config holds: null, booleans, ints, floats, strings, lists and (string-keyed) maps.
 */
final class PythonJson {
    private PythonJson() {}

    static String dumps(Object value) {
        StringBuilder out = new StringBuilder();
        write(out, value, 0);
        return out.toString();
    }

    private static void write(StringBuilder out, Object value, int depth) {
        switch (value) {
            case null -> out.append("null");
            case Boolean b -> out.append(b ? "true" : "false");
            case Integer i -> out.append(i);
            case Long l -> out.append(l);
            case Double d -> out.append(floatRepr(d));
            case String s -> quote(out, s);
            case List<?> list -> {
                if (list.isEmpty()) {
                    out.append("[]");
                    return;
                }
                out.append('[');
                for (int i = 0; i < list.size(); i++) {
                    out.append(i == 0 ? "" : ",");
                    newline(out, depth + 1);
                    write(out, list.get(i), depth + 1);
                }
                newline(out, depth);
                out.append(']');
            }
            case Map<?, ?> map -> {
                if (map.isEmpty()) {
                    out.append("{}");
                    return;
                }
                // Python sorts str keys by code point; config keys are ASCII, where String order agrees.
                Map<String, Object> sorted = new TreeMap<>();
                map.forEach((k, v) -> sorted.put((String) k, v));
                out.append('{');
                boolean first = true;
                for (Map.Entry<String, Object> e : sorted.entrySet()) {
                    out.append(first ? "" : ",");
                    first = false;
                    newline(out, depth + 1);
                    quote(out, e.getKey());
                    out.append(": ");
                    write(out, e.getValue(), depth + 1);
                }
                newline(out, depth);
                out.append('}');
            }
            default -> throw new IllegalArgumentException("no JSON form for " + value.getClass().getName());
        }
    }

    private static void newline(StringBuilder out, int depth) {
        out.append('\n').append("  ".repeat(depth));
    }

    /** {@code ensure_ascii=True}: controls and non-ASCII as backslash-u escapes (surrogate pairs beyond the BMP). */
    private static void quote(StringBuilder out, String s) {
        dev.jtune.model.safetensors.JsonText.appendPython(out, s);
    }

    /**
     * Python's {@code repr(float)}: the shortest digits that round-trip (as Java's {@link Double#toString} since
     * JDK 19), written positionally when the decimal exponent is in [-4, 16), else as {@code d.ddde±XX}.
     */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return (1 / d < 0) ? "-0.0" : "0.0";
        }
        BigDecimal exact = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
        String digits = exact.unscaledValue().toString();
        // value = 0.digits × 10^decpt
        int decpt = digits.length() - exact.scale();
        String sign = d < 0 ? "-" : "";
        if (decpt > -4 && decpt <= 16) {
            String body;
            if (decpt <= 0) {
                body = "0." + "0".repeat(-decpt) + digits;
            } else if (decpt >= digits.length()) {
                body = digits + "0".repeat(decpt - digits.length()) + ".0";
            } else {
                body = digits.substring(0, decpt) + "." + digits.substring(decpt);
            }
            return sign + body;
        }
        int exp = decpt - 1;
        String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return sign + mantissa + "e" + (exp < 0 ? "-" : "+") + String.format("%02d", Math.abs(exp));
    }
}
