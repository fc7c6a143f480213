package dev.jtune.model.safetensors;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Pattern;

/**
 * Writes safetensors files that Python's {@code safetensors} and {@code transformers} load, byte for byte as they
 * would write them.
 *
 * <p>As in the Rust crate's {@code serialize}, tensors are laid out sorted by dtype, widest alignment first (in
 * {@link SafetensorsDtype} declaration order, descending), then by name in code point order; the header is compact
 * JSON with {@code __metadata__} first and is padded with spaces to a multiple of 8 bytes, so every tensor starts at a
 * file offset that is a multiple of its element size.
 *
 * <p>Data is streamed: each {@link Entry}'s {@link ByteSource} is called once, in file order, so only one tensor
 * need exist in memory at a time. Every file is written to a hidden temporary file in the target's directory and
 * then atomically renamed over the target; if anything fails, the temporary file is deleted and the target is left as
 * it was.
 */
public final class SafetensorsWriter {

    /** The {@code __metadata__} key transformers checks, and the value it expects for PyTorch weights. */
    public static final String FORMAT_KEY = "format";

    /** See {@link #FORMAT_KEY}. */
    public static final String FORMAT_PT = "pt";

    private static final String METADATA_KEY = "__metadata__";
    private static final int CHUNK_BYTES = 1 << 20;
    private static final long SEGMENT_SLICE_BYTES = 1L << 30;

    private SafetensorsWriter() {}

    /**
     * Produces a tensor's bytes when the file is written.
     *
     * <p>An implementation writes exactly {@link Entry#byteSize()} bytes, little-endian and row-major, and does not
     * close the channel. Wrap the channel with {@link java.nio.channels.Channels#newOutputStream} to write to a
     * stream instead. Writing more bytes than declared fails at once; writing fewer fails after the source returns.
     */
    @FunctionalInterface
    public interface ByteSource {
        void writeTo(WritableByteChannel out) throws IOException;
    }

    /**
     * One tensor to write.
     *
     * @param name the tensor's name; any string but {@code __metadata__}
     * @param dtype element type
     * @param shape dimensions, outermost first; empty for a scalar (copied in and out)
     * @param source writes the {@link #byteSize()} bytes, once, when the file is written
     */
    public record Entry(String name, SafetensorsDtype dtype, long[] shape, ByteSource source) {

        /**
         * @throws IllegalArgumentException for a reserved or malformed name, a negative dimension, or a byte size
         *     that overflows a long
         */
        public Entry {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(dtype, "dtype");
            Objects.requireNonNull(source, "source");
            if (name.equals(METADATA_KEY)) {
                throw new IllegalArgumentException("'" + METADATA_KEY + "' is reserved and cannot name a tensor");
            }
            requireEncodable(name, "tensor name");
            shape = shape.clone();
            for (long d : shape) {
                if (d < 0) {
                    throw new IllegalArgumentException("tensor '" + name + "': negative dimension in shape "
                            + Arrays.toString(shape));
                }
            }
            try {
                Math.multiplyExact(TensorInfo.numel(shape), dtype.byteSize());
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("tensor '" + name + "': shape " + Arrays.toString(shape)
                        + " overflows a 64-bit byte count");
            }
        }

        /**
         * Floats converted to {@code dtype} (F32, F16 or BF16) as they are written; F16 and BF16 round to nearest
         * even (see {@link HalfFloats}). The array is not copied: leave it unchanged until the file is written.
         *
         * @throws IllegalArgumentException if {@code dtype} is not floating point or {@code values} does not hold
         *     exactly the shape's element count
         */
        public static Entry ofFloats(String name, long[] shape, float[] values, SafetensorsDtype dtype) {
            Objects.requireNonNull(values, "values");
            Objects.requireNonNull(dtype, "dtype");
            if (!dtype.isFloatingPoint()) {
                throw new IllegalArgumentException("tensor '" + name + "': ofFloats writes F32, F16 or BF16, not "
                        + dtype);
            }
            Entry entry = new Entry(name, dtype, shape, floatSource(values, dtype));
            if (entry.numel() != values.length) {
                throw new IllegalArgumentException("tensor '" + name + "': shape " + Arrays.toString(shape)
                        + " has " + entry.numel() + " elements but " + values.length + " values were given");
            }
            return entry;
        }

        /**
         * Raw little-endian bytes already in {@code dtype}'s layout. The array is not copied: leave it unchanged until
         * the file is written.
         *
         * @throws IllegalArgumentException if {@code bytes} is not exactly the tensor's byte size
         */
        public static Entry ofBytes(String name, SafetensorsDtype dtype, long[] shape, byte[] bytes) {
            Objects.requireNonNull(bytes, "bytes");
            Entry entry = new Entry(name, dtype, shape, out -> writeFully(out, ByteBuffer.wrap(bytes)));
            entry.requireSize(bytes.length);
            return entry;
        }

        /**
         * Raw little-endian bytes in a segment (native, mapped or heap), e.g. another file's
         * {@link SafetensorsFile#segment}. The segment must stay alive and unchanged until the file is written.
         *
         * @throws IllegalArgumentException if the segment is not exactly the tensor's byte size
         */
        public static Entry ofSegment(String name, SafetensorsDtype dtype, long[] shape, MemorySegment bytes) {
            Objects.requireNonNull(bytes, "bytes");
            Entry entry = new Entry(name, dtype, shape, segmentSource(bytes));
            entry.requireSize(bytes.byteSize());
            return entry;
        }

        /** Tensor {@code name} of an open file, copied as is; the file must stay open until the write finishes. */
        public static Entry copyOf(SafetensorsFile file, String name) {
            TensorInfo info = file.info(name);
            return ofSegment(name, info.dtype(), info.shape(), file.segment(name));
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        /** Number of elements: the product of the shape (1 for a scalar). */
        public long numel() {
            return TensorInfo.numel(shape);
        }

        /** The exact number of bytes {@link #source()} must write. */
        public long byteSize() {
            return numel() * dtype.byteSize();
        }

        private void requireSize(long actual) {
            if (actual != byteSize()) {
                throw new IllegalArgumentException("tensor '" + name + "': " + dtype + " " + Arrays.toString(shape)
                        + " needs " + byteSize() + " bytes but " + actual + " were given");
            }
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Entry e
                    && name.equals(e.name)
                    && dtype == e.dtype
                    && Arrays.equals(shape, e.shape)
                    && source.equals(e.source);
        }

        @Override
        public int hashCode() {
            return Objects.hash(name, dtype, Arrays.hashCode(shape), source);
        }

        @Override
        public String toString() {
            return "Entry[" + name + ", " + dtype + " " + Arrays.toString(shape) + "]";
        }
    }

    /**
     * Writes one safetensors file, atomically.
     *
     * @param metadata extra {@code __metadata__} entries, or null; {@code "format": "pt"} is always included unless
     *     the caller gives another {@code format}
     * @throws IllegalArgumentException if two entries share a name or metadata holds a null
     * @throws SafetensorsException if writing fails or a {@link ByteSource} fails or writes the wrong number of bytes;
     *     the target is then unchanged
     */
    public static void write(Path file, List<Entry> entries, Map<String, String> metadata) {
        Objects.requireNonNull(file, "file");
        List<Entry> ordered = fileOrder(entries);
        ByteBuffer header = header(file, ordered, withFormat(metadata));
        writeAtomically(file, channel -> {
            writeFully(channel, header);
            for (Entry e : ordered) {
                writeEntry(file, channel, e);
            }
        });
    }

    /**
     * Writes a checkpoint into {@code dir} (created if needed) as {@code transformers}' {@code save_pretrained}
     * does: if every tensor fits in one shard of {@code maxShardBytes}, a single {@code <baseName>.safetensors};
     * otherwise {@code <baseName>-00001-of-0000N.safetensors} ... and {@code <baseName>.safetensors.index.json}.
     *
     * <p>Shards are filled in the order of {@code entries}: a tensor that would push the current shard past
     * {@code maxShardBytes} starts a new one, and a tensor larger than {@code maxShardBytes} gets a shard of its own
     * (Hugging Face's {@code split_state_dict_into_shards}). The index is written after every shard, as
     * {@code json.dumps(index, indent=2, sort_keys=True) + "\n"} with {@code metadata.total_size}. Files from an
     * earlier save under the same {@code baseName} that this one does not replace (stale shards, index or single
     * file) are then deleted, so the directory holds exactly one checkpoint.
     *
     * @param baseName file name stem, normally {@code "model"}
     * @param metadata written into every file's {@code __metadata__}, as in {@link #write}
     * @throws IllegalArgumentException for duplicate names, a bad {@code baseName} or a non-positive
     *     {@code maxShardBytes}
     * @throws SafetensorsException if any file cannot be written
     */
    public static void writeSharded(Path dir, String baseName, List<Entry> entries, long maxShardBytes,
            Map<String, String> metadata) {
        Objects.requireNonNull(dir, "dir");
        Objects.requireNonNull(baseName, "baseName");
        if (baseName.isEmpty() || baseName.contains("/") || baseName.contains("\\")) {
            throw new IllegalArgumentException("baseName must be a plain file name stem, got '" + baseName + "'");
        }
        if (maxShardBytes <= 0) {
            throw new IllegalArgumentException("maxShardBytes must be positive, got " + maxShardBytes);
        }
        fileOrder(entries); // rejects duplicate names before anything is written
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new SafetensorsException(dir + ": cannot create directory: " + e, e);
        }
        String single = baseName + ".safetensors";
        String indexName = baseName + ".safetensors.index.json";
        List<List<Entry>> shards = planShards(entries, maxShardBytes);
        if (shards.size() <= 1) {
            write(dir.resolve(single), entries, metadata);
            deleteStale(dir, baseName, Set.of(single));
            return;
        }
        Map<String, String> weightMap = new TreeMap<>(JsonText.CODE_POINT_ORDER);
        Set<String> written = new HashSet<>();
        long totalSize = 0;
        for (int i = 0; i < shards.size(); i++) {
            String shardName = String.format(Locale.ROOT, "%s-%05d-of-%05d.safetensors", baseName, i + 1, shards.size());
            write(dir.resolve(shardName), shards.get(i), metadata);
            written.add(shardName);
            for (Entry e : shards.get(i)) {
                weightMap.put(e.name(), shardName);
                totalSize += e.byteSize();
            }
        }
        ByteBuffer index = ByteBuffer.wrap(indexJson(totalSize, weightMap).getBytes(StandardCharsets.UTF_8));
        writeAtomically(dir.resolve(indexName), channel -> writeFully(channel, index));
        written.add(indexName);
        deleteStale(dir, baseName, written);
    }

    /** Hugging Face's greedy, order-preserving split; see {@link #writeSharded}. */
    static List<List<Entry>> planShards(List<Entry> entries, long maxShardBytes) {
        List<List<Entry>> shards = new ArrayList<>();
        List<Entry> current = new ArrayList<>();
        long currentSize = 0;
        for (Entry e : entries) {
            long size = e.byteSize();
            if (size > maxShardBytes) {
                // Goes out on its own ahead of the still-open shard, exactly as huggingface_hub does.
                shards.add(List.of(e));
                continue;
            }
            if (currentSize + size > maxShardBytes) {
                shards.add(current);
                current = new ArrayList<>();
                currentSize = 0;
            }
            current.add(e);
            currentSize += size;
        }
        if (!current.isEmpty()) {
            shards.add(current);
        }
        return shards;
    }

    /** Validates names and sorts as the Rust crate's {@code prepare}: dtype descending, then name. */
    private static List<Entry> fileOrder(List<Entry> entries) {
        Objects.requireNonNull(entries, "entries");
        Set<String> seen = new HashSet<>();
        for (Entry e : entries) {
            Objects.requireNonNull(e, "entry");
            if (!seen.add(e.name())) {
                throw new IllegalArgumentException("duplicate tensor name '" + e.name() + "'");
            }
        }
        List<Entry> ordered = new ArrayList<>(entries);
        ordered.sort(Comparator.comparing(Entry::dtype, Comparator.reverseOrder())
                .thenComparing(Entry::name, JsonText.CODE_POINT_ORDER));
        return ordered;
    }

    private static Map<String, String> withFormat(Map<String, String> metadata) {
        Map<String, String> merged = new TreeMap<>(JsonText.CODE_POINT_ORDER);
        merged.put(FORMAT_KEY, FORMAT_PT);
        if (metadata != null) {
            metadata.forEach((k, v) -> {
                if (k == null || v == null) {
                    throw new IllegalArgumentException("metadata keys and values must not be null");
                }
                requireEncodable(k, "metadata key");
                requireEncodable(v, "metadata value");
                merged.put(k, v);
            });
        }
        return merged;
    }

    /** The 8-byte length and the space-padded compact JSON header, ready to write. */
    private static ByteBuffer header(Path file, List<Entry> ordered, Map<String, String> metadata) {
        StringBuilder json = new StringBuilder("{");
        JsonText.appendSerde(json, METADATA_KEY);
        json.append(":{");
        boolean first = true;
        for (Map.Entry<String, String> m : metadata.entrySet()) {
            if (!first) {
                json.append(',');
            }
            first = false;
            JsonText.appendSerde(json, m.getKey());
            json.append(':');
            JsonText.appendSerde(json, m.getValue());
        }
        json.append('}');
        long offset = 0;
        for (Entry e : ordered) {
            json.append(',');
            JsonText.appendSerde(json, e.name());
            json.append(":{\"dtype\":\"").append(e.dtype().name()).append("\",\"shape\":[");
            long[] shape = e.shape;
            for (int i = 0; i < shape.length; i++) {
                if (i > 0) {
                    json.append(',');
                }
                json.append(shape[i]);
            }
            long end = offset + e.byteSize();
            json.append("],\"data_offsets\":[").append(offset).append(',').append(end).append("]}");
            offset = end;
        }
        json.append('}');
        byte[] bytes = json.toString().getBytes(StandardCharsets.UTF_8);
        // Padding to 8 keeps the data section, and so every 8-byte tensor, aligned for readers that cast in place.
        int padded = (bytes.length + 7) & ~7;
        if (padded > SafetensorsFile.MAX_HEADER_BYTES) {
            throw new SafetensorsException(file + ": header would be " + padded + " bytes, over the limit of "
                    + SafetensorsFile.MAX_HEADER_BYTES + " that readers accept");
        }
        ByteBuffer out = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(padded).put(bytes);
        while (out.hasRemaining()) {
            out.put((byte) ' ');
        }
        return out.flip();
    }

    /** The index as Python's {@code json.dumps(index, indent=2, sort_keys=True) + "\n"} prints it. */
    static String indexJson(long totalSize, Map<String, String> sortedWeightMap) {
        StringBuilder json = new StringBuilder();
        json.append("{\n  \"metadata\": {\n    \"total_size\": ").append(totalSize).append("\n  },\n");
        json.append("  \"weight_map\": {");
        boolean first = true;
        for (Map.Entry<String, String> e : sortedWeightMap.entrySet()) {
            json.append(first ? "\n" : ",\n").append("    ");
            first = false;
            JsonText.appendPython(json, e.getKey());
            json.append(": ");
            JsonText.appendPython(json, e.getValue());
        }
        json.append(first ? "}" : "\n  }").append("\n}\n");
        return json.toString();
    }

    private static void writeEntry(Path file, FileChannel channel, Entry e) {
        CountingChannel counted = new CountingChannel(channel, e.byteSize());
        try {
            e.source().writeTo(counted);
        } catch (IOException | RuntimeException ex) {
            if (counted.overflowed) {
                throw tooMany(file, e, ex);
            }
            throw new SafetensorsException(file + ": the ByteSource of tensor '" + e.name() + "' failed: " + ex, ex);
        }
        if (counted.overflowed) {
            throw tooMany(file, e, null);
        }
        if (counted.written != e.byteSize()) {
            throw new SafetensorsException(file + ": tensor '" + e.name() + "' (" + e.dtype() + " "
                    + Arrays.toString(e.shape) + ") is " + e.byteSize() + " bytes but its ByteSource wrote only "
                    + counted.written);
        }
    }

    private static SafetensorsException tooMany(Path file, Entry e, Throwable cause) {
        return new SafetensorsException(file + ": tensor '" + e.name() + "' (" + e.dtype() + " "
                + Arrays.toString(e.shape) + ") is " + e.byteSize()
                + " bytes but its ByteSource tried to write more", cause);
    }

    @FunctionalInterface
    private interface Body {
        void write(FileChannel channel) throws IOException;
    }

    /** Writes through a temporary sibling of {@code target}, then renames it over the target in one step. */
    private static void writeAtomically(Path target, Body body) {
        Path absolute = target.toAbsolutePath();
        // Same directory, so the rename never crosses file systems; a leading dot keeps it out of listings.
        Path temp = absolute.resolveSibling("." + absolute.getFileName() + "."
                + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
        try {
            try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                body.write(channel);
                channel.force(true); // the data must be durable before the rename publishes it
            }
            Files.move(temp, absolute, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            deleteQuietly(temp, e);
            throw new SafetensorsException(target + ": cannot write: " + e, e);
        } catch (RuntimeException | Error e) {
            deleteQuietly(temp, e);
            throw e;
        }
    }

    private static void deleteQuietly(Path temp, Throwable failure) {
        try {
            Files.deleteIfExists(temp);
        } catch (IOException e) {
            failure.addSuppressed(e);
        }
    }

    private static void deleteStale(Path dir, String baseName, Set<String> keep) {
        Pattern shard = Pattern.compile(Pattern.quote(baseName) + "-\\d{5}-of-\\d{5}\\.safetensors");
        String single = baseName + ".safetensors";
        String index = baseName + ".safetensors.index.json";
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
            for (Path p : files) {
                String name = p.getFileName().toString();
                boolean ours = name.equals(single) || name.equals(index) || shard.matcher(name).matches();
                if (ours && !keep.contains(name) && Files.isRegularFile(p)) {
                    Files.delete(p);
                }
            }
        } catch (IOException e) {
            throw new SafetensorsException(dir + ": wrote the checkpoint but could not delete a stale file of an"
                    + " earlier save: " + e, e);
        }
    }

    private static void requireEncodable(String s, String what) {
        if (!StandardCharsets.UTF_8.newEncoder().canEncode(s)) {
            throw new IllegalArgumentException(what + " '" + s + "' has an unpaired surrogate; it cannot be UTF-8");
        }
    }

    /** Writes all of {@code buffer}; heap buffers go in chunks so the JDK's temporary direct copies stay small. */
    static void writeFully(WritableByteChannel out, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            int limit = buffer.limit();
            if (!buffer.isDirect() && buffer.remaining() > CHUNK_BYTES) {
                buffer.limit(buffer.position() + CHUNK_BYTES);
            }
            try {
                while (buffer.hasRemaining()) {
                    out.write(buffer);
                }
            } finally {
                buffer.limit(limit);
            }
        }
    }

    private static ByteSource floatSource(float[] values, SafetensorsDtype dtype) {
        return out -> {
            int width = dtype.byteSize();
            int perChunk = CHUNK_BYTES / width;
            ByteBuffer buffer = ByteBuffer.allocate(Math.min(values.length, perChunk) * width)
                    .order(ByteOrder.LITTLE_ENDIAN);
            for (int start = 0; start < values.length; start += perChunk) {
                int end = Math.min(values.length, start + perChunk);
                buffer.clear();
                switch (dtype) {
                    case F32 -> {
                        buffer.asFloatBuffer().put(values, start, end - start);
                        buffer.position((end - start) * width);
                    }
                    case F16 -> {
                        for (int i = start; i < end; i++) {
                            buffer.putShort(HalfFloats.floatToFloat16(values[i]));
                        }
                    }
                    case BF16 -> {
                        for (int i = start; i < end; i++) {
                            buffer.putShort(HalfFloats.floatToBFloat16(values[i]));
                        }
                    }
                    default -> throw new IllegalStateException("not a float dtype: " + dtype);
                }
                writeFully(out, buffer.flip());
            }
        };
    }

    private static ByteSource segmentSource(MemorySegment segment) {
        return out -> {
            long size = segment.byteSize();
            if (segment.isNative()) {
                // A ByteBuffer holds at most 2 GiB, so large (mapped) segments go out in slices.
                for (long offset = 0; offset < size; offset += SEGMENT_SLICE_BYTES) {
                    long length = Math.min(SEGMENT_SLICE_BYTES, size - offset);
                    writeFully(out, segment.asSlice(offset, length).asByteBuffer());
                }
                return;
            }
            // Heap segments may wrap non-byte arrays, which cannot be viewed as a ByteBuffer; copy through bytes.
            byte[] chunk = new byte[(int) Math.min(size, CHUNK_BYTES)];
            MemorySegment chunkSegment = MemorySegment.ofArray(chunk);
            for (long offset = 0; offset < size; offset += chunk.length) {
                int length = (int) Math.min(chunk.length, size - offset);
                MemorySegment.copy(segment, offset, chunkSegment, 0, length);
                writeFully(out, ByteBuffer.wrap(chunk, 0, length));
            }
        };
    }

    /** Passes writes through to the file, refusing bytes past the declared size and refusing to close the file. */
    private static final class CountingChannel implements WritableByteChannel {
        private final FileChannel file;
        private final long limit;
        private long written;
        private boolean overflowed;
        private boolean closed;

        CountingChannel(FileChannel file, long limit) {
            this.file = file;
            this.limit = limit;
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            if (closed) {
                throw new ClosedChannelException();
            }
            if (src.remaining() > limit - written) {
                overflowed = true;
                throw new IOException("ByteSource wrote past the tensor's " + limit + " bytes");
            }
            int n = file.write(src);
            written += n;
            return n;
        }

        @Override
        public boolean isOpen() {
            return !closed && file.isOpen();
        }

        @Override
        public void close() {
            closed = true; // the file itself stays open for the next tensor
        }
    }
}
