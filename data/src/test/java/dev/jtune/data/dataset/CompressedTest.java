package dev.jtune.data.dataset;

import static dev.jtune.data.dataset.DatasetTestSupport.config;
import static dev.jtune.data.dataset.DatasetTestSupport.dataset;
import static dev.jtune.data.dataset.DatasetTestSupport.rows;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Data files compressed by the reference tools (test resources compressed/, see its README) read as the plain file. */
class CompressedTest {
    private static final Path DIR = Path.of("src/test/resources/compressed");

    @TempDir
    Path tmp;

    private static List<String> texts(Path file) {
        return rows(List.of(file)).stream().map(r -> r.value().get("text").asText()).toList();
    }

    @Test
    void eachFormatReadsAsThePlainFile() {
        List<String> plain = texts(DIR.resolve("rows.jsonl"));
        assertEquals(List.of("row 0", "row 1 \u00e9t\u00e9", "row 2", "row 3", "row 4"), plain);
        List<Long> lines = rows(List.of(DIR.resolve("rows.jsonl"))).stream().map(SourceRow::line).toList();
        for (String suffix : List.of(".gz", ".bz2", ".xz", ".zst")) {
            Path file = DIR.resolve("rows.jsonl" + suffix);
            assertEquals(plain, texts(file), suffix);
            assertEquals(lines, rows(List.of(file)).stream().map(SourceRow::line).toList(), suffix + ": line numbers");
            // Concatenated members/streams/frames are read through, as Python's modules do.
            assertEquals(plain, texts(DIR.resolve("multi.jsonl" + suffix)), "multi" + suffix);
        }
        assertEquals(List.of("a", "b"), texts(DIR.resolve("array.json.zst")));
    }

    @Test
    void theNameWithoutItsSuffixTellsTheFormatAndFoldersFindThem() throws IOException {
        Path data = tmp.resolve("data");
        Files.createDirectories(data);
        Files.copy(DIR.resolve("rows.jsonl.zst"), data.resolve("a.jsonl.zst"));
        Files.copy(DIR.resolve("array.json.zst"), data.resolve("b.json.zst"));
        Files.writeString(data.resolve("notes.txt.gz"), "not data");
        var ds = dataset(config("datasets:\n  - {path: data, type: completion}\n"));
        List<Path> files = DatasetFiles.resolve(ds, tmp);
        assertEquals(List.of(data.resolve("a.jsonl.zst").toAbsolutePath(), data.resolve("b.json.zst").toAbsolutePath()),
                files);
        assertEquals(7, rows(files).size());
        // A single compressed file given as path, and the slice of it.
        var one = dataset(config("datasets:\n  - {path: data/a.jsonl.zst, type: completion, split: 'train[-40%:]'}\n"));
        try (SlicedRows rows = SlicedRows.open(DatasetFiles.resolve(one, tmp), one.splitSpec())) {
            assertEquals("row 3", rows.next().value().get("text").asText());
            assertEquals("row 4", rows.next().value().get("text").asText());
            assertTrue(!rows.hasNext());
        }
    }

    @Test
    void archivesAreRefusedWithTheReason() throws IOException {
        Path zip = tmp.resolve("rows.jsonl");
        Files.write(zip, new byte[] {'P', 'K', 3, 4, 0, 0, 0, 0});
        var e = assertThrows(DatasetException.class, () -> rows(List.of(zip)));
        assertTrue(e.getMessage().contains("a zip file: jtune reads data files compressed whole"), e.getMessage());
        Path broken = tmp.resolve("broken.jsonl.gz");
        byte[] gz = Files.readAllBytes(DIR.resolve("rows.jsonl.gz"));
        Files.write(broken, java.util.Arrays.copyOf(gz, gz.length / 2));
        var e2 = assertThrows(DatasetException.class, () -> rows(List.of(broken)));
        assertTrue(e2.getMessage().contains("broken.jsonl.gz"), e2.getMessage());
    }
}
