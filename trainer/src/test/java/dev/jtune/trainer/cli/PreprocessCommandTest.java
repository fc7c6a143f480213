package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.dataset.PreparedDataset;
import dev.jtune.data.dataset.Sample;
import dev.jtune.data.dataset.SampleSource;
import dev.jtune.data.tokenizer.ByteLevelTokenizerBuilder;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code preprocess} end to end on the tiny byte-level tokenizer, with a test-side Alpaca loader behind the seam. */
class PreprocessCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String PROMPT = "### Instruction:\n%s\n\n### Response:\n";

    /** BOS + prompt (masked) + output + EOS (trained), from JSONL {instruction, output}. */
    static SampleSource alpaca(TrainConfig config, Tokenizer tok, Path baseDir) {
        return SampleSource.of(baseDir, "test", (ds, tally) -> {
            List<Sample> out = new ArrayList<>();
            for (Path f : dev.jtune.data.dataset.DatasetFiles.resolve(ds, baseDir)) {
                try {
                    for (String line : Files.readAllLines(f)) {
                        tally.read(1);
                        JsonNode row = JSON.readTree(line);
                        if (row.path("output").asText().isEmpty()) {
                            tally.skipped("empty output", 1);
                            continue;
                        }
                        int[] p = tok.encode(PROMPT.formatted(row.path("instruction").asText()), false);
                        int[] o = tok.encode(row.path("output").asText(), false);
                        int n = p.length + o.length + 2;
                        int[] ids = new int[n];
                        int[] labels = new int[n];
                        ids[0] = tok.bosId().orElseThrow();
                        System.arraycopy(p, 0, ids, 1, p.length);
                        System.arraycopy(o, 0, ids, 1 + p.length, o.length);
                        ids[n - 1] = tok.eosId().orElseThrow();
                        for (int i = 0; i < n; i++) labels[i] = i > p.length ? ids[i] : Sample.IGNORE_INDEX;
                        out.add(new Sample(ids, labels));
                    }
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }
            return out.stream();
        });
    }

    private record Result(int code, String out, String err) {}

    private static Result run(Path base, boolean colour, String... argv) throws Exception {
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        int code;
        try (var o = new PrintStream(out, true, StandardCharsets.UTF_8); var e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            code = PreprocessCommand.run(argv, o, e, PreprocessCommandTest::alpaca, base, colour);
        }
        return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static Path setUp(Path base) throws Exception {
        ByteLevelTokenizerBuilder.writeDefault(base.resolve("model"));
        var sb = new StringBuilder();
        for (int i = 0; i < 30; i++) {
            sb.append("{\"instruction\": \"Count to ").append(i).append(".\", \"output\": \"Here: ")
                    .append("one two ".repeat(i % 5)).append("done.\"}\n");
        }
        sb.append("{\"instruction\": \"x\", \"output\": \"\"}\n");
        Files.writeString(base.resolve("data.jsonl"), sb.toString());
        Files.writeString(base.resolve("cfg.yml"), """
                base_model: model
                sequence_len: 128
                sample_packing: true
                val_set_size: 3
                output_dir: out
                datasets:
                  - path: data.jsonl
                    type: alpaca
                """);
        return base.resolve("cfg.yml");
    }

    @Test
    void buildsThenReusesAndPrintsTheReport(@TempDir Path base) throws Exception {
        setUp(base);
        Result first = run(base, false, "cfg.yml");
        assertEquals(0, first.code(), first.err());
        assertTrue(first.out().contains("(built in"), first.out());
        assertTrue(first.out().matches("(?s).*rows read\\s+31\\n.*"), first.out());
        assertTrue(first.out().matches("(?s).*empty output\\s+1\\n.*"), first.out());
        assertTrue(first.out().matches("(?s).*samples\\s+27\\s+3\\n.*"), first.out());
        assertTrue(first.out().contains("packing efficiency"), first.out());
        Path root = base.resolve("out").resolve(PreparedDataset.DEFAULT_DIR_NAME);
        try (var dirs = Files.list(root)) {
            Path dir = dirs.filter(Files::isDirectory).findFirst().orElseThrow();
            assertTrue(Files.isRegularFile(dir.resolve(PreparedDataset.REPORT_FILE)));
        }
        Result second = run(base, false, "cfg.yml");
        assertTrue(second.out().contains("(reused in"), second.out());
    }

    /** Data that loses every row is an error naming the reason that took most of them, not exit 0. */
    @Test
    void noTrainingRowLeftIsAnErrorNamingWhy(@TempDir Path base) throws Exception {
        Path cfg = setUp(base);
        Files.writeString(cfg, Files.readString(cfg).replace("sequence_len: 128", "sequence_len: 16")
                .replace("val_set_size: 3", "val_set_size: 0"));
        var e = assertThrows(IllegalArgumentException.class, () -> run(base, false, "cfg.yml"));
        assertTrue(e.getMessage().contains("no training samples left — longer than sequence_len: 30 of 31 rows read"),
                e.getMessage());
    }

    @Test
    void showTextMarksMaskedTokens(@TempDir Path base) throws Exception {
        setUp(base);
        Result plain = run(base, false, "cfg.yml", "--show", "2");
        assertTrue(plain.out().contains("legend:"), plain.out());
        assertTrue(plain.out().contains("=== row 0:") && plain.out().contains("=== row 1:") && !plain.out().contains("=== row 2:"));
        // The prompt is masked, the answer trained: "[[<s>### Instruction:\nCount to N.\n\n### Response:\n]]Here: ...</s>"
        assertTrue(plain.out().matches("(?s).*\\[\\[<s>### Instruction:\\nCount to \\d+\\.\\n\\n### Response:\\n\\]\\]Here: .*done\\.</s>.*"),
                plain.out());
        assertTrue(plain.out().contains("--- sample 1 ---"), "rows are packed");
        Result colour = run(base, true, "cfg.yml", "--show", "1");
        assertTrue(colour.out().contains(PreprocessCommand.GREY + "<s>### Instruction:"), colour.out());
        assertTrue(colour.out().contains(PreprocessCommand.GREEN + "Here: "), colour.out());
        assertTrue(!colour.out().contains("[[<s>"));
    }

    @Test
    void showJsonIsOneObjectPerRowOnStdout(@TempDir Path base) throws Exception {
        setUp(base);
        Result r = run(base, false, "cfg.yml", "--show", "3", "--show-format", "json");
        assertEquals(0, r.code());
        assertTrue(r.err().contains("packing efficiency"), "report on stderr");
        List<String> lines = r.out().lines().toList();
        assertEquals(3, lines.size(), r.out());
        for (String line : lines) {
            JsonNode row = JSON.readTree(line);
            int n = row.get("input_ids").size();
            assertEquals(n, row.get("labels").size());
            assertEquals(n, row.get("position_ids").size());
            assertEquals(0, row.get("position_ids").get(0).asInt());
            assertTrue(n <= 128);
            for (int i = 0; i < n; i++) {
                int label = row.get("labels").get(i).asInt();
                assertTrue(label == -100 || label == row.get("input_ids").get(i).asInt());
                if (row.get("position_ids").get(i).asInt() == 0) assertEquals(-100, label, "no label crosses a sample start");
            }
        }
    }

    /** The config's info and warning lines go to stderr, once, and leave stdout's rows alone. */
    @Test
    void configNotesGoToStderrOnce(@TempDir Path base) throws Exception {
        Path cfg = setUp(base);
        Files.writeString(cfg, Files.readString(cfg) + "liger_rms_norm: true\nwandb_project: p\n");
        Result r = run(base, false, "cfg.yml", "--show", "1", "--show-format", "json");
        assertEquals(0, r.code(), r.err());
        List<String> notes = r.err().lines().filter(l -> l.startsWith("info: ") || l.startsWith("warning: ")).toList();
        assertEquals(2, notes.size(), r.err());
        assertTrue(notes.get(0).startsWith("info: ") && notes.get(0).contains(":9:1: liger_rms_norm: true"), notes.get(0));
        assertTrue(notes.get(1).startsWith("warning: ") && notes.get(1).contains(":10:1: wandb_project: p"), notes.get(1));
        assertEquals(1, r.out().lines().count(), r.out());
    }

    @Test
    void badUsage(@TempDir Path base) throws Exception {
        Path cfg = setUp(base);
        assertThrows(Args.UsageException.class, () -> run(base, false));
        assertThrows(Args.UsageException.class, () -> run(base, false, "cfg.yml", "--show-format", "yaml"));
        assertThrows(Args.UsageException.class, () -> run(base, false, "cfg.yml", "--shwo", "1"));
        assertTrue(Main.help().contains("preprocess"));
    }

    @Test
    void theRealLoadersAreWired(@TempDir Path base) throws Exception {
        Path cfg = setUp(base);
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        int code = PreprocessCommand.run(new String[] {cfg.toString(), "--show", "1", "--show-format", "json"},
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8),
                PreprocessCommand::sampleSource, base, false);
        assertEquals(0, code, err.toString(StandardCharsets.UTF_8));
        JsonNode row = JSON.readTree(out.toString(StandardCharsets.UTF_8).lines().findFirst().orElseThrow());
        int[] ids = new int[row.get("input_ids").size()];
        for (int i = 0; i < ids.length; i++) ids[i] = row.get("input_ids").get(i).asInt();
        String text = Tokenizer.load(base.resolve("model")).decode(ids, false);
        assertTrue(text.contains("Below is an instruction that describes a task."), text);
        assertTrue(Main.help().contains("preprocess"));
    }
}
