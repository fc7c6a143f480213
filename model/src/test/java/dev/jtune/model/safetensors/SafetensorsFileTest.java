package dev.jtune.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.model.safetensors.SafetensorsWriter.Entry;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Header validation and typed access; every rejection must name the file and the problem. */
class SafetensorsFileTest {

    @TempDir
    Path dir;

    private static final String F32_2 = "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":";

    private static SafetensorsException assertRejected(Path file, String... fragments) {
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(file).close());
        assertMessage(e, file, fragments);
        return e;
    }

    private static void assertMessage(SafetensorsException e, Path file, String... fragments) {
        String message = e.getMessage();
        assertTrue(message.contains(file.getFileName().toString()), "names the file: " + message);
        for (String f : fragments) {
            assertTrue(message.contains(f), "mentions '" + f + "': " + message);
        }
    }

    private Path validFile(String name) {
        Path file = dir.resolve(name);
        SafetensorsWriter.write(file, List.of(
                Entry.ofFloats("a", new long[] {2}, new float[] {1, 2}, SafetensorsDtype.F32),
                Entry.ofFloats("b", new long[] {3}, new float[] {3, 4, 5}, SafetensorsDtype.F32)), null);
        return file;
    }

    @Test
    void truncatedFile() throws IOException {
        Path file = validFile("cut.safetensors");
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() - 1);
        }
        assertRejected(file, "truncated", "20 bytes of tensor data", "only 19");
    }

    @Test
    void trailingBytesAfterTheData() throws IOException {
        Path file = validFile("long.safetensors");
        Files.write(file, new byte[] {0}, StandardOpenOption.APPEND);
        assertRejected(file, "1 unexpected trailing bytes");
    }

    @Test
    void fileShorterThanTheLengthPrefix() throws IOException {
        Path file = Files.write(dir.resolve("tiny.safetensors"), new byte[] {1, 2, 3});
        assertRejected(file, "3 bytes", "too short");
        assertRejected(Files.write(dir.resolve("zero.safetensors"), new byte[0]), "0 bytes", "too short");
    }

    @Test
    void headerLengthPastTheEndOfTheFile() {
        Path file = RawFiles.writeWithLength(dir.resolve("past.safetensors"), 1000, "{}".getBytes(), new byte[0]);
        assertRejected(file, "header length 1000", "runs past the end", "truncated");
    }

    @Test
    void headerLengthOverTheLimit() {
        Path file = RawFiles.writeWithLength(dir.resolve("huge.safetensors"), 100_000_001L, "{}".getBytes(),
                new byte[0]);
        assertRejected(file, "header length 100000001", "exceeds the limit");
        // The length is a u64: all ones is 2^64 - 1, not -1.
        Path wrapped = RawFiles.writeWithLength(dir.resolve("neg.safetensors"), -1L, "{}".getBytes(), new byte[0]);
        assertRejected(wrapped, "18446744073709551615", "exceeds the limit");
    }

    @Test
    void headerThatIsNotJson() {
        assertRejected(RawFiles.write(dir.resolve("text.safetensors"), "hello, world", new byte[0]),
                "not valid JSON");
        assertRejected(RawFiles.write(dir.resolve("empty.safetensors"), "", new byte[0]), "not valid JSON");
        assertRejected(RawFiles.write(dir.resolve("trailing.safetensors"), "{} {}", new byte[0]), "not valid JSON");
        assertRejected(RawFiles.write(dir.resolve("nul.safetensors"), "{}\0\0\0\0\0\0", new byte[0]),
                "not valid JSON");
    }

    @Test
    void headerThatIsNotAnObject() {
        assertRejected(RawFiles.write(dir.resolve("array.safetensors"), "[]      ", new byte[0]),
                "not a JSON object");
    }

    @Test
    void headerThatIsNotUtf8() {
        byte[] header = {'{', '"', (byte) 0xC3, '"', ':', '1', '}'};
        assertRejected(RawFiles.write(dir.resolve("latin1.safetensors"), header, new byte[0]), "not valid UTF-8");
    }

    @Test
    void overlappingTensors() {
        String header = "{\"a\":" + F32_2 + "[0,8]},\"b\":" + F32_2 + "[4,12]}}";
        Path file = RawFiles.write(dir.resolve("overlap.safetensors"), header, new byte[12]);
        assertRejected(file, "tensor 'b'", "[4, 12]", "overlap tensor 'a'", "ends at 8");
    }

    @Test
    void gapBetweenTensors() {
        String header = "{\"a\":" + F32_2 + "[0,8]},\"b\":" + F32_2 + "[12,20]}}";
        Path file = RawFiles.write(dir.resolve("gap.safetensors"), header, new byte[20]);
        assertRejected(file, "gap", "[8, 12)", "'b'");
    }

    @Test
    void dataThatDoesNotStartAtZero() {
        String header = "{\"a\":" + F32_2 + "[4,12]}}";
        assertRejected(RawFiles.write(dir.resolve("late.safetensors"), header, new byte[12]), "gap", "[0, 4)");
    }

    @Test
    void offsetsThatEndBeforeTheyBegin() {
        String header = "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,4]}}";
        assertRejected(RawFiles.write(dir.resolve("backwards.safetensors"), header, new byte[8]),
                "tensor 'a'", "end before they begin");
    }

    @Test
    void byteSizeThatDoesNotMatchTheShape() {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}";
        assertRejected(RawFiles.write(dir.resolve("size.safetensors"), header, new byte[8]),
                "tensor 'a'", "F32 [3]", "needs 12 bytes", "span 8 bytes");
    }

    @Test
    void shapeWhoseSizeOverflows() {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}";
        assertRejected(RawFiles.write(dir.resolve("overflow.safetensors"), header, new byte[8]),
                "tensor 'a'", "overflows");
    }

    @Test
    void unknownDtype() {
        String header = "{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}";
        assertRejected(RawFiles.write(dir.resolve("f64.safetensors"), header, new byte[8]),
                "tensor 'w'", "unknown or unsupported dtype 'F64'");
        String lower = "{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        assertRejected(RawFiles.write(dir.resolve("lower.safetensors"), lower, new byte[4]), "'f32'");
    }

    @Test
    void malformedEntries() {
        Consumer<String[]> check = args -> assertRejected(
                RawFiles.write(dir.resolve(args[0] + ".safetensors"), args[1], new byte[8]), args[2], "tensor 'a'");
        check.accept(new String[] {"nooffsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "lacks data_offsets"});
        check.accept(new String[] {"nodtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "lacks dtype"});
        check.accept(new String[] {"noshape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", "lacks shape"});
        check.accept(new String[] {"floatdim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}",
            "shape holds 2.0"});
        check.accept(new String[] {"negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}",
            "data_offsets holds -8"});
        check.accept(new String[] {"three", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}",
            "two integers"});
        check.accept(new String[] {"notobject", "{\"a\":[1]}", "not a JSON object"});
        check.accept(new String[] {"dtypenum", "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}",
            "dtype is not a string"});
    }

    @Test
    void metadataMustMapStringsToStrings() {
        String header = "{\"__metadata__\":{\"step\":10}}";
        assertRejected(RawFiles.write(dir.resolve("meta.safetensors"), header, new byte[0]),
                "__metadata__", "'step'", "not a string");
        String array = "{\"__metadata__\":[]}";
        assertRejected(RawFiles.write(dir.resolve("meta2.safetensors"), array, new byte[0]), "__metadata__");
    }

    @Test
    void missingTensor() {
        Path file = validFile("two.safetensors");
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertFalse(f.contains("c"));
            assertMessage(assertThrows(SafetensorsException.class, () -> f.info("c")), file, "no tensor named 'c'");
            assertMessage(assertThrows(SafetensorsException.class, () -> f.floats("c")), file, "'c'");
            assertMessage(assertThrows(SafetensorsException.class, () -> f.segment("c")), file, "'c'");
        }
    }

    @Test
    void missingFileAndDirectory() {
        assertRejected(dir.resolve("absent.safetensors"), "no such file");
        Path sub = dir.resolve("sub.safetensors");
        sub.toFile().mkdir();
        assertRejected(sub, "is a directory");
    }

    @Test
    void acceptsAnyEntryOrderZeroSizeTensorsAndExtraFields() {
        // Entries listed out of offset order, an empty tensor at offset 0, and an unknown field: all valid.
        String header = "{\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                + "\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
                + "\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":true}}";
        byte[] data = RawFiles.littleEndianInts(11, 22);
        try (SafetensorsFile f = SafetensorsFile.open(RawFiles.write(dir.resolve("order.safetensors"), header, data))) {
            assertEquals(List.of("a", "b", "z"), f.names());
            assertEquals(List.of("z", "a", "b"), f.tensors().stream().map(TensorInfo::name).toList());
            assertArrayEquals(new int[] {11}, f.ints("a"));
            assertArrayEquals(new int[] {22}, f.ints("b"));
            assertArrayEquals(new float[0], f.floats("z"));
            assertEquals(0, f.info("z").numel());
            assertEquals(new TensorInfo("b", SafetensorsDtype.I32, new long[] {1}, 4, 8), f.info("b"));
        }
    }

    @Test
    void repeatedKeyLastOneWinsAsInSerde() {
        String header = "{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        Path file = RawFiles.write(dir.resolve("repeat.safetensors"), header, RawFiles.littleEndianFloats(1.5f));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of("a"), f.names());
            assertArrayEquals(new float[] {1.5f}, f.floats("a"));
        }
    }

    @Test
    void typedAccessors() {
        String header = "{\"u\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                + "\"i\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[2,4]},"
                + "\"f\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
        byte[] data = {(byte) 255, 1, (byte) -1, 2, 0, 0, (byte) 0x80, 0x3F};
        Path file = RawFiles.write(dir.resolve("typed.safetensors"), header, data);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertArrayEquals(new int[] {255, 1}, f.ints("u"));
            assertArrayEquals(new int[] {-1, 2}, f.ints("i"));
            assertArrayEquals(new long[] {255, 1}, f.longs("u"));
            assertArrayEquals(new long[] {-1, 2}, f.longs("i"));
            assertArrayEquals(new byte[] {0, 0, (byte) 0x80, 0x3F}, f.bytes("f"));
            assertMessage(assertThrows(SafetensorsException.class, () -> f.floats("u")), file, "'u' is U8");
            assertMessage(assertThrows(SafetensorsException.class, () -> f.ints("f")), file, "'f' is F32");
            assertMessage(assertThrows(SafetensorsException.class, () -> f.longs("f")), file, "'f' is F32");
        }
    }

    @Test
    void segmentsAreReadOnlyViewsThatDieWithTheFile() {
        Path file = validFile("view.safetensors");
        MemorySegment b;
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            b = f.segment("b");
            assertEquals(12, b.byteSize());
            assertTrue(b.isReadOnly());
            assertEquals(3f, b.get(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 0));
            assertEquals(file, f.path());
        }
        MemorySegment closed = b;
        assertThrows(IllegalStateException.class, () -> closed.get(ValueLayout.JAVA_BYTE, 0));
    }
}
