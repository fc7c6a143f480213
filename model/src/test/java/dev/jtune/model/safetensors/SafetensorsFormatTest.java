package dev.jtune.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.model.safetensors.SafetensorsWriter.Entry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Pins the on-disk bytes, so that a change to the format shows up as a failure rather than as an unloadable file. */
class SafetensorsFormatTest {

    @TempDir
    Path dir;

    @Test
    void tinyFileHasExactlyTheHandComputedBytes() throws IOException {
        Path file = dir.resolve("tiny.safetensors");
        // Given in an order unlike the file's: the writer sorts by dtype (I64 > F32 > BF16), then by name.
        SafetensorsWriter.write(file, List.of(
                Entry.ofFloats("w", new long[] {2}, new float[] {1.0f, -2.0f}, SafetensorsDtype.F32),
                Entry.ofFloats("h", new long[] {1}, new float[] {1.0f}, SafetensorsDtype.BF16),
                Entry.ofBytes("idx", SafetensorsDtype.I64, new long[] {1}, new byte[] {7, 0, 0, 0, 0, 0, 0, 0}),
                Entry.ofFloats("a", new long[] {1}, new float[] {2.0f}, SafetensorsDtype.BF16)), null);

        String json = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"idx\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                + "\"a\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[16,18]},"
                + "\"h\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[18,20]}}";
        assertEquals(253, json.length()); // counted by hand: 253 = 31 * 8 + 5, so 3 spaces pad it to 256
        ByteArrayOutputStream expected = new ByteArrayOutputStream();
        expected.write(new byte[] {0, 1, 0, 0, 0, 0, 0, 0}); // 256, little-endian
        expected.write((json + "   ").getBytes(StandardCharsets.US_ASCII));
        expected.write(new byte[] {7, 0, 0, 0, 0, 0, 0, 0}); // idx: I64 7
        expected.write(new byte[] {0, 0, (byte) 0x80, 0x3F}); // w[0]: F32 1.0 = 0x3F800000
        expected.write(new byte[] {0, 0, 0, (byte) 0xC0}); // w[1]: F32 -2.0 = 0xC0000000
        expected.write(new byte[] {0x00, 0x40}); // a: BF16 2.0 = 0x4000
        expected.write(new byte[] {(byte) 0x80, 0x3F}); // h: BF16 1.0 = 0x3F80

        assertArrayEquals(expected.toByteArray(), Files.readAllBytes(file));
        assertEquals(284, Files.size(file));
    }

    @Test
    void scalarAndCallerMetadataAndEscapes() throws IOException {
        Path file = dir.resolve("scalar.safetensors");
        SafetensorsWriter.write(file,
                List.of(Entry.ofFloats("x\"\n", new long[] {}, new float[] {0.5f}, SafetensorsDtype.F32)),
                Map.of("step", "10", "note", "é"));
        byte[] all = Files.readAllBytes(file);
        // Keys sorted; quote and newline escaped as serde_json escapes them; non-ASCII left as raw UTF-8.
        String json = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"é\",\"step\":\"10\"},"
                + "\"x\\\"\\n\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}";
        byte[] jsonBytes = json.getBytes(StandardCharsets.UTF_8);
        assertEquals(112, jsonBytes.length); // 112 is a multiple of 8: no padding
        assertEquals(112, all[0]);
        assertEquals(new String(jsonBytes, StandardCharsets.UTF_8),
                new String(all, 8, 112, StandardCharsets.UTF_8));
        assertArrayEquals(new byte[] {0, 0, 0, 0x3F}, java.util.Arrays.copyOfRange(all, 120, 124));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(Map.of("format", "pt", "note", "é", "step", "10"), f.metadata());
            assertArrayEquals(new float[] {0.5f}, f.floats("x\"\n"));
            assertEquals(0, f.info("x\"\n").rank());
        }
    }

    @Test
    void everyHeaderIsPaddedToAMultipleOfEight() throws IOException {
        for (int len = 1; len <= 16; len++) {
            Path file = dir.resolve("pad" + len + ".safetensors");
            String name = "n".repeat(len);
            SafetensorsWriter.write(file, List.of(Entry.ofBytes(name, SafetensorsDtype.U8, new long[] {1},
                    new byte[] {1})), null);
            byte[] all = Files.readAllBytes(file);
            long n = java.nio.ByteBuffer.wrap(all, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
            assertEquals(0, n % 8, "header length for name length " + len);
            String header = new String(all, 8, (int) n, StandardCharsets.UTF_8);
            String json = header.stripTrailing();
            assertEquals('}', json.charAt(json.length() - 1));
            assertEquals(" ".repeat(header.length() - json.length()), header.substring(json.length()));
            assertTrue(header.length() - json.length() < 8, "padding is minimal");
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                assertArrayEquals(new int[] {1}, f.ints(name));
            }
        }
    }

    @Test
    void readsTheRustCrateTestVector() {
        // safetensors' own test_serialization output: "attn.0", F32 [1, 2, 3] holding 0..5, no metadata.
        byte[] bytes = {
            64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101,
            34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34,
            100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0,
            0, 0, 0, 0, (byte) 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, (byte) 128, 64, 0, 0, (byte) 160, 64
        };
        Path file = dir.resolve("rust.safetensors");
        try {
            Files.write(file, bytes);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of("attn.0"), f.names());
            assertArrayEquals(new long[] {1, 2, 3}, f.info("attn.0").shape());
            assertArrayEquals(new float[] {0, 1, 2, 3, 4, 5}, f.floats("attn.0"));
            assertEquals(Map.of(), f.metadata());
        }
    }

    @Test
    void readsAnEmptyFile() throws IOException {
        // The Rust crate's serialization of no tensors: "{}" padded with six spaces.
        Path file = dir.resolve("empty.safetensors");
        Files.write(file, new byte[] {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '});
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of(), f.names());
        }
    }
}
