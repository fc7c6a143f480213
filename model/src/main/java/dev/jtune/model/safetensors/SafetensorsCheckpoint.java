package dev.jtune.model.safetensors;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The safetensors weights of a Hugging Face model directory: a single {@code model.safetensors}, or the shards a
 * {@code model.safetensors.index.json} lists. When both exist the single file wins, as in {@code transformers}'
 * {@code from_pretrained}.
 *
 * <p>For a sharded checkpoint every shard is opened (and validated) once, and every tensor the index's
 * {@code weight_map} names must really be in the shard it names. Tensors a shard holds but the index does not list
 * are not exposed, since {@code transformers} would not load them either. Thread-safe for reading.
 */
public final class SafetensorsCheckpoint implements AutoCloseable {

    /** The single-file checkpoint name. */
    public static final String SINGLE_FILE = "model.safetensors";

    /** The sharded checkpoint's index name. */
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path directory;
    private final List<SafetensorsFile> files;
    private final Map<String, SafetensorsFile> byName;
    private final List<String> names;

    private SafetensorsCheckpoint(Path directory, List<SafetensorsFile> files, Map<String, SafetensorsFile> byName) {
        this.directory = directory;
        this.files = List.copyOf(files);
        this.byName = Collections.unmodifiableMap(byName);
        this.names = List.copyOf(byName.keySet());
    }

    /**
     * Opens the checkpoint in {@code directory}.
     *
     * @throws SafetensorsException if the directory holds neither file, the index is malformed, names a shard that
     *     does not exist or a tensor its shard lacks, or any file fails {@link SafetensorsFile#open} validation
     */
    public static SafetensorsCheckpoint open(Path directory) {
        if (!Files.isDirectory(directory)) {
            throw new SafetensorsException(directory + ": not a directory (expected a Hugging Face model directory"
                    + " holding " + SINGLE_FILE + " or " + INDEX_FILE + ")");
        }
        Path single = directory.resolve(SINGLE_FILE);
        if (Files.isRegularFile(single)) {
            SafetensorsFile file = SafetensorsFile.open(single);
            Map<String, SafetensorsFile> byName = new TreeMap<>(JsonText.CODE_POINT_ORDER);
            for (String name : file.names()) {
                byName.put(name, file);
            }
            return new SafetensorsCheckpoint(directory, List.of(file), byName);
        }
        Path index = directory.resolve(INDEX_FILE);
        if (Files.isRegularFile(index)) {
            return openSharded(directory, index);
        }
        throw new SafetensorsException(directory + ": no safetensors checkpoint: expected " + SINGLE_FILE + " or "
                + INDEX_FILE + " (with its shards)");
    }

    private static SafetensorsCheckpoint openSharded(Path directory, Path index) {
        Map<String, String> weightMap = readWeightMap(index);
        // Open each shard once, in name order, and close them all if any later check fails.
        Map<String, SafetensorsFile> shards = new TreeMap<>(JsonText.CODE_POINT_ORDER);
        try {
            Map<String, String> firstTensorOf = new TreeMap<>(JsonText.CODE_POINT_ORDER);
            weightMap.forEach((tensor, shard) -> firstTensorOf.putIfAbsent(shard, tensor));
            Path root = directory.toAbsolutePath().normalize();
            for (Map.Entry<String, String> e : firstTensorOf.entrySet()) {
                String shardName = e.getKey();
                Path shardPath = root.resolve(shardName).normalize();
                if (!shardPath.startsWith(root) || shardPath.equals(root)) {
                    throw new SafetensorsException(index + ": weight_map puts tensor '" + e.getValue()
                            + "' in shard '" + shardName + "', which is outside " + directory);
                }
                if (!Files.isRegularFile(shardPath)) {
                    throw new SafetensorsException(index + ": weight_map puts tensor '" + e.getValue()
                            + "' in shard '" + shardName + "', which does not exist in " + directory);
                }
                shards.put(shardName, SafetensorsFile.open(shardPath));
            }
            Map<String, SafetensorsFile> byName = new TreeMap<>(JsonText.CODE_POINT_ORDER);
            for (Map.Entry<String, String> e : weightMap.entrySet()) {
                SafetensorsFile shard = shards.get(e.getValue());
                if (!shard.contains(e.getKey())) {
                    throw new SafetensorsException(index + ": weight_map puts tensor '" + e.getKey() + "' in shard '"
                            + e.getValue() + "', but that shard has no such tensor");
                }
                byName.put(e.getKey(), shard);
            }
            return new SafetensorsCheckpoint(directory, new ArrayList<>(shards.values()), byName);
        } catch (RuntimeException | Error e) {
            for (SafetensorsFile f : shards.values()) {
                f.close();
            }
            throw e;
        }
    }

    private static Map<String, String> readWeightMap(Path index) {
        JsonNode root;
        try {
            root = JsonText.MAPPER.readTree(Files.readString(index));
        } catch (JacksonException e) {
            throw new SafetensorsException(index + ": not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new SafetensorsException(index + ": cannot read: " + e, e);
        }
        if (root == null || !root.isObject()) {
            throw new SafetensorsException(index + ": expected a JSON object with a weight_map");
        }
        JsonNode map = root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new SafetensorsException(index + ": weight_map is " + (map == null ? "missing" : "not an object"));
        }
        Map<String, String> weightMap = new TreeMap<>(JsonText.CODE_POINT_ORDER);
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            if (!e.getValue().isTextual()) {
                throw new SafetensorsException(index + ": weight_map entry for tensor '" + e.getKey()
                        + "' is not a file name string");
            }
            weightMap.put(e.getKey(), e.getValue().textValue());
        }
        return weightMap;
    }

    /** The model directory this was opened from. */
    public Path directory() {
        return directory;
    }

    /** The open files: the single file, or every shard in name order. */
    public List<SafetensorsFile> files() {
        return files;
    }

    /** Every tensor name, sorted by Unicode code point. */
    public List<String> names() {
        return names;
    }

    /** Whether the checkpoint has a tensor called {@code name}. */
    public boolean contains(String name) {
        return byName.containsKey(name);
    }

    /**
     * The file holding tensor {@code name}.
     *
     * @throws SafetensorsException if there is no such tensor
     */
    public SafetensorsFile file(String name) {
        SafetensorsFile file = byName.get(name);
        if (file == null) {
            throw new SafetensorsException(directory + ": checkpoint has no tensor named '" + name + "' ("
                    + byName.size() + " tensors in " + files.size() + " file(s))");
        }
        return file;
    }

    /** The header entry of tensor {@code name}; see {@link SafetensorsFile#info}. */
    public TensorInfo info(String name) {
        return file(name).info(name);
    }

    /** The tensor's raw bytes; see {@link SafetensorsFile#segment}. */
    public MemorySegment segment(String name) {
        return file(name).segment(name);
    }

    /** The tensor as floats; see {@link SafetensorsFile#floats}. */
    public float[] floats(String name) {
        return file(name).floats(name);
    }

    /** Closes every file; segments obtained from them become inaccessible. Idempotent. */
    @Override
    public void close() {
        for (SafetensorsFile f : files) {
            f.close();
        }
    }

    @Override
    public String toString() {
        return "SafetensorsCheckpoint[" + directory + ", " + names.size() + " tensors in " + files.size() + " file(s)]";
    }
}
