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
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Sharded writes as transformers lays them out, and reading model directories back. */
class SafetensorsCheckpointTest {

    @TempDir
    Path dir;

    private static final String SHARD1 = "model-00001-of-00003.safetensors";
    private static final String SHARD2 = "model-00002-of-00003.safetensors";
    private static final String SHARD3 = "model-00003-of-00003.safetensors";

    private static Entry f32(String name, float... values) {
        return Entry.ofFloats(name, new long[] {values.length}, values, SafetensorsDtype.F32);
    }

    /** 16 + 8 + 8 + 4 + 16 = 52 bytes; with a 24-byte limit: [embed, l0], [l1, norm], [head]. */
    private static List<Entry> model() {
        return List.of(
                f32("embed", 1, 2, 3, 4),
                f32("l0", 5, 6),
                f32("l1", 7, 8),
                f32("norm", 9),
                f32("head", 10, 11, 12, 13));
    }

    private List<String> listing() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static void assertMessage(SafetensorsException e, String... fragments) {
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "mentions '" + f + "': " + e.getMessage());
        }
    }

    @Test
    void everythingFittingInOneShardIsASingleFile() throws IOException {
        SafetensorsWriter.writeSharded(dir, "model", model(), 52, Map.of("step", "1"));
        assertEquals(List.of("model.safetensors"), listing());
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            assertEquals(List.of("embed", "head", "l0", "l1", "norm"), ckpt.names());
            assertArrayEquals(new float[] {10, 11, 12, 13}, ckpt.floats("head"));
            assertEquals(dir.resolve("model.safetensors"), ckpt.file("l1").path());
            assertEquals(Map.of("format", "pt", "step", "1"), ckpt.file("l1").metadata());
            assertEquals(1, ckpt.files().size());
        }
    }

    @Test
    void shardedWriteReadsBackThroughTheIndex() throws IOException {
        SafetensorsWriter.writeSharded(dir, "model", model(), 24, null);
        assertEquals(List.of("model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                "model-00003-of-00003.safetensors", "model.safetensors.index.json"), listing());
        // Exactly json.dumps(index, indent=2, sort_keys=True) + "\n".
        String expectedIndex = """
                {
                  "metadata": {
                    "total_size": 52
                  },
                  "weight_map": {
                    "embed": "model-00001-of-00003.safetensors",
                    "head": "model-00003-of-00003.safetensors",
                    "l0": "model-00001-of-00003.safetensors",
                    "l1": "model-00002-of-00003.safetensors",
                    "norm": "model-00002-of-00003.safetensors"
                  }
                }
                """;
        assertEquals(expectedIndex, Files.readString(dir.resolve("model.safetensors.index.json")));

        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            assertEquals(List.of("embed", "head", "l0", "l1", "norm"), ckpt.names());
            assertEquals(3, ckpt.files().size());
            Map<String, String> shardOf = new TreeMap<>();
            for (String name : ckpt.names()) {
                shardOf.put(name, ckpt.file(name).path().getFileName().toString());
            }
            assertEquals(Map.of("embed", SHARD1, "l0", SHARD1, "l1", SHARD2, "norm", SHARD2, "head", SHARD3), shardOf);
            assertArrayEquals(new float[] {1, 2, 3, 4}, ckpt.floats("embed"));
            assertArrayEquals(new float[] {7, 8}, ckpt.floats("l1"));
            assertArrayEquals(new float[] {9}, ckpt.floats("norm"));
            assertEquals(4, ckpt.segment("norm").byteSize());
            assertEquals(new TensorInfo("l0", SafetensorsDtype.F32, new long[] {2}, 16, 24), ckpt.info("l0"));
            assertTrue(ckpt.contains("head"));
            assertFalse(ckpt.contains("lm_head"));
            assertEquals(Map.of("format", "pt"), ckpt.file("head").metadata());
        }
    }

    @Test
    void shardPlanMatchesHuggingFace() {
        // huggingface_hub's documented example: [6, 6, 2, 6, 2, 2] with a limit of 10 -> [6], [6+2], [6+2+2].
        List<Entry> entries = new ArrayList<>();
        int[] sizes = {6, 6, 2, 6, 2, 2};
        for (int i = 0; i < sizes.length; i++) {
            entries.add(Entry.ofBytes("t" + i, SafetensorsDtype.U8, new long[] {sizes[i]}, new byte[sizes[i]]));
        }
        assertEquals(List.of(List.of("t0"), List.of("t1", "t2"), List.of("t3", "t4", "t5")), names(
                SafetensorsWriter.planShards(entries, 10)));

        // An oversized tensor is emitted on its own at once, ahead of the shard still being filled.
        List<Entry> oversized = List.of(
                Entry.ofBytes("small", SafetensorsDtype.U8, new long[] {2}, new byte[2]),
                Entry.ofBytes("big", SafetensorsDtype.U8, new long[] {12}, new byte[12]),
                Entry.ofBytes("tail", SafetensorsDtype.U8, new long[] {3}, new byte[3]));
        assertEquals(List.of(List.of("big"), List.of("small", "tail")), names(
                SafetensorsWriter.planShards(oversized, 10)));
        assertEquals(List.of(), SafetensorsWriter.planShards(List.of(), 10));
    }

    private static List<List<String>> names(List<List<Entry>> shards) {
        return shards.stream().map(s -> s.stream().map(Entry::name).toList()).toList();
    }

    @Test
    void indexEscapesLikePythonJson() {
        Map<String, String> map = new TreeMap<>(JsonText.CODE_POINT_ORDER);
        map.put("caf\u00e9\u007f\"", "m-1.safetensors");
        map.put(new String(Character.toChars(0x1F600)), "m-2.safetensors");
        String expected = "{\n  \"metadata\": {\n    \"total_size\": 7\n  },\n  \"weight_map\": {\n"
                + "    \"caf\\u00e9\\u007f\\\"\": \"m-1.safetensors\",\n"
                + "    \"\\ud83d\\ude00\": \"m-2.safetensors\"\n  }\n}\n";
        assertEquals(expected, SafetensorsWriter.indexJson(7, map));
    }

    @Test
    void rewritingDeletesStaleFilesOfTheEarlierSave() throws IOException {
        Files.writeString(dir.resolve("config.json"), "{}");
        SafetensorsWriter.writeSharded(dir, "model", model(), 24, null);
        // Two shards now: the three-shard files and nothing else of ours may remain.
        SafetensorsWriter.writeSharded(dir, "model", model(), 40, null);
        assertEquals(List.of("config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                "model.safetensors.index.json"), listing());
        SafetensorsWriter.writeSharded(dir, "model", model(), 1000, null);
        assertEquals(List.of("config.json", "model.safetensors"), listing());
        SafetensorsWriter.writeSharded(dir, "model", model(), 24, null);
        assertFalse(Files.exists(dir.resolve("model.safetensors")));
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            assertEquals(3, ckpt.files().size());
        }
    }

    @Test
    void indexNamingAMissingShard() throws IOException {
        SafetensorsWriter.writeSharded(dir, "model", model(), 24, null);
        Files.delete(dir.resolve(SHARD2));
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsCheckpoint.open(dir));
        assertMessage(e, "model.safetensors.index.json", SHARD2, "does not exist", "'l1'", dir.toString());
    }

    @Test
    void indexPuttingATensorInTheWrongShard() throws IOException {
        SafetensorsWriter.writeSharded(dir, "model", model(), 24, null);
        Path index = dir.resolve("model.safetensors.index.json");
        Files.writeString(index, Files.readString(index).replace("\"head\": \"" + SHARD3, "\"head\": \"" + SHARD1));
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsCheckpoint.open(dir));
        assertMessage(e, "model.safetensors.index.json", "'head'", SHARD1, "has no such tensor");
    }

    @Test
    void indexPointingOutsideTheDirectory() throws IOException {
        Files.writeString(dir.resolve("model.safetensors.index.json"),
                "{\"weight_map\": {\"w\": \"../elsewhere.safetensors\"}}");
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsCheckpoint.open(dir));
        assertMessage(e, "model.safetensors.index.json", "'w'", "outside");
    }

    @Test
    void malformedIndex() throws IOException {
        Path index = dir.resolve("model.safetensors.index.json");
        Files.writeString(index, "{\"weight_map\": ");
        assertMessage(assertThrows(SafetensorsException.class, () -> SafetensorsCheckpoint.open(dir)),
                "model.safetensors.index.json", "not valid JSON");
        Files.writeString(index, "{\"metadata\": {\"total_size\": 0}}");
        assertMessage(assertThrows(SafetensorsException.class, () -> SafetensorsCheckpoint.open(dir)),
                "model.safetensors.index.json", "weight_map is missing");
        Files.writeString(index, "{\"weight_map\": {\"w\": 3}}");
        assertMessage(assertThrows(SafetensorsException.class, () -> SafetensorsCheckpoint.open(dir)),
                "model.safetensors.index.json", "'w'", "not a file name");
    }

    @Test
    void corruptShardIsNamed() throws IOException {
        SafetensorsWriter.writeSharded(dir, "model", model(), 24, null);
        try (FileChannel ch = FileChannel.open(dir.resolve(SHARD3), StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() - 4);
        }
        assertMessage(assertThrows(SafetensorsException.class, () -> SafetensorsCheckpoint.open(dir)),
                SHARD3, "truncated");
    }

    @Test
    void directoryWithoutACheckpoint() throws IOException {
        Files.writeString(dir.resolve("config.json"), "{}");
        assertMessage(assertThrows(SafetensorsException.class, () -> SafetensorsCheckpoint.open(dir)),
                dir.toString(), "model.safetensors", "model.safetensors.index.json");
        assertMessage(assertThrows(SafetensorsException.class,
                () -> SafetensorsCheckpoint.open(dir.resolve("config.json"))), "config.json", "not a directory");
    }

    @Test
    void singleFileWinsOverAnIndexAsInTransformers() throws IOException {
        SafetensorsWriter.writeSharded(dir, "model", model(), 24, null);
        SafetensorsWriter.write(dir.resolve("model.safetensors"), List.of(f32("only", 1)), null);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            assertEquals(List.of("only"), ckpt.names());
        }
    }

    @Test
    void missingTensorNamesTheDirectory() {
        SafetensorsWriter.writeSharded(dir, "model", model(), 24, null);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> ckpt.floats("lm_head"));
            assertMessage(e, dir.toString(), "no tensor named 'lm_head'");
            assertThrows(SafetensorsException.class, () -> ckpt.info("lm_head"));
            assertThrows(SafetensorsException.class, () -> ckpt.segment("lm_head"));
        }
    }

    @Test
    void closeClosesEveryShard() {
        SafetensorsWriter.writeSharded(dir, "model", model(), 24, null);
        List<MemorySegment> segments = new ArrayList<>();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            for (String name : List.of("embed", "l1", "head")) {
                segments.add(ckpt.segment(name));
            }
            assertEquals(1f, segments.getFirst().get(ValueLayout.JAVA_FLOAT_UNALIGNED, 0));
        }
        for (MemorySegment s : segments) {
            assertThrows(IllegalStateException.class, () -> s.get(ValueLayout.JAVA_BYTE, 0));
        }
    }

    @Test
    void rejectsBadShardArguments() {
        assertThrows(IllegalArgumentException.class, () -> SafetensorsWriter.writeSharded(dir, "model", model(), 0, null));
        assertThrows(IllegalArgumentException.class, () -> SafetensorsWriter.writeSharded(dir, "a/b", model(), 10, null));
    }
}
