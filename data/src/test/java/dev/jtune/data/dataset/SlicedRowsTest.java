package dev.jtune.data.dataset;

import static dev.jtune.data.dataset.DatasetTestSupport.config;
import static dev.jtune.data.dataset.DatasetTestSupport.dataset;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** split: slices select the rows datasets would, over every file of the entry, in the instructions' order. */
class SlicedRowsTest {
    @TempDir
    Path dir;

    /** Rows 0..n-1 as {"text": "rI"}, split over two files so slices cross a file boundary. */
    private void rows(int n) throws IOException {
        StringBuilder a = new StringBuilder();
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n; i++) (i < n / 2 ? a : b).append("{\"text\": \"r").append(i).append("\"}\n");
        Files.writeString(dir.resolve("a.jsonl"), a);
        Files.writeString(dir.resolve("b.jsonl"), b);
    }

    private List<String> read(String split) {
        var ds = dataset(config("datasets:\n  - {path: ., type: completion, split: '" + split + "'}\n"));
        List<String> out = new ArrayList<>();
        try (SlicedRows rows = SlicedRows.open(DatasetFiles.resolve(ds, dir), ds.splitSpec())) {
            rows.forEachRemaining(r -> out.add(r.value().get("text").asText()));
        }
        return out;
    }

    @Test
    void aSliceReadsFewerRows() throws IOException {
        rows(30);
        assertEquals(30, read("train").size());
        assertEquals(List.of("r0", "r1", "r2", "r3", "r4", "r5"), read("train[:20%]"));
        assertEquals(List.of("r10", "r11", "r12", "r13", "r14", "r15", "r16"), read("train[10:17]"));
        assertEquals(List.of("r27", "r28", "r29"), read("train[-10%:]"));
        // Joined slices come in the order given, the second from the end of the second file.
        assertEquals(List.of("r0", "r1", "r2", "r28", "r29"), read("train[:10%]+train[-5%:]"));
        assertEquals(List.of("r28", "r29", "r0", "r1", "r2"), read("train[-5%:]+train[:10%]"));
        assertEquals(List.of(), read("train[5:2]"));
    }

    /** Rows and malformed lines ("!bad") a slice yields, read as DatasetReader does with skip_invalid. */
    private List<String> readSkipping(String file, String split) {
        var ds = dataset(config("datasets:\n  - {path: " + file + ", type: completion, split: '" + split + "'}\n"));
        List<String> out = new ArrayList<>();
        try (SlicedRows rows = SlicedRows.open(DatasetFiles.resolve(ds, dir), ds.splitSpec())) {
            while (true) {
                try {
                    if (!rows.hasNext()) return out;
                    out.add(rows.next().value().get("text").asText());
                } catch (DatasetException e) {
                    assertTrue(SlicedRows.recoverable(e), e.getMessage());
                    out.add("!bad");
                }
            }
        }
    }

    @Test
    void aMalformedLineIsARowOfItsSlice() throws IOException {
        Files.writeString(dir.resolve("a.jsonl"), "{\"text\": \"r0\"}\n{bad\n{\"text\": \"r2\"}\n{\"text\": \"r3\"}\n");
        assertEquals(List.of("r0", "!bad"), readSkipping("a.jsonl", "train[:2]"));
        assertEquals(List.of("r2", "r3"), readSkipping("a.jsonl", "train[2:]"));
        assertEquals(List.of("!bad", "r2"), readSkipping("a.jsonl", "train[25%:75%]"));
    }

    @Test
    void anotherSplitNameIsStillAnError() throws IOException {
        rows(4);
        var e = assertThrows(DatasetException.class, () -> read("train[:50%]+test"));
        assertTrue(e.getMessage().contains("split 'test' does not exist"), e.getMessage());
    }
}
