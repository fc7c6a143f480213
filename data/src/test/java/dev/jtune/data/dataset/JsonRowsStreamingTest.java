package dev.jtune.data.dataset;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Files several times larger than the heap are read: a child JVM with {@code -Xmx32m} counts the rows of a
 * ~100 MB JSON array and a ~100 MB JSON-lines file. Reading either whole would need far more than 32 MB.
 */
class JsonRowsStreamingTest {
    private static final int ROWS = 100_000;
    private static final int TEXT = 1000;

    @Test
    void filesMuchLargerThanTheHeapAreStreamed(@TempDir Path dir) throws Exception {
        String text = "x".repeat(TEXT - 6);
        Path array = dir.resolve("big.json");
        Path lines = dir.resolve("big.jsonl");
        try (BufferedWriter a = Files.newBufferedWriter(array, StandardCharsets.UTF_8);
                BufferedWriter l = Files.newBufferedWriter(lines, StandardCharsets.UTF_8)) {
            a.write("[\n");
            for (int i = 0; i < ROWS; i++) {
                String row = "{\"id\": " + i + ", \"text\": \"" + String.format("%06d", i) + text + "\"}";
                a.write(row);
                a.write(i + 1 < ROWS ? ",\n" : "\n");
                l.write(row);
                l.write('\n');
            }
            a.write("]\n");
        }
        assertTrue(Files.size(array) > 90_000_000L, "array file is ~100 MB");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(java.toString(), "-Xmx32m", "-cp", System.getProperty("java.class.path"),
                StreamingProbe.class.getName(), array.toString(), lines.toString())
                .redirectErrorStream(true)
                .start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(10, TimeUnit.MINUTES), "child finished"); // its output ended: only a hang guard
        assertEquals(0, p.exitValue(), out);
        long chars = (long) ROWS * TEXT;
        assertEquals(List.of(ROWS + " " + chars, ROWS + " " + chars), out.strip().lines().toList(), out);
    }
}
