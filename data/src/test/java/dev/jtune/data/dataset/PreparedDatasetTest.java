package dev.jtune.data.dataset;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.tokenizer.ByteLevelTokenizerBuilder;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The on-disk cache: round trip, reuse, invalidation, atomicity, corruption. */
class PreparedDatasetTest {
    @TempDir
    static Path shared;
    static Path tokDir;
    static Tokenizer tok;

    @BeforeAll
    static void tokenizer() {
        tokDir = shared.resolve("tok");
        ByteLevelTokenizerBuilder.writeDefault(tokDir);
        tok = Tokenizer.load(tokDir);
    }

    @AfterAll
    static void close() {
        tok.close();
    }

    static void writeAlpaca(Path file, int rows) throws Exception {
        var sb = new StringBuilder();
        for (int i = 0; i < rows; i++) {
            String input = i % 3 == 0 ? "some context " + i : "";
            sb.append("{\"instruction\": \"Say the number ").append(i).append(" in words.\", \"input\": \"")
                    .append(input).append("\", \"output\": \"").append("It is number ".repeat(1 + i % 4)).append(i).append(".\"}\n");
        }
        sb.append("{\"instruction\": \"no answer\", \"output\": \"\"}\n");
        Files.writeString(file, sb.toString());
    }

    static TrainConfig config(Path dir, String extra) throws Exception {
        String yaml = """
                base_model: m
                output_dir: out
                datasets:
                  - path: data.jsonl
                    type: alpaca
                """ + extra;
        for (String dflt : List.of("sequence_len: 256", "sample_packing: true", "val_set_size: 0.1")) {
            if (!("\n" + extra).contains("\n" + dflt.substring(0, dflt.indexOf(':') + 1))) yaml += dflt + "\n";
        }
        return TrainConfig.parse(yaml, dir.resolve("c.yml"));
    }

    static PreparedDataset prepare(Path dir, TrainConfig c, Path tokenizerDir) {
        return PreparedDataset.prepareOrLoad(c, tokenizerDir, AlpacaTestSource.of(tok, c.trainOnInputs(), dir), dir);
    }

    @Test
    void storesReadsBackAndReuses(@TempDir Path dir) throws Exception {
        writeAlpaca(dir.resolve("data.jsonl"), 60);
        TrainConfig c = config(dir, "");
        Preprocessor.Prepared inMemory = Preprocessor.prepare(c, AlpacaTestSource.of(tok, false, dir));
        try (PreparedDataset p = prepare(dir, c, tokDir)) {
            assertFalse(p.reused());
            assertEquals(dir.resolve("out").resolve(PreparedDataset.DEFAULT_DIR_NAME).resolve(p.key()), p.directory());
            assertRowsEqual(inMemory.train(), p.train());
            assertRowsEqual(inMemory.eval(), p.eval());
            assertEquals(inMemory.report(), p.report());
            assertEquals(61, p.report().rowsRead());
            assertEquals(1, p.report().skipped().get("empty output"));
            assertEquals(6, p.report().eval().samples());
            assertEquals(54, p.report().train().samples());
        }
        try (PreparedDataset again = prepare(dir, c, tokDir)) {
            assertTrue(again.reused());
            assertRowsEqual(inMemory.train(), again.train());
        }
        // The trainer can open it by directory alone; closing unmaps.
        PreparedDataset byDir = PreparedDataset.open(PreparedDataset.root(c, dir).resolve(PreparedKey.of(c, tokDir,
                AlpacaTestSource.of(tok, false, dir))));
        List<Row> rows = byDir.train();
        byDir.close();
        assertThrows(IllegalStateException.class, () -> rows.get(0));
    }

    static void assertRowsEqual(List<Row> want, List<Row> got) {
        assertEquals(want.size(), got.size());
        for (int i = 0; i < want.size(); i++) {
            assertArrayEquals(want.get(i).inputIds(), got.get(i).inputIds());
            assertArrayEquals(want.get(i).labels(), got.get(i).labels());
            assertArrayEquals(want.get(i).positionIds(), got.get(i).positionIds());
            assertArrayEquals(want.get(i).cuSeqlens(), got.get(i).cuSeqlens());
        }
    }

    private static String key(Path dir, TrainConfig c, Path tokenizerDir) {
        return PreparedKey.of(c, tokenizerDir, AlpacaTestSource.of(tok, c.trainOnInputs(), dir));
    }

    @Test
    void keyFollowsDataNotTrainerKeys(@TempDir Path dir) throws Exception {
        writeAlpaca(dir.resolve("data.jsonl"), 20);
        String base = key(dir, config(dir, ""), tokDir);
        assertEquals(base, key(dir, config(dir, ""), tokDir), "stable");
        assertEquals(base, key(dir, config(dir, "learning_rate: 0.001\nmicro_batch_size: 8\nnum_epochs: 3\n"), tokDir));
        assertEquals(base, key(dir, config(dir, "pad_to_sequence_len: true\n"), tokDir), "padding is per batch");
        for (String change : List.of("sequence_len: 512\n", "seed: 1\n", "train_on_inputs: true\n",
                "shuffle_merged_datasets: false\n", "sample_packing: false\n", "excess_length_strategy: truncate\n", "chat_template: chatml\n",
                "special_tokens:\n  pad_token: \"<pad>\"\n")) {
            assertNotEquals(base, key(dir, config(dir, change), tokDir), change);
        }
        assertNotEquals(base, key(dir, config(dir, "val_set_size: 0.2\n"), tokDir));
        assertNotEquals(base, key(dir, config(dir, "val_set_size: 2\n"), tokDir), "a count is not a fraction");
        assertNotEquals(base, key(dir, config(dir, "datasets:\n  - path: data.jsonl\n    type: alpaca\n    field_output: instruction\n"
                .replace("datasets:", "test_datasets:") + "val_set_size: 0\n"), tokDir));
    }

    @Test
    void datasetEditTokenizerChangeAndDataKeyChangeRebuild(@TempDir Path dir) throws Exception {
        Path data = dir.resolve("data.jsonl");
        writeAlpaca(data, 30);
        TrainConfig c = config(dir, "");
        String k1;
        try (PreparedDataset p = prepare(dir, c, tokDir)) {
            k1 = p.key();
        }
        // Same size, one byte different.
        String text = Files.readString(data);
        Files.writeString(data, text.replace("number 7 in", "number 8 in"));
        try (PreparedDataset p = prepare(dir, c, tokDir)) {
            assertFalse(p.reused());
            assertNotEquals(k1, p.key());
        }
        Files.writeString(data, text);
        try (PreparedDataset p = prepare(dir, c, tokDir)) {
            assertTrue(p.reused(), "back to the first contents");
            assertEquals(k1, p.key());
        }
        Path tok2 = dir.resolve("tok2");
        ByteLevelTokenizerBuilder.write(tok2, ByteLevelTokenizerBuilder.defaultCorpus(), 400);
        try (PreparedDataset p = prepare(dir, c, tok2)) {
            assertFalse(p.reused());
            assertNotEquals(k1, p.key());
        }
        try (PreparedDataset p = prepare(dir, config(dir, "seed: 3\n"), tokDir)) {
            assertFalse(p.reused());
            assertNotEquals(k1, p.key());
        }
        try (PreparedDataset p = prepare(dir, config(dir, "learning_rate: 0.5\n"), tokDir)) {
            assertTrue(p.reused(), "a trainer key does not invalidate");
        }
    }

    @Test
    void tempDirectoriesAreIgnoredAndStaleOnesRemoved(@TempDir Path dir) throws Exception {
        writeAlpaca(dir.resolve("data.jsonl"), 10);
        TrainConfig c = config(dir, "");
        String key = key(dir, c, tokDir);
        Path root = PreparedDataset.root(c, dir);
        Files.createDirectories(root);
        // A killed writer of the same key: partial files, not under the key's name.
        Path killed = root.resolve(".tmp-" + key + "-123");
        Files.createDirectories(killed);
        Files.writeString(killed.resolve(PreparedDataset.TRAIN_FILE), "partial");
        Path fresh = root.resolve(".tmp-" + key + "-456");
        Files.createDirectories(fresh);
        Files.setLastModifiedTime(killed, FileTime.from(Instant.now().minus(PreparedDataset.STALE_TEMP).minusSeconds(60)));
        try (PreparedDataset p = prepare(dir, c, tokDir)) {
            assertFalse(p.reused());
            assertEquals(10, p.report().train().samples() + p.report().eval().samples());
        }
        assertFalse(Files.exists(killed), "a stale temp directory is removed");
        assertTrue(Files.exists(fresh), "a recent one may belong to a running writer");
        try (Stream<Path> list = Files.list(root)) {
            assertEquals(List.of(key, fresh.getFileName().toString()),
                    list.map(p -> p.getFileName().toString()).sorted((a, b) -> a.startsWith(".") ? 1 : -1).toList());
        }
    }

    @Test
    void corruptionIsAClearError(@TempDir Path dir) throws Exception {
        writeAlpaca(dir.resolve("data.jsonl"), 40);
        TrainConfig c = config(dir, "");
        Path stored;
        try (PreparedDataset p = prepare(dir, c, tokDir)) {
            stored = p.directory();
        }
        Path train = stored.resolve(PreparedDataset.TRAIN_FILE);
        byte[] original = Files.readAllBytes(train);
        // One flipped bit in the token data.
        try (RandomAccessFile f = new RandomAccessFile(train.toFile(), "rw")) {
            f.seek(original.length - 9);
            int b = f.read();
            f.seek(original.length - 9);
            f.write(b ^ 1);
        }
        var e = assertThrows(CorruptPreparedDataException.class, () -> prepare(dir, c, tokDir));
        assertTrue(e.getMessage().contains(train.toString()) && e.getMessage().contains("checksum"), e.getMessage());
        // Truncated.
        Files.write(train, java.util.Arrays.copyOf(original, original.length - 4));
        e = assertThrows(CorruptPreparedDataException.class, () -> prepare(dir, c, tokDir));
        assertTrue(e.getMessage().contains("header promises"), e.getMessage());
        Files.write(train, original);
        try (PreparedDataset p = prepare(dir, c, tokDir)) {
            assertTrue(p.reused());
        }
        Files.writeString(stored.resolve(PreparedDataset.META_FILE), "{\"format\": 99}");
        e = assertThrows(CorruptPreparedDataException.class, () -> PreparedDataset.open(stored));
        assertTrue(e.getMessage().contains(PreparedDataset.META_FILE), e.getMessage());
    }
}
