package dev.jtune.model.safetensors;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.FileChannel.MapMode;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * One {@code .safetensors} file, memory-mapped read-only.
 *
 * <p>{@link #open} validates the whole header the way the Rust {@code safetensors} crate does before anything can be
 * read: the 8-byte little-endian header length is at most 100,000,000 and fits in the file; the header is UTF-8 JSON
 * holding one object; each tensor entry has a known dtype, a shape of non-negative integers and two
 * {@code data_offsets}; sorted by offset, the tensors tile the data section from 0 with no gap or overlap, each spans
 * exactly {@code numel * dtype size} bytes, and the last one ends at the end of the file. A header may repeat a key
 * (the last occurrence wins, as with serde_json) and entries may carry extra fields (ignored, as in Rust).
 *
 * <p>The mapping uses a shared {@link Arena}, so segments may be read from any thread; they become inaccessible
 * ({@link IllegalStateException}) once the file is {@linkplain #close closed}. Arrays returned by {@link #floats},
 * {@link #ints}, {@link #longs} and {@link #bytes} are fresh copies that outlive the file.
 */
public final class SafetensorsFile implements AutoCloseable {

    /** The largest header the Rust crate accepts, in bytes. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    /** Arrays cannot be quite {@code Integer.MAX_VALUE} long on common JVMs. */
    private static final long MAX_ARRAY_LENGTH = Integer.MAX_VALUE - 8;

    private static final String METADATA_KEY = "__metadata__";

    // Tensor data is packed with no alignment promise, so every access uses the unaligned layouts.
    private static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena arena;
    private final MemorySegment data;
    private final Map<String, TensorInfo> tensors;
    private final List<String> names;
    private final List<TensorInfo> fileOrder;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, Arena arena, MemorySegment data, List<TensorInfo> fileOrder,
            Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.data = data;
        this.fileOrder = List.copyOf(fileOrder);
        Map<String, TensorInfo> byName = new LinkedHashMap<>();
        for (TensorInfo t : fileOrder) {
            byName.put(t.name(), t);
        }
        this.tensors = Collections.unmodifiableMap(byName);
        this.names = byName.keySet().stream().sorted(JsonText.CODE_POINT_ORDER).toList();
        this.metadata = metadata;
    }

    /**
     * Maps and validates {@code path}.
     *
     * @throws SafetensorsException if the file cannot be read or is not a valid safetensors file
     */
    public static SafetensorsFile open(Path path) {
        if (Files.isDirectory(path)) {
            throw error(path, "is a directory, not a safetensors file");
        }
        Arena arena = Arena.ofShared();
        try {
            MemorySegment whole;
            try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
                long size = channel.size();
                if (size < 8) {
                    throw error(path, "file is " + size + " bytes, too short for the 8-byte header length"
                            + " (truncated, or not a safetensors file)");
                }
                // The mapping outlives the channel; the arena owns it.
                whole = channel.map(MapMode.READ_ONLY, 0, size, arena);
            }
            return parse(path, arena, whole);
        } catch (NoSuchFileException e) {
            arena.close();
            throw new SafetensorsException(path + ": no such file", e);
        } catch (IOException e) {
            arena.close();
            throw new SafetensorsException(path + ": cannot read: " + e, e);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    private static SafetensorsFile parse(Path path, Arena arena, MemorySegment whole) {
        long fileSize = whole.byteSize();
        long n = whole.get(I64_LE, 0); // really a u64; compared unsigned below
        if (Long.compareUnsigned(n, MAX_HEADER_BYTES) > 0) {
            throw error(path, "header length " + Long.toUnsignedString(n) + " exceeds the limit of "
                    + MAX_HEADER_BYTES + " bytes (corrupt, or not a safetensors file)");
        }
        if (n > fileSize - 8) {
            throw error(path, "header length " + n + " runs past the end of the " + fileSize
                    + "-byte file (truncated)");
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(whole.asSlice(8, n).asByteBuffer())
                    .toString();
        } catch (CharacterCodingException e) {
            throw error(path, "header is not valid UTF-8");
        }
        JsonNode root;
        try {
            root = JsonText.MAPPER.readTree(text);
        } catch (JacksonException e) {
            throw error(path, "header is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || root.isMissingNode()) {
            throw error(path, "header is not valid JSON: it is empty");
        }
        if (!root.isObject()) {
            throw error(path, "header is not a JSON object (found " + root.getNodeType().name().toLowerCase() + ")");
        }

        Map<String, String> metadata = Map.of();
        List<RawEntry> entries = new ArrayList<>();
        for (Map.Entry<String, JsonNode> field : root.properties()) {
            if (field.getKey().equals(METADATA_KEY)) {
                metadata = parseMetadata(path, field.getValue());
            } else {
                entries.add(parseEntry(path, field.getKey(), field.getValue()));
            }
        }

        // Validate in offset order, as the Rust crate does, so that files written in any entry order are accepted.
        entries.sort(Comparator.comparingLong(RawEntry::begin).thenComparingLong(RawEntry::end));
        List<TensorInfo> infos = new ArrayList<>(entries.size());
        long expectedBegin = 0;
        String previous = null;
        for (RawEntry e : entries) {
            if (e.end < e.begin) {
                throw error(path, "tensor '" + e.name + "' has data_offsets [" + e.begin + ", " + e.end
                        + "] that end before they begin");
            }
            if (e.begin < expectedBegin) {
                throw error(path, "tensor '" + e.name + "' has data_offsets [" + e.begin + ", " + e.end
                        + "] that overlap tensor '" + previous + "', which ends at " + expectedBegin);
            }
            if (e.begin > expectedBegin) {
                throw error(path, "gap in the data section: bytes [" + expectedBegin + ", " + e.begin
                        + ") belong to no tensor (next tensor '" + e.name + "' begins at " + e.begin + ")");
            }
            long bytes;
            try {
                bytes = Math.multiplyExact(TensorInfo.numel(e.shape), e.dtype.byteSize());
            } catch (ArithmeticException overflow) {
                throw error(path, "tensor '" + e.name + "' has shape " + Arrays.toString(e.shape)
                        + " whose byte size overflows");
            }
            if (e.end - e.begin != bytes) {
                throw error(path, "tensor '" + e.name + "' is " + e.dtype + " " + Arrays.toString(e.shape)
                        + ", which needs " + bytes + " bytes, but its data_offsets [" + e.begin + ", " + e.end
                        + "] span " + (e.end - e.begin) + " bytes");
            }
            infos.add(new TensorInfo(e.name, e.dtype, e.shape, e.begin, e.end));
            expectedBegin = e.end;
            previous = e.name;
        }

        long dataStart = 8 + n;
        long dataSize = fileSize - dataStart;
        if (dataSize != expectedBegin) {
            String problem = dataSize < expectedBegin
                    ? "file is truncated: the header describes " + expectedBegin + " bytes of tensor data but only "
                            + dataSize + " follow the header"
                    : "file has " + (dataSize - expectedBegin) + " unexpected trailing bytes after the "
                            + expectedBegin + " bytes of tensor data the header describes";
            throw error(path, problem);
        }
        return new SafetensorsFile(path, arena, whole.asSlice(dataStart), infos, metadata);
    }

    private record RawEntry(String name, SafetensorsDtype dtype, long[] shape, long begin, long end) {}

    private static Map<String, String> parseMetadata(Path path, JsonNode node) {
        if (node.isNull()) {
            return Map.of(); // serde reads null as "no metadata".
        }
        if (!node.isObject()) {
            throw error(path, METADATA_KEY + " must be a JSON object of strings");
        }
        Map<String, String> out = new TreeMap<>(JsonText.CODE_POINT_ORDER);
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            if (!e.getValue().isTextual()) {
                throw error(path, METADATA_KEY + " value for key '" + e.getKey() + "' is not a string");
            }
            out.put(e.getKey(), e.getValue().textValue());
        }
        return Collections.unmodifiableMap(out);
    }

    private static RawEntry parseEntry(Path path, String name, JsonNode node) {
        if (!node.isObject()) {
            throw error(path, "tensor '" + name + "': header entry is not a JSON object");
        }
        JsonNode dtypeNode = require(path, name, node, "dtype");
        if (!dtypeNode.isTextual()) {
            throw error(path, "tensor '" + name + "': dtype is not a string");
        }
        String dtypeName = dtypeNode.textValue();
        Optional<SafetensorsDtype> dtype = SafetensorsDtype.fromHeaderName(dtypeName);
        if (dtype.isEmpty()) {
            throw error(path, "tensor '" + name + "' has unknown or unsupported dtype '" + dtypeName
                    + "' (jtune reads " + Arrays.toString(SafetensorsDtype.values()) + ")");
        }
        JsonNode shapeNode = require(path, name, node, "shape");
        if (!shapeNode.isArray()) {
            throw error(path, "tensor '" + name + "': shape is not an array");
        }
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = unsigned(path, name, "shape", shapeNode.get(i));
        }
        JsonNode offsets = require(path, name, node, "data_offsets");
        if (!offsets.isArray() || offsets.size() != 2) {
            throw error(path, "tensor '" + name + "': data_offsets is not an array of two integers");
        }
        long begin = unsigned(path, name, "data_offsets", offsets.get(0));
        long end = unsigned(path, name, "data_offsets", offsets.get(1));
        return new RawEntry(name, dtype.get(), shape, begin, end);
    }

    private static JsonNode require(Path path, String name, JsonNode node, String field) {
        JsonNode value = node.get(field);
        if (value == null) {
            throw error(path, "tensor '" + name + "': header entry lacks " + field);
        }
        return value;
    }

    private static long unsigned(Path path, String name, String field, JsonNode value) {
        if (!value.isIntegralNumber() || !value.canConvertToLong() || value.longValue() < 0) {
            throw error(path, "tensor '" + name + "': " + field + " holds " + value
                    + ", not a non-negative 64-bit integer");
        }
        return value.longValue();
    }

    private static SafetensorsException error(Path path, String problem) {
        return new SafetensorsException(path + ": " + problem);
    }

    /** The file this was opened from. */
    public Path path() {
        return path;
    }

    /** Every tensor name, sorted by Unicode code point (the order of Python's {@code sorted}). */
    public List<String> names() {
        return names;
    }

    /** Every tensor's header entry in data-section order, i.e. the order the bytes lie in the file. */
    public List<TensorInfo> tensors() {
        return fileOrder;
    }

    /** The header's {@code __metadata__} (empty if absent), sorted by key. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Whether the file holds a tensor called {@code name}. */
    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /**
     * The header entry of tensor {@code name}.
     *
     * @throws SafetensorsException if the file has no such tensor
     */
    public TensorInfo info(String name) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw error(path, "no tensor named '" + name + "' (the file holds " + tensors.size() + " tensors)");
        }
        return info;
    }

    /**
     * The tensor's raw little-endian bytes, a read-only view of the mapping (no copy). Valid until {@link #close}.
     *
     * @throws SafetensorsException if the file has no such tensor
     */
    public MemorySegment segment(String name) {
        return segment(info(name));
    }

    private MemorySegment segment(TensorInfo info) {
        return data.asSlice(info.begin(), info.byteSize());
    }

    /**
     * A copy of an F32, F16 or BF16 tensor as floats (the 16-bit formats widen exactly).
     *
     * @throws SafetensorsException if the tensor is missing, is not floating point, or has too many elements for an
     *     array
     */
    public float[] floats(String name) {
        TensorInfo info = info(name);
        MemorySegment seg = segment(info);
        int n = arrayLength(info);
        float[] out = new float[n];
        switch (info.dtype()) {
            case F32 -> MemorySegment.copy(seg, F32_LE, 0, out, 0, n);
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = HalfFloats.float16ToFloat(seg.get(I16_LE, 2L * i));
                }
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = HalfFloats.bfloat16ToFloat(seg.get(I16_LE, 2L * i));
                }
            }
            default -> throw wrongDtype(info, "floats", "F32, F16 or BF16");
        }
        release(seg);
        return out;
    }

    /**
     * Drops a tensor's pages from this process's resident set once copied (madvise DONTNEED on the read-only mapping;
     * they stay in the page cache, and a later read faults them in again). Without it, every page of the checkpoint
     * ever read counts in the RSS for as long as the file is open: a 7B bf16 model's 13.5 GB.
     */
    private static void release(MemorySegment seg) {
        if (seg.isMapped() && seg.byteSize() > 0) {
            seg.unload();
        }
    }

    /**
     * A copy of an I32, I8 or U8 tensor as ints (U8 is read unsigned).
     *
     * @throws SafetensorsException if the tensor is missing, has another dtype, or is too large for an array
     */
    public int[] ints(String name) {
        TensorInfo info = info(name);
        MemorySegment seg = segment(info);
        int n = arrayLength(info);
        int[] out = new int[n];
        switch (info.dtype()) {
            case I32 -> MemorySegment.copy(seg, I32_LE, 0, out, 0, n);
            case I8 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = seg.get(ValueLayout.JAVA_BYTE, i);
                }
            }
            case U8 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = seg.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
                }
            }
            default -> throw wrongDtype(info, "ints", "I32, I8 or U8");
        }
        return out;
    }

    /**
     * A copy of an I64, I32, I8 or U8 tensor as longs (U8 is read unsigned).
     *
     * @throws SafetensorsException if the tensor is missing, has another dtype, or is too large for an array
     */
    public long[] longs(String name) {
        TensorInfo info = info(name);
        if (info.dtype() != SafetensorsDtype.I64) {
            if (info.dtype().isFloatingPoint()) {
                throw wrongDtype(info, "longs", "I64, I32, I8 or U8");
            }
            return Arrays.stream(ints(name)).asLongStream().toArray();
        }
        MemorySegment seg = segment(info);
        int n = arrayLength(info);
        long[] out = new long[n];
        MemorySegment.copy(seg, I64_LE, 0, out, 0, n);
        return out;
    }

    /**
     * A copy of the tensor's raw little-endian bytes, whatever its dtype.
     *
     * @throws SafetensorsException if the tensor is missing or larger than an array can hold
     */
    public byte[] bytes(String name) {
        TensorInfo info = info(name);
        if (info.byteSize() > MAX_ARRAY_LENGTH) {
            throw error(path, "tensor '" + name + "' is " + info.byteSize()
                    + " bytes, too large for a Java array; use segment()");
        }
        return segment(info).toArray(ValueLayout.JAVA_BYTE);
    }

    private int arrayLength(TensorInfo info) {
        if (info.numel() > MAX_ARRAY_LENGTH) {
            throw error(path, "tensor '" + info.name() + "' has " + info.numel()
                    + " elements, too many for a Java array; use segment()");
        }
        return (int) info.numel();
    }

    private SafetensorsException wrongDtype(TensorInfo info, String method, String accepted) {
        return error(path, "tensor '" + info.name() + "' is " + info.dtype() + "; " + method + "() reads " + accepted);
    }

    /** Unmaps the file; segments obtained from it become inaccessible. Idempotent. */
    @Override
    public synchronized void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + path + ", " + tensors.size() + " tensors]";
    }
}
