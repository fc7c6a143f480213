package dev.jtune.data.config;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;

/**
 * A YAML mapping whose keys were checked on construction: each is one of the allowed keys (else an error
 * with a "did you mean" hint) and none is given twice. Keys set to nothing ({@code lora_model_dir:}) count
 * as absent, because Axolotl's example configs leave unused keys empty that way.
 */
final class YamlMapping {
    private final YamlValue self;
    private final Map<String, YamlValue> values = new LinkedHashMap<>();
    private final Map<String, Node> keyNodes = new LinkedHashMap<>();

    YamlMapping(YamlValue self, MappingNode mapping, List<String> allowedKeys) {
        this(self, mapping, allowedKeys, null);
    }

    /**
     * @param sink where unknown and duplicate keys go, each skipped so that reading goes on; null to throw at
     *     the first
     */
    YamlMapping(YamlValue self, MappingNode mapping, List<String> allowedKeys, Problems sink) {
        this.self = self;
        for (NodeTuple tuple : mapping.getValue()) {
            try {
                take(tuple, allowedKeys);
            } catch (ConfigException e) {
                if (sink == null) throw e;
                sink.add(e);
            }
        }
    }

    private void take(NodeTuple tuple, List<String> allowedKeys) {
        Node keyNode = tuple.getKeyNode();
        String key = self.keyOf(keyNode);
        if (key.equals("<<")) {
            // SnakeYAML's node tree leaves merge keys unexpanded; say so rather than "unknown key".
            throw self.errorAt(keyNode, (self.path().isEmpty() ? "" : self.path() + ": ")
                    + "YAML merge keys ('<<') are not supported; write the keys out");
        }
        if (!allowedKeys.contains(key)) {
            throw self.errorAt(keyNode, (self.path().isEmpty() ? "" : self.path() + ": ") + "unknown key '" + key
                    + "'" + Suggest.didYouMean(key, allowedKeys));
        }
        Node first = keyNodes.putIfAbsent(key, keyNode);
        if (first != null) throw self.duplicate(keyNode, key, first);
        values.put(key, self.child(self.childPath(key), tuple.getValueNode()));
    }

    /** The mapping itself, for errors about it as a whole (a missing key). */
    YamlValue self() {
        return self;
    }

    /** Keys present with a value other than nothing, in file order. */
    Set<String> presentKeys() {
        Set<String> present = new java.util.LinkedHashSet<>();
        values.forEach((key, value) -> {
            if (!value.isNull()) present.add(key);
        });
        return present;
    }

    /** The key's node, for its line and column. */
    Node keyNode(String key) {
        return keyNodes.get(key);
    }

    Optional<YamlValue> get(String key) {
        YamlValue value = values.get(key);
        return value == null || value.isNull() ? Optional.empty() : Optional.of(value);
    }

    YamlValue require(String key, String expected) {
        return get(key).orElseThrow(() -> self.error("missing required key '" + key + "' (" + expected + ")"));
    }

    /** Error pointing at a key rather than at its value, e.g. for a key that does not apply here. */
    ConfigException errorAtKey(String key, String problem) {
        return self.errorAt(keyNodes.get(key), (self.path().isEmpty() ? "" : self.path() + ": ") + problem);
    }

    Optional<String> string(String key) {
        return get(key).map(YamlValue::asString);
    }

    String string(String key, String fallback) {
        return string(key).orElse(fallback);
    }

    boolean bool(String key, boolean fallback) {
        return get(key).map(YamlValue::asBoolean).orElse(fallback);
    }
}
