package dev.jtune.data.dataset;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.AbstractList;
import java.util.List;
import java.util.RandomAccess;
import java.util.zip.CRC32C;

/**
 * The on-disk form of one split's rows: a little-endian file, memory-mapped on read so rows are fetched on
 * demand. Position ids are not stored: they restart at 0 at every {@code cuSeqlens} boundary.
 *
 * <pre>
 *  offset  size                 field
 *  0       8                    magic "JTROWS01"
 *  8       4  int32             rows R
 *  12      4  int32             CRC32C of every byte from offset 40 to the end
 *  16      8  int64             tokens T
 *  24      8  int64             boundaries C (sum over rows of cuSeqlens.length)
 *  32      8                    reserved, 0
 *  40      8(R+1) int64         token offset of each row, then T
 *          8(R+1) int64         boundary offset of each row, then C
 *          4T int32             input ids
 *          4T int32             labels
 *          4C int32             cuSeqlens of each row, in full (0 ... length)
 * </pre>
 */
final class RowFile {
    static final byte[] MAGIC = "JTROWS01".getBytes(StandardCharsets.US_ASCII);
    static final int HEADER = 40;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);

    private RowFile() {}

    /** Writes {@code rows} to {@code file} (created new) and forces it to disk. */
    static void write(Path file, List<Row> rows) throws IOException {
        int r = rows.size();
        long tokens = 0;
        long bounds = 0;
        for (Row row : rows) {
            tokens += row.length();
            bounds += row.cuSeqlens().length;
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            Out out = new Out(ch);
            ch.position(HEADER);
            long at = 0;
            for (Row row : rows) {
                out.putLong(at);
                at += row.length();
            }
            out.putLong(at);
            at = 0;
            for (Row row : rows) {
                out.putLong(at);
                at += row.cuSeqlens().length;
            }
            out.putLong(at);
            for (Row row : rows) out.putInts(row.inputIds());
            for (Row row : rows) out.putInts(row.labels());
            for (Row row : rows) out.putInts(row.cuSeqlens());
            out.flush();
            ByteBuffer header = ByteBuffer.allocate(HEADER).order(ByteOrder.LITTLE_ENDIAN);
            header.put(MAGIC).putInt(r).putInt((int) out.crc.getValue()).putLong(tokens).putLong(bounds).putLong(0);
            header.flip();
            ch.position(0);
            while (header.hasRemaining()) ch.write(header);
            ch.force(true);
        }
    }

    /** Buffered little-endian writes that also feed the checksum. */
    private static final class Out {
        final FileChannel ch;
        final ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
        final CRC32C crc = new CRC32C();

        Out(FileChannel ch) {
            this.ch = ch;
        }

        void putLong(long v) throws IOException {
            if (buf.remaining() < 8) flush();
            buf.putLong(v);
        }

        void putInts(int[] values) throws IOException {
            int at = 0;
            while (at < values.length) {
                if (buf.remaining() < 4) flush();
                int n = Math.min(values.length - at, buf.remaining() / 4);
                buf.asIntBuffer().put(values, at, n); // a view in the buffer's (little-endian) order
                buf.position(buf.position() + 4 * n);
                at += n;
            }
        }

        void flush() throws IOException {
            buf.flip();
            crc.update(buf.duplicate());
            while (buf.hasRemaining()) ch.write(buf);
            buf.clear();
        }
    }

    /**
     * Maps {@code file} into {@code arena} and checks it completely (size, checksum, offsets), so a damaged
     * file fails here with a message naming it rather than later inside training.
     *
     * @throws CorruptPreparedDataException if the file is not a well-formed row file
     */
    static List<Row> open(Path file, Arena arena) throws IOException {
        MemorySegment seg;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
        }
        long size = seg.byteSize();
        if (size < HEADER) throw corrupt(file, "shorter than its " + HEADER + "-byte header (" + size + " bytes)");
        byte[] magic = seg.asSlice(0, 8).toArray(ValueLayout.JAVA_BYTE);
        if (!java.util.Arrays.equals(magic, MAGIC)) throw corrupt(file, "does not start with " + new String(MAGIC, StandardCharsets.US_ASCII));
        int rows = seg.get(INT, 8);
        int crc = seg.get(INT, 12);
        long tokens = seg.get(LONG, 16);
        long bounds = seg.get(LONG, 24);
        if (rows < 0 || tokens < 0 || bounds < 0) throw corrupt(file, "negative counts in the header");
        long expected = HEADER + 16L * (rows + 1) + 8 * tokens + 4 * bounds;
        if (expected != size) throw corrupt(file, "is " + size + " bytes; its header promises " + expected);
        CRC32C check = new CRC32C();
        for (long at = HEADER; at < size; at += 1 << 30) {
            check.update(seg.asSlice(at, Math.min(1L << 30, size - at)).asByteBuffer());
        }
        if ((int) check.getValue() != crc) throw corrupt(file, "checksum mismatch (the file was damaged or changed)");
        long tokOff = HEADER;
        long boundOff = tokOff + 8L * (rows + 1);
        long idsAt = boundOff + 8L * (rows + 1);
        long labelsAt = idsAt + 4 * tokens;
        long cuAt = labelsAt + 4 * tokens;
        long prevT = -1;
        long prevC = -1;
        for (int i = 0; i <= rows; i++) {
            long t = seg.get(LONG, tokOff + 8L * i);
            long c = seg.get(LONG, boundOff + 8L * i);
            if ((i == 0 && (t != 0 || c != 0)) || t < prevT || c <= prevC && i > 0 || t > tokens || c > bounds
                    || (i == rows && (t != tokens || c != bounds))) {
                throw corrupt(file, "row offsets out of order at row " + i);
            }
            prevT = t;
            prevC = c;
        }
        return new Mapped(file, seg, rows, tokOff, boundOff, idsAt, labelsAt, cuAt);
    }

    static CorruptPreparedDataException corrupt(Path file, String what) {
        return new CorruptPreparedDataException(file + ": corrupt prepared dataset: " + what
                + "; delete its directory to rebuild it");
    }

    /** A read-only list view over a mapped row file; each {@code get} copies one row out. */
    private static final class Mapped extends AbstractList<Row> implements RandomAccess {
        private final Path file;
        private final MemorySegment seg;
        private final int rows;
        private final long tokOff;
        private final long boundOff;
        private final long idsAt;
        private final long labelsAt;
        private final long cuAt;

        Mapped(Path file, MemorySegment seg, int rows, long tokOff, long boundOff, long idsAt, long labelsAt, long cuAt) {
            this.file = file;
            this.seg = seg;
            this.rows = rows;
            this.tokOff = tokOff;
            this.boundOff = boundOff;
            this.idsAt = idsAt;
            this.labelsAt = labelsAt;
            this.cuAt = cuAt;
        }

        @Override
        public int size() {
            return rows;
        }

        @Override
        public Row get(int index) {
            java.util.Objects.checkIndex(index, rows);
            long t0 = seg.get(LONG, tokOff + 8L * index);
            long t1 = seg.get(LONG, tokOff + 8L * (index + 1));
            long c0 = seg.get(LONG, boundOff + 8L * index);
            long c1 = seg.get(LONG, boundOff + 8L * (index + 1));
            int n = Math.toIntExact(t1 - t0);
            int[] ids = seg.asSlice(idsAt + 4 * t0, 4L * n).toArray(INT);
            int[] labels = seg.asSlice(labelsAt + 4 * t0, 4L * n).toArray(INT);
            int[] cu = seg.asSlice(cuAt + 4 * c0, 4 * (c1 - c0)).toArray(INT);
            int[] positions = new int[n];
            try {
                for (int s = 0; s + 1 < cu.length; s++) {
                    for (int i = cu[s]; i < cu[s + 1]; i++) positions[i] = i - cu[s];
                }
                return new Row(ids, labels, positions, cu);
            } catch (RuntimeException e) {
                throw corrupt(file, "row " + index + ": " + e.getMessage());
            }
        }
    }
}
