package dev.jtune.data.config;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;
import org.yaml.snakeyaml.nodes.SequenceNode;
import org.yaml.snakeyaml.nodes.Tag;

/**
 * One value of a config file, with where it is: the file, its dotted path ({@code datasets[0].type}) and the
 * SnakeYAML node, whose start mark gives the line and column for error messages. Conversions check the
 * YAML type the way PyYAML (and so Axolotl) resolves it: YAML 1.1, so {@code yes}/{@code no} are booleans.
 */
record YamlValue(Path file, String path, Node node) {

    ConfigException error(String problem) {
        return errorAt(node, (path.isEmpty() ? "" : path + ": ") + problem);
    }

    ConfigException errorAt(Node at, String problem) {
        return new ConfigException(file, at.getStartMark().getLine() + 1, at.getStartMark().getColumn() + 1, problem);
    }

    YamlValue child(String childPath, Node childNode) {
        return new YamlValue(file, childPath, childNode);
    }

    boolean isNull() {
        return node instanceof ScalarNode && node.getTag().equals(Tag.NULL);
    }

    private String scalarText() {
        return ((ScalarNode) node).getValue();
    }

    private boolean isScalar(Tag tag) {
        return node instanceof ScalarNode && node.getTag().equals(tag);
    }

    /** How the value reads in an error message: its text for scalars, its kind otherwise. */
    String describe() {
        if (node instanceof MappingNode) return "a mapping";
        if (node instanceof SequenceNode) return "a list";
        if (isNull()) return "nothing";
        String kind = isScalar(Tag.INT) ? "integer" : isScalar(Tag.FLOAT) ? "number"
                : isScalar(Tag.BOOL) ? "boolean" : "string";
        return kind + " '" + scalarText() + "'";
    }

    private ConfigException expected(String what) {
        return error("expected " + what + ", got " + describe());
    }

    String asString() {
        // Numbers and booleans are not silently turned into strings: "model_type: 7" is surely a mistake.
        if (!isScalar(Tag.STR)) throw expected("a string");
        return scalarText();
    }

    boolean asBoolean() {
        if (!isScalar(Tag.BOOL)) throw expected("true or false");
        return Set.of("true", "yes", "on").contains(scalarText().toLowerCase(Locale.ROOT));
    }

    long asLong() {
        if (!isScalar(Tag.INT)) throw expected("an integer");
        // YAML 1.1 integer forms, read as PyYAML reads them: 0x hex, 0b binary, leading-zero octal.
        String text = scalarText().replace("_", "");
        boolean negative = text.startsWith("-");
        String digits = negative || text.startsWith("+") ? text.substring(1) : text;
        int radix = 10;
        if (digits.startsWith("0x")) {
            radix = 16;
            digits = digits.substring(2);
        } else if (digits.startsWith("0b")) {
            radix = 2;
            digits = digits.substring(2);
        } else if (digits.length() > 1 && digits.startsWith("0")) {
            radix = 8;
            digits = digits.substring(1);
        }
        try {
            return Long.parseLong((negative ? "-" : "") + digits, radix);
        } catch (NumberFormatException e) {
            throw expected("an integer that fits in 64 bits"); // or a sexagesimal 1:30, which nobody means here
        }
    }

    int asInt() {
        long value = asLong();
        if (value != (int) value) throw expected("an integer that fits in 32 bits");
        return (int) value;
    }

    int asIntAtLeast(int min) {
        int value = asInt();
        if (value < min) throw error("expected an integer >= " + min + ", got " + value);
        return value;
    }

    boolean isBoolean() {
        return isScalar(Tag.BOOL);
    }

    boolean isString() {
        return isScalar(Tag.STR);
    }

    boolean isInteger() {
        return isScalar(Tag.INT);
    }

    double asDouble() {
        String text;
        if (isScalar(Tag.INT)) {
            return asLong();
        } else if (isScalar(Tag.FLOAT)) {
            text = scalarText();
        } else if (isScalar(Tag.STR) && ((ScalarNode) node).getScalarStyle() == DumperOptions.ScalarStyle.PLAIN) {
            // YAML 1.1 reads "2e-4" (no dot) as a string; Axolotl's pydantic still takes it as a number.
            text = scalarText();
        } else {
            throw expected("a number");
        }
        try {
            double value = Double.parseDouble(text.replace("_", ""));
            if (Double.isFinite(value)) return value;
        } catch (NumberFormatException e) {
            // fall through to the error below
        }
        throw expected("a finite number");
    }

    List<YamlValue> asList() {
        if (!(node instanceof SequenceNode sequence)) throw expected("a list");
        List<YamlValue> items = new ArrayList<>();
        List<Node> values = sequence.getValue();
        for (int i = 0; i < values.size(); i++) items.add(child(path + "[" + i + "]", values.get(i)));
        return items;
    }

    /** A list of strings; a single string is taken as a list of one, as Axolotl does. */
    List<String> asStringList() {
        if (node instanceof ScalarNode) return List.of(asString());
        return asList().stream().map(YamlValue::asString).toList();
    }

    YamlMapping asMapping(Collection<String> allowedKeys) {
        return asMapping(allowedKeys, null);
    }

    /** As {@link #asMapping(Collection)}, with unknown and duplicate keys reported to {@code sink} and skipped. */
    YamlMapping asMapping(Collection<String> allowedKeys, Problems sink) {
        if (!(node instanceof MappingNode mapping)) throw expected("a mapping");
        return new YamlMapping(this, mapping, List.copyOf(allowedKeys), sink);
    }

    /** A mapping with any string keys, checked for duplicates only. */
    Map<String, YamlValue> asOpenMapping() {
        if (!(node instanceof MappingNode mapping)) throw expected("a mapping");
        Map<String, YamlValue> entries = new LinkedHashMap<>();
        Map<String, Node> keyNodes = new LinkedHashMap<>();
        for (NodeTuple tuple : mapping.getValue()) {
            String key = keyOf(tuple.getKeyNode());
            Node first = keyNodes.putIfAbsent(key, tuple.getKeyNode());
            if (first != null) throw duplicate(tuple.getKeyNode(), key, first);
            entries.put(key, child(childPath(key), tuple.getValueNode()));
        }
        return entries;
    }

    String childPath(String key) {
        return path.isEmpty() ? key : path + "." + key;
    }

    String keyOf(Node keyNode) {
        if (!(keyNode instanceof ScalarNode scalar) || keyNode.getTag().equals(Tag.NULL)) {
            throw errorAt(keyNode, (path.isEmpty() ? "" : path + ": ") + "expected a plain key, got "
                    + child(path, keyNode).describe());
        }
        return scalar.getValue();
    }

    ConfigException duplicate(Node keyNode, String key, Node firstKeyNode) {
        return errorAt(keyNode, (path.isEmpty() ? "" : path + ": ") + "duplicate key '" + key
                + "' (first given on line " + (firstKeyNode.getStartMark().getLine() + 1) + ")");
    }

    /** Plain Java view of a free-form value (for pass-through sections such as {@code fsdp_config}). */
    Object toJava() {
        if (node instanceof MappingNode) {
            Map<String, Object> map = new LinkedHashMap<>();
            asOpenMapping().forEach((key, value) -> map.put(key, value.toJava()));
            return java.util.Collections.unmodifiableMap(map);
        }
        if (node instanceof SequenceNode) return asList().stream().map(YamlValue::toJava).toList();
        if (isNull()) return null;
        if (isScalar(Tag.BOOL)) return asBoolean();
        if (isScalar(Tag.INT)) return asLong();
        if (isScalar(Tag.FLOAT)) return asDouble();
        return scalarText();
    }

    /** Reads the value as one of {@code allowed} (compared exactly), naming them all when it is not. */
    String asOneOf(List<String> allowed) {
        String text = node instanceof ScalarNode && !isNull() ? scalarText() : null;
        if (text == null || !allowed.contains(text)) {
            String got = text == null ? describe() : "'" + text + "'";
            throw error(got + " is not one of " + String.join(", ", allowed)
                    + (text == null ? "" : Suggest.didYouMean(text, allowed)));
        }
        return text;
    }

    <E extends Enum<E>> E asEnum(Class<E> type, java.util.function.Function<E, String> yamlName) {
        List<String> names = Arrays.stream(type.getEnumConstants()).map(yamlName).toList();
        String chosen = asOneOf(names);
        return Arrays.stream(type.getEnumConstants()).filter(e -> yamlName.apply(e).equals(chosen)).findFirst()
                .orElseThrow();
    }
}
