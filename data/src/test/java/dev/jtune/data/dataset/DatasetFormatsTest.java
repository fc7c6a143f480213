package dev.jtune.data.dataset;

import static dev.jtune.data.dataset.DatasetTestSupport.concat;
import static dev.jtune.data.dataset.DatasetTestSupport.config;
import static dev.jtune.data.dataset.DatasetTestSupport.read;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.tokenizer.ByteLevelTokenizerBuilder;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** alpaca and completion against independently built token sequences; row errors and skip_invalid. */
class DatasetFormatsTest {
    static final String WITH_INPUT = "Below is an instruction that describes a task, paired with an input that provides further "
            + "context. Write a response that appropriately completes the request.\n\n### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:\n";
    static final String NO_INPUT = "Below is an instruction that describes a task. Write a response that appropriately "
            + "completes the request.\n\n### Instruction:\n%s\n\n### Response:\n";
    static final int I = Sample.IGNORE_INDEX;

    static Tokenizer tok;

    @TempDir
    Path dir;

    @BeforeAll
    static void tokenizer(@TempDir Path tokDir) {
        ByteLevelTokenizerBuilder.writeDefault(tokDir);
        tok = Tokenizer.load(tokDir);
    }

    @AfterAll
    static void close() {
        tok.close();
    }

    private Path write(String name, String text) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, text);
        return p;
    }

    /** Prompt tokens masked, answer + EOS trained, tokenized apart and checked to equal the whole text's tokens. */
    private static Sample expectedAlpaca(String prompt, String output) {
        int[] p = tok.encode(ByteLevelTokenizerBuilder.BOS_TOKEN + prompt, false);
        int[] a = tok.encode(output + ByteLevelTokenizerBuilder.EOS_TOKEN, false);
        int[] ids = concat(List.of(p, a));
        assertArrayEquals(tok.encode(ByteLevelTokenizerBuilder.BOS_TOKEN + prompt + output + ByteLevelTokenizerBuilder.EOS_TOKEN, false), ids,
                "no token crosses the prompt/answer boundary for this tokenizer");
        int[] labels = new int[ids.length];
        Arrays.fill(labels, 0, p.length, I);
        System.arraycopy(a, 0, labels, p.length, a.length);
        return new Sample(ids, labels);
    }

    @Test
    void alpacaIsTheStanfordPromptWithOutputAndEosTrained() throws IOException {
        write("a.jsonl", """
                {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"}
                {"instruction": "Say hi.", "output": "Hi!"}
                {"instruction": "Say hi.", "input": "", "output": "Hi!"}
                {"instruction": "Say hi.", "input": null, "output": "Hi!"}
                """);
        LoadReport report = new LoadReport();
        List<Sample> samples = read(config("datasets:\n  - path: a.jsonl\n    type: alpaca\n"), tok, dir, report);
        assertEquals(4, samples.size());
        Sample withInput = expectedAlpaca(String.format(WITH_INPUT, "Add the numbers.", "2 and 3"), "5");
        Sample noInput = expectedAlpaca(String.format(NO_INPUT, "Say hi."), "Hi!");
        assertSample(withInput, samples.get(0));
        for (int i = 1; i < 4; i++) {
            assertSample(noInput, samples.get(i));
        }
        assertEquals(4, report.rowsRead());
        assertEquals(4, report.samples());
        assertEquals(0, report.rowsSkipped());

        List<Sample> all = read(config("train_on_inputs: true\ndatasets:\n  - path: a.jsonl\n    type: alpaca\n"), tok, dir, new LoadReport());
        assertArrayEquals(withInput.inputIds(), all.getFirst().labels(), "train_on_inputs trains every token");
    }

    @Test
    void alpacaFieldNamesAreConfigurable() throws IOException {
        write("q.json", "[{\"q\": \"Say hi.\", \"a\": \"Hi!\"}]");
        List<Sample> s = read(config("datasets:\n  - path: q.json\n    type: alpaca\n    field_instruction: q\n    field_output: a\n"),
                tok, dir, new LoadReport());
        assertSample(expectedAlpaca(String.format(NO_INPUT, "Say hi."), "Hi!"), s.getFirst());
    }

    @Test
    void completionAppendsEosTrainsEverythingAndSplitsLongTexts() throws IOException {
        String shortText = "The weather is nice.";
        String longText = "Tell me about the weather. ".repeat(20);
        write("c.jsonl", "{\"text\": \"" + shortText + "\"}\n{\"text\": \"" + longText + "\"}\n");
        LoadReport report = new LoadReport();
        List<Sample> samples = read(config("sequence_len: 16\ndatasets:\n  - path: c.jsonl\n    type: completion\n"), tok, dir, report);
        int[] shortIds = concat(List.of(tok.encode(shortText, true), new int[] {ByteLevelTokenizerBuilder.EOS_ID}));
        int[] longIds = concat(List.of(tok.encode(longText, true), new int[] {ByteLevelTokenizerBuilder.EOS_ID}));
        assertEquals(true, shortIds.length <= 16 && longIds.length > 3 * 16, "test texts fit / do not fit 16 tokens");
        assertSample(new Sample(shortIds, shortIds), samples.getFirst());
        int chunks = (longIds.length + 15) / 16;
        assertEquals(1 + chunks, samples.size());
        for (int k = 0; k < chunks; k++) {
            int[] part = Arrays.copyOfRange(longIds, 16 * k, Math.min(longIds.length, 16 * (k + 1)));
            assertSample(new Sample(part, part), samples.get(1 + k));
        }
        assertEquals(2, report.rowsRead());
        assertEquals(1 + chunks, report.samples());
        assertEquals(1, report.textsSplit());
        assertEquals(chunks, report.chunksFromSplits());
    }

    @Test
    void noTypeReadsPreTokenizedRowsAsTheyAre() throws IOException {
        // Axolotl (utils/data/wrappers.py): input_ids, attention_mask and labels columns are used as they are;
        // examples/orpheus/finetune.yml leaves type: empty for such a dataset.
        write("tok.jsonl", """
                {"input_ids": [0, 70, 71, 72, 1], "attention_mask": [1, 1, 1, 1, 1], "labels": [-100, -100, 71, 72, 1]}
                {"input_ids": [5, 6], "attention_mask": [1, 1], "labels": [5, 6], "extra": "ignored"}
                """);
        for (String entry : List.of("  - path: tok.jsonl\n", "  - path: tok.jsonl\n    type:\n")) {
            List<Sample> s = read(config("datasets:\n" + entry), tok, dir, new LoadReport());
            assertEquals(2, s.size());
            assertSample(new Sample(new int[] {0, 70, 71, 72, 1}, new int[] {I, I, 71, 72, 1}), s.get(0));
            assertSample(new Sample(new int[] {5, 6}, new int[] {5, 6}), s.get(1));
        }
        record Bad(String row, String message) {}
        for (Bad bad : List.of(
                new Bad("{\"text\": \"raw\"}", "field 'input_ids' missing: a dataset without type: is read as"
                        + " pre-tokenized, each row with input_ids, attention_mask and labels (as Axolotl's loader); for"
                        + " raw rows give type: (alpaca, chat_template, completion, ...)"),
                new Bad("{\"input_ids\": [5, 6], \"attention_mask\": [1, 1]}", "field 'labels' missing: a dataset"
                        + " without type: is read as pre-tokenized, each row with input_ids, attention_mask and labels"
                        + " (as Axolotl's loader); for raw rows give type: (alpaca, chat_template, completion, ...)"),
                new Bad("{\"input_ids\": [5, 6], \"attention_mask\": [1], \"labels\": [5, 6]}",
                        "input_ids has 2 tokens, attention_mask 1, labels 2 (expected one length)"),
                new Bad("{\"input_ids\": [5, 6], \"attention_mask\": [1, 0], \"labels\": [5, -100]}",
                        "attention_mask[1] is 0 (expected 1: give each sample without padding; jtune pads batches"
                                + " itself)"),
                new Bad("{\"input_ids\": [5, 6], \"attention_mask\": [1, 1], \"labels\": [5, 7]}",
                        "labels[1] is 7, neither the token's id 6 (trained) nor -100 (not trained)"),
                new Bad("{\"input_ids\": [5, 600], \"attention_mask\": [1, 1], \"labels\": [5, 6]}",
                        "input_ids[1] is 600, outside the tokenizer's 512 tokens (0..511)"),
                new Bad("{\"input_ids\": [5, \"x\"], \"attention_mask\": [1, 1], \"labels\": [5, 6]}",
                        "field 'input_ids[1]' is a string (expected an integer)"))) {
            Path f = write("bad-tok.jsonl", "{\"input_ids\": [5], \"attention_mask\": [1], \"labels\": [5]}\n"
                    + bad.row() + "\n");
            DatasetException e = assertThrows(DatasetException.class,
                    () -> read(config("datasets:\n  - path: bad-tok.jsonl\n"), tok, dir, new LoadReport()));
            assertEquals(f.toAbsolutePath() + ":2: " + bad.message(), e.getMessage());
        }
    }

    @Test
    void badRowsNameFileLineAndField() throws IOException {
        Path f = write("bad.jsonl", "{\"instruction\": \"x\", \"output\": \"y\"}\n\n{\"instruction\": \"x\"}\n");
        DatasetException e = assertThrows(DatasetException.class,
                () -> read(config("datasets:\n  - path: bad.jsonl\n    type: alpaca\n"), tok, dir, new LoadReport()));
        assertEquals(f.toAbsolutePath() + ":3: field 'output' missing (expected a string)", e.getMessage());
        Path g = write("bad.json", "[\n {\"instruction\": \"x\", \"output\": \"y\"},\n {\"instruction\": 7,\n  \"output\": \"y\"}\n]");
        e = assertThrows(DatasetException.class,
                () -> read(config("datasets:\n  - path: bad.json\n    type: alpaca\n"), tok, dir, new LoadReport()));
        assertEquals(g.toAbsolutePath() + ":3: field 'instruction' is a number (expected a string)", e.getMessage());
        Path h = write("chat.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": 4}]}\n"
                + "{\"messages\": {}}\n{\"msgs\": []}\n[1]\n");
        TrainConfig chat = config("chat_template: chatml\ndatasets:\n  - path: chat.jsonl\n    type: chat_template\n");
        e = assertThrows(DatasetException.class, () -> read(chat, tok, dir, new LoadReport()));
        assertEquals(h.toAbsolutePath() + ":1: field 'messages[1].content' is a number (expected a string)", e.getMessage());
    }

    @Test
    void skipInvalidSkipsAndCountsByReason() throws IOException {
        write("chat.jsonl", String.join("\n",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": 4}]}",
                "{\"messages\": {}}",
                "{\"msgs\": []}",
                "[1]",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}]}",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\"}]}",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\" \"content\": \"x\"}]}",
                "{\"messages\": []}",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hey\"}]}",
                ""));
        LoadReport report = new LoadReport();
        List<Sample> samples = read(config("chat_template: chatml\ndatasets:\n  - path: chat.jsonl\n    type: chat_template\n    skip_invalid: true\n"),
                tok, dir, report);
        assertEquals(2, samples.size());
        assertEquals(9, report.rowsRead());
        assertEquals(7, report.rowsSkipped());
        assertEquals(2, report.samples());
        Map<String, Long> reasons = report.skippedByReason();
        assertEquals(1L, reasons.get("field 'messages[1].content' is a number (expected a string)"));
        assertEquals(1L, reasons.get("field 'messages[1].content' missing (expected a string)"));
        assertEquals(1L, reasons.get("field 'messages' is an object (expected an array of messages)"));
        assertEquals(1L, reasons.get("field 'messages' missing (expected an array of messages)"));
        assertEquals(1L, reasons.get("the row is an array, expected a JSON object"));
        assertEquals(1L, reasons.get("field 'messages' holds no messages"));
        assertEquals(1L, reasons.keySet().stream().filter(r -> r.startsWith("malformed JSON")).count(), reasons.toString());
        assertEquals(7, reasons.size(), reasons.toString());
    }

    static void assertSample(Sample expected, Sample actual) {
        assertArrayEquals(expected.inputIds(), actual.inputIds(), "ids");
        assertArrayEquals(expected.labels(), actual.labels(), "labels");
    }
}
