package dev.jtune.data.dataset;

import static dev.jtune.data.dataset.DatasetTestSupport.config;
import static dev.jtune.data.dataset.DatasetTestSupport.dataset;
import static dev.jtune.data.dataset.DatasetTestSupport.rows;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Streaming rows out of .json arrays, .jsonl files and folders, with file and line; file selection and its errors. */
class JsonRowsTest {
    @TempDir
    Path dir;

    private Path write(String name, String text) throws IOException {
        Path p = dir.resolve(name);
        Files.createDirectories(p.getParent());
        Files.writeString(p, text);
        return p;
    }

    private List<Path> files(String yaml) {
        return DatasetFiles.resolve(dataset(config(yaml)), dir);
    }

    @Test
    void jsonArrayElementsCarryTheLineWhereTheyStart() throws IOException {
        Path f = write("a.json", "[\n  {\"text\": \"one\"},\n  {\n    \"text\":\n      \"two\"\n  }, {\"text\": \"three\"}\n]\n");
        List<SourceRow> rows = rows(List.of(f));
        assertEquals(List.of(2L, 3L, 6L), rows.stream().map(SourceRow::line).toList());
        assertEquals(List.of("one", "two", "three"), rows.stream().map(r -> r.value().get("text").asText()).toList());
        assertTrue(rows.stream().allMatch(r -> r.file().equals(f)));
    }

    @Test
    void jsonWithObjectsOneAfterAnotherIsAccepted() throws IOException {
        Path f = write("lines.json", "{\"text\": \"a\"}\n\n{\"text\": \"b\"}\n");
        assertEquals(List.of(1L, 3L), rows(List.of(f)).stream().map(SourceRow::line).toList());
    }

    @Test
    void jsonlSkipsBlankLinesAndCountsThem() throws IOException {
        Path f = write("a.jsonl", "{\"text\": \"a\"}\n\n   \n{\"text\": \"b\"}\n{\"text\": \"c\"}");
        List<SourceRow> rows = rows(List.of(f));
        assertEquals(List.of(1L, 4L, 5L), rows.stream().map(SourceRow::line).toList());
        assertEquals("c", rows.get(2).value().get("text").asText());
    }

    @Test
    void malformedJsonNamesFileAndLine() throws IOException {
        Path l = write("bad.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\",}\n{\"text\": \"c\"}\n");
        DatasetException e = assertThrows(DatasetException.class, () -> rows(List.of(l)));
        assertTrue(e.getMessage().startsWith(l + ":2: malformed JSON"), e.getMessage());
        assertTrue(JsonRows.recoverable(e));
        // after a bad line the next line is still read
        try (JsonRows rows = JsonRows.open(List.of(l))) {
            assertEquals(1, rows.next().line());
            assertThrows(DatasetException.class, rows::next);
            assertEquals(3, rows.next().line());
            assertFalse(rows.hasNext());
        }
        Path j = write("bad.json", "[\n {\"text\": \"a\"},\n {\"text\" \"b\"}\n]");
        e = assertThrows(DatasetException.class, () -> rows(List.of(j)));
        assertTrue(e.getMessage().startsWith(j + ":3: malformed JSON"), e.getMessage());
        assertFalse(JsonRows.recoverable(e));
        Path open = write("open.json", "[\n {\"text\": \"a\"},\n");
        e = assertThrows(DatasetException.class, () -> rows(List.of(open)));
        assertTrue(e.getMessage().startsWith(open.toString()), e.getMessage());
        Path scalar = write("scalar.json", "\n 42");
        e = assertThrows(DatasetException.class, () -> rows(List.of(scalar)));
        assertEquals(scalar + ":2: expected a JSON array of rows, or JSON objects one after another, found 42", e.getMessage());
    }

    @Test
    void folderIsReadRecursivelyInSortedOrderSkippingHiddenAndOtherFiles() throws IOException {
        write("data/b.jsonl", "{\"n\": 2}\n");
        write("data/a.json", "[{\"n\": 1}]");
        write("data/sub/c.jsonl", "{\"n\": 3}\n");
        write("data/.hidden/x.jsonl", "{\"n\": 99}\n");
        write("data/.y.jsonl", "{\"n\": 98}\n");
        write("data/readme.md", "not data");
        List<Path> files = files("datasets:\n  - path: data\n    type: completion\n");
        Path data = dir.resolve("data").toAbsolutePath();
        assertEquals(List.of(data.resolve("a.json"), data.resolve("b.jsonl"), data.resolve("sub/c.jsonl")), files);
        assertEquals(List.of(1, 2, 3), rows(files).stream().map(r -> r.value().get("n").asInt()).toList());
    }

    @Test
    void dataFilesSelectWithinThePath() throws IOException {
        write("data/train-1.jsonl", "{\"n\": 1}\n");
        write("data/train-2.jsonl", "{\"n\": 2}\n");
        write("data/test.jsonl", "{\"n\": 3}\n");
        write("data/extra/e.json", "[{\"n\": 4}]");
        Path data = dir.resolve("data").toAbsolutePath();
        assertEquals(List.of(data.resolve("test.jsonl")),
                files("datasets:\n  - path: data\n    type: completion\n    data_files: test.jsonl\n"));
        assertEquals(List.of(data.resolve("train-1.jsonl"), data.resolve("train-2.jsonl"), data.resolve("extra/e.json")),
                files("datasets:\n  - path: data\n    type: completion\n    data_files: [\"train-*.jsonl\", extra]\n"));
        DatasetException e = assertThrows(DatasetException.class,
                () -> files("datasets:\n  - path: data\n    type: completion\n    data_files: nope.jsonl\n"));
        assertTrue(e.getMessage().contains("data_files entry 'nope.jsonl' does not exist"), e.getMessage());
        e = assertThrows(DatasetException.class,
                () -> files("datasets:\n  - path: data\n    type: completion\n    data_files: \"*.parquet\"\n"));
        assertTrue(e.getMessage().contains("matches no file"), e.getMessage());
    }

    /** name: a Hub dataset's subset is the folder of that name (allenai/c4's en/); one that is not there is named. */
    @Test
    void nameReadsTheSubsetFolder() throws IOException {
        write("hub/en/a.jsonl", "{\"n\": 1}\n");
        write("hub/de/b.jsonl", "{\"n\": 2}\n");
        Path hub = dir.resolve("hub").toAbsolutePath();
        assertEquals(List.of(hub.resolve("de/b.jsonl")), files("datasets:\n  - path: hub\n    type: completion\n    name: de\n"));
        assertEquals(List.of(hub.resolve("de/b.jsonl"), hub.resolve("en/a.jsonl")),
                files("datasets:\n  - path: hub\n    type: completion\n"));
        DatasetException e = assertThrows(DatasetException.class,
                () -> files("datasets:\n  - path: hub\n    type: completion\n    name: fr\n"));
        assertTrue(e.getMessage().contains("name 'fr': no folder"), e.getMessage());
    }

    @Test
    void dsTypeJsonForcesTheParser() throws IOException {
        Path f = write("rows.txt", "[{\"n\": 1}]");
        DatasetException e = assertThrows(DatasetException.class,
                () -> files("datasets:\n  - path: rows.txt\n    type: completion\n"));
        assertTrue(e.getMessage().contains("set ds_type: json"), e.getMessage());
        List<Path> files = files("datasets:\n  - path: rows.txt\n    type: completion\n    ds_type: json\n");
        assertEquals(List.of(f.toAbsolutePath()), files);
        assertEquals(1, rows(files).getFirst().value().get("n").asInt());
        e = assertThrows(DatasetException.class, () -> files("datasets:\n  - path: rows.txt\n    type: completion\n    ds_type: csv\n"));
        assertTrue(e.getMessage().contains("ds_type 'csv' is not supported"), e.getMessage());
    }

    @Test
    void hubIdsAndOtherSplitsAreClearErrors() throws IOException {
        DatasetException e = assertThrows(DatasetException.class,
                () -> files("datasets:\n  - path: tatsu-lab/alpaca\n    type: alpaca\n"));
        assertTrue(e.getMessage().contains("tatsu-lab/alpaca"), e.getMessage());
        assertTrue(e.getMessage().contains("does not download"), e.getMessage());
        assertTrue(e.getMessage().contains("local path"), e.getMessage());
        write("a.jsonl", "{}\n");
        e = assertThrows(DatasetException.class, () -> files("datasets:\n  - path: a.jsonl\n    type: alpaca\n    split: test\n"));
        assertTrue(e.getMessage().contains("split 'test'"), e.getMessage());
        assertEquals(1, files("datasets:\n  - path: a.jsonl\n    type: alpaca\n    split: train\n").size());
    }
}
