package dev.jtune.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.model.safetensors.SafetensorsWriter.Entry;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsWriterTest {

    @TempDir
    Path dir;

    private static final float[] FLOATS = {0f, 1f, -2.5f, 0.1f, 65504f, 1e-8f, Float.NaN, Float.NEGATIVE_INFINITY};

    private List<String> listing() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void roundTripsEveryDtype() {
        Path file = dir.resolve("all.safetensors");
        SafetensorsWriter.write(file, List.of(
                Entry.ofFloats("f32", new long[] {2, 4}, FLOATS, SafetensorsDtype.F32),
                Entry.ofFloats("f16", new long[] {8}, FLOATS, SafetensorsDtype.F16),
                Entry.ofFloats("bf16", new long[] {4, 2}, FLOATS, SafetensorsDtype.BF16),
                Entry.ofBytes("u8", SafetensorsDtype.U8, new long[] {3}, new byte[] {0, 127, (byte) 255}),
                Entry.ofBytes("i8", SafetensorsDtype.I8, new long[] {3}, new byte[] {-128, 0, 127}),
                Entry.ofBytes("i32", SafetensorsDtype.I32, new long[] {1, 3},
                        RawFiles.littleEndianInts(Integer.MIN_VALUE, -1, Integer.MAX_VALUE)),
                Entry.ofBytes("i64", SafetensorsDtype.I64, new long[] {2},
                        RawFiles.littleEndianLongs(Long.MIN_VALUE, 1L << 40))), Map.of());

        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of("bf16", "f16", "f32", "i32", "i64", "i8", "u8"), f.names());
            assertArrayEquals(FLOATS, f.floats("f32"));
            assertArrayEquals(new long[] {2, 4}, f.info("f32").shape());

            // Exactly representable values come back exactly; the rest as the nearest 16-bit value.
            float[] f16 = f.floats("f16");
            assertArrayEquals(new float[] {0f, 1f, -2.5f}, java.util.Arrays.copyOf(f16, 3));
            assertEquals(0.0999755859375f, f16[3]); // 0x2E66, the float16 nearest to 0.1
            assertEquals(65504f, f16[4]);
            assertEquals(0f, f16[5]); // below half of the smallest subnormal (2^-25)
            assertTrue(Float.isNaN(f16[6]));
            assertEquals(Float.NEGATIVE_INFINITY, f16[7]);

            float[] bf16 = f.floats("bf16");
            assertArrayEquals(new float[] {0f, 1f, -2.5f}, java.util.Arrays.copyOf(bf16, 3));
            assertEquals(0.10009765625f, bf16[3]); // 0x3DCD
            assertEquals(65536f, bf16[4]); // 65504 rounds to the nearest bfloat16, 2^16
            assertEquals(HalfFloats.bfloat16ToFloat(HalfFloats.floatToBFloat16(1e-8f)), bf16[5]);
            assertTrue(Float.isNaN(bf16[6]));
            assertEquals(Float.NEGATIVE_INFINITY, bf16[7]);

            assertArrayEquals(new int[] {0, 127, 255}, f.ints("u8"));
            assertArrayEquals(new int[] {-128, 0, 127}, f.ints("i8"));
            assertArrayEquals(new int[] {Integer.MIN_VALUE, -1, Integer.MAX_VALUE}, f.ints("i32"));
            assertArrayEquals(new long[] {Integer.MIN_VALUE, -1, Integer.MAX_VALUE}, f.longs("i32"));
            assertArrayEquals(new long[] {Long.MIN_VALUE, 1L << 40}, f.longs("i64"));
            assertEquals(Map.of("format", "pt"), f.metadata());
            for (String name : f.names()) {
                assertEquals(f.info(name).numel() * f.info(name).dtype().byteSize(), f.info(name).byteSize());
            }
        }
    }

    @Test
    void laysOutTensorsByDescendingDtypeThenName() {
        Path file = dir.resolve("order.safetensors");
        List<Entry> entries = new ArrayList<>();
        for (SafetensorsDtype d : SafetensorsDtype.values()) {
            entries.add(Entry.ofBytes("b_" + d, d, new long[] {1}, new byte[d.byteSize()]));
            entries.add(Entry.ofBytes("a_" + d, d, new long[] {1}, new byte[d.byteSize()]));
        }
        SafetensorsWriter.write(file, entries, null);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            // The Rust crate's Dtype order, descending: I64, F32, I32, BF16, F16, I8, U8.
            assertEquals(List.of("a_I64", "b_I64", "a_F32", "b_F32", "a_I32", "b_I32", "a_BF16", "b_BF16",
                    "a_F16", "b_F16", "a_I8", "b_I8", "a_U8", "b_U8"),
                    f.tensors().stream().map(TensorInfo::name).toList());
        }
    }

    @Test
    void namesSortByCodePointNotUtf16Unit() {
        // U+FF61 sorts before U+1F600 by code point (as Rust and Python sort) but after it by UTF-16 unit.
        Path file = dir.resolve("unicode.safetensors");
        String bmp = "\uFF61";
        String astral = new String(Character.toChars(0x1F600));
        SafetensorsWriter.write(file, List.of(
                Entry.ofBytes(astral, SafetensorsDtype.U8, new long[] {1}, new byte[] {2}),
                Entry.ofBytes(bmp, SafetensorsDtype.U8, new long[] {1}, new byte[] {1})), null);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of(bmp, astral), f.tensors().stream().map(TensorInfo::name).toList());
            assertArrayEquals(new int[] {2}, f.ints(astral));
        }
    }

    @Test
    void sourcesRunOnceEachInFileOrderAndMayUseStreams() {
        Path file = dir.resolve("stream.safetensors");
        List<String> calls = new ArrayList<>();
        SafetensorsWriter.ByteSource viaStream = out -> {
            calls.add("s");
            OutputStream os = Channels.newOutputStream(out);
            os.write(RawFiles.littleEndianInts(5, 6));
            os.flush();
        };
        SafetensorsWriter.ByteSource viaChannel = out -> {
            calls.add("l");
            out.write(ByteBuffer.wrap(RawFiles.littleEndianLongs(9)));
        };
        SafetensorsWriter.write(file, List.of(
                new Entry("s", SafetensorsDtype.I32, new long[] {2}, viaStream),
                new Entry("l", SafetensorsDtype.I64, new long[] {1}, viaChannel)), null);
        assertEquals(List.of("l", "s"), calls);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertArrayEquals(new int[] {5, 6}, f.ints("s"));
            assertArrayEquals(new long[] {9}, f.longs("l"));
        }
    }

    @Test
    void copiesTensorsBetweenFilesThroughSegments() {
        Path source = dir.resolve("source.safetensors");
        SafetensorsWriter.write(source, List.of(
                Entry.ofFloats("x", new long[] {3}, new float[] {1, 2, 3}, SafetensorsDtype.BF16)), null);
        Path copy = dir.resolve("copy.safetensors");
        try (SafetensorsFile in = SafetensorsFile.open(source); Arena arena = Arena.ofConfined()) {
            MemorySegment heap = MemorySegment.ofArray(new int[] {7, 8});
            MemorySegment offHeap = arena.allocate(1);
            offHeap.set(ValueLayout.JAVA_BYTE, 0, (byte) 42);
            SafetensorsWriter.write(copy, List.of(
                    Entry.copyOf(in, "x"),
                    Entry.ofSegment("heap", SafetensorsDtype.I32, new long[] {2}, heap),
                    Entry.ofSegment("native", SafetensorsDtype.U8, new long[] {}, offHeap)), null);
        }
        try (SafetensorsFile out = SafetensorsFile.open(copy)) {
            assertArrayEquals(new float[] {1, 2, 3}, out.floats("x"));
            assertEquals(SafetensorsDtype.BF16, out.info("x").dtype());
            assertArrayEquals(new int[] {7, 8}, out.ints("heap"));
            assertArrayEquals(new int[] {42}, out.ints("native"));
        }
    }

    @Test
    void throwingSourceLeavesTheTargetUntouchedAndNoTempFile() throws IOException {
        Path file = dir.resolve("model.safetensors");
        SafetensorsWriter.write(file, List.of(Entry.ofFloats("old", new long[] {1}, new float[] {1}, SafetensorsDtype.F32)), null);
        byte[] before = Files.readAllBytes(file);

        SafetensorsWriter.ByteSource halfThenFail = out -> {
            out.write(ByteBuffer.wrap(new byte[8])); // half of the tensor, so the temp file holds partial data
            throw new IOException("disk on fire");
        };
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsWriter.write(file, List.of(
                Entry.ofFloats("a", new long[] {1}, new float[] {1}, SafetensorsDtype.F32),
                new Entry("new", SafetensorsDtype.F32, new long[] {4}, halfThenFail)), null));
        assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("'new'")
                && e.getMessage().contains("disk on fire"), e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(file));
        assertEquals(List.of("model.safetensors"), listing());

        SafetensorsWriter.ByteSource unchecked = out -> {
            throw new IllegalStateException("bug");
        };
        assertThrows(SafetensorsException.class, () -> SafetensorsWriter.write(file,
                List.of(new Entry("x", SafetensorsDtype.U8, new long[] {1}, unchecked)), null));
        assertArrayEquals(before, Files.readAllBytes(file));
        assertEquals(List.of("model.safetensors"), listing());
    }

    @Test
    void failedFirstWriteLeavesNoFileAtAll() throws IOException {
        Path file = dir.resolve("fresh.safetensors");
        SafetensorsWriter.ByteSource fail = out -> {
            throw new IOException("nope");
        };
        assertThrows(SafetensorsException.class, () -> SafetensorsWriter.write(file,
                List.of(new Entry("x", SafetensorsDtype.U8, new long[] {1}, fail)), null));
        assertEquals(List.of(), listing());
    }

    @Test
    void sourcesMustWriteExactlyTheDeclaredSize() throws IOException {
        Path file = dir.resolve("size.safetensors");
        SafetensorsException shortWrite = assertThrows(SafetensorsException.class, () -> SafetensorsWriter.write(file,
                List.of(new Entry("t", SafetensorsDtype.F32, new long[] {2, 2}, out -> out.write(ByteBuffer.allocate(12)))),
                null));
        assertTrue(shortWrite.getMessage().contains("size.safetensors")
                && shortWrite.getMessage().contains("tensor 't'")
                && shortWrite.getMessage().contains("16 bytes")
                && shortWrite.getMessage().contains("wrote only 12"), shortWrite.getMessage());

        SafetensorsException longWrite = assertThrows(SafetensorsException.class, () -> SafetensorsWriter.write(file,
                List.of(new Entry("t", SafetensorsDtype.F32, new long[] {1}, out -> out.write(ByteBuffer.allocate(5)))),
                null));
        assertTrue(longWrite.getMessage().contains("size.safetensors")
                && longWrite.getMessage().contains("tensor 't'")
                && longWrite.getMessage().contains("tried to write more"), longWrite.getMessage());

        // A source that swallows the overflow error is still caught.
        SafetensorsWriter.ByteSource swallowing = out -> {
            out.write(ByteBuffer.allocate(4));
            try {
                out.write(ByteBuffer.allocate(1));
            } catch (IOException ignored) {
                // pretend nothing happened
            }
        };
        assertThrows(SafetensorsException.class, () -> SafetensorsWriter.write(file,
                List.of(new Entry("t", SafetensorsDtype.F32, new long[] {1}, swallowing)), null));
        assertEquals(List.of(), listing());
    }

    @Test
    void rejectsBadEntries() {
        assertThrows(IllegalArgumentException.class,
                () -> Entry.ofFloats("x", new long[] {3}, new float[2], SafetensorsDtype.F32));
        assertThrows(IllegalArgumentException.class,
                () -> Entry.ofFloats("x", new long[] {2}, new float[2], SafetensorsDtype.I32));
        assertThrows(IllegalArgumentException.class,
                () -> Entry.ofBytes("x", SafetensorsDtype.F16, new long[] {2}, new byte[3]));
        assertThrows(IllegalArgumentException.class,
                () -> Entry.ofBytes("x", SafetensorsDtype.U8, new long[] {-1}, new byte[0]));
        assertThrows(IllegalArgumentException.class,
                () -> Entry.ofBytes("__metadata__", SafetensorsDtype.U8, new long[] {1}, new byte[1]));
        assertThrows(IllegalArgumentException.class,
                () -> Entry.ofBytes("\uD800", SafetensorsDtype.U8, new long[] {1}, new byte[1]));
        assertThrows(IllegalArgumentException.class,
                () -> new Entry("x", SafetensorsDtype.I64, new long[] {1L << 62, 4}, out -> {}));
        Entry a = Entry.ofBytes("dup", SafetensorsDtype.U8, new long[] {1}, new byte[1]);
        assertThrows(IllegalArgumentException.class,
                () -> SafetensorsWriter.write(dir.resolve("dup.safetensors"), List.of(a, a), null));
    }

    @Test
    void callerMetadataJoinsFormat() {
        Path file = dir.resolve("meta.safetensors");
        SafetensorsWriter.write(file, List.of(), Map.of("step", "3"));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(Map.of("format", "pt", "step", "3"), f.metadata());
            assertEquals(List.of(), f.names());
        }
    }
}
