package dev.jtune.data.dataset;

import static dev.jtune.data.dataset.DatasetTestSupport.config;
import static dev.jtune.data.dataset.DatasetTestSupport.read;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.tokenizer.Tekken;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tokenizer_use_mistral_common: true} against mistral-common itself: the fixture (src/test/resources/mistral-common,
 * written by tools/reference/mistral_common_fixture.py) holds small tekken.json files cut from mistral-common's own
 * bundled Tekken vocabulary, and the ids and labels Axolotl's MistralStrategy gives over mistral-common for
 * several conversations (system prompt, multi-turn, consecutive user messages, control-token text in messages,
 * list contents, a Magistral thinking conversation), per instruct version v3, v7, v11, v13.
 */
class MistralCommonTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Path FIXTURE = Path.of("src/test/resources/mistral-common");

    @TempDir
    Path dir;

    static JsonNode expected() throws IOException {
        return JSON.readTree(Files.readString(FIXTURE.resolve("expected.json")));
    }

    /** The tekken.json alone in a folder (as Magistral's and Devstral's folders are): Tokenizer.load reads it. */
    private Path modelDir(String version) throws IOException {
        Path m = dir.resolve("model-" + version);
        Files.createDirectories(m);
        Files.copy(FIXTURE.resolve(version).resolve(Tekken.FILE), m.resolve(Tekken.FILE));
        return m;
    }

    @Test
    void textEncodesAsMistralCommon() throws IOException {
        JsonNode expected = expected();
        for (String version : List.of("v3", "v7", "v11", "v13")) {
            Path m = modelDir(version);
            Tekken tekken = Tekken.read(m.resolve(Tekken.FILE));
            assertEquals(2500, tekken.vocabSize());
            try (Tokenizer plain = Tokenizer.tekken(m, tekken, false); Tokenizer full = Tokenizer.load(m)) {
                assertEquals(2500, full.vocabSize());
                assertEquals(1, full.bosId().getAsInt());
                assertEquals(2, full.eosId().getAsInt());
                assertEquals(11, full.padId().getAsInt());
                var fields = expected.path("versions").path(version).path("encode").fields();
                int n = 0;
                while (fields.hasNext()) {
                    var e = fields.next();
                    int[] want = ints(e.getValue());
                    assertArrayEquals(want, plain.encode(e.getKey(), false), version + " " + e.getKey());
                    if (!e.getKey().contains("[INST]")) { // the loaded tokenizer matches control tokens in text
                        assertArrayEquals(want, full.encode(e.getKey(), false), version + " " + e.getKey());
                        assertEquals(e.getKey(), full.decode(want, false));
                    }
                    n++;
                }
                assertEquals(7, n);
            }
        }
    }

    @Test
    void idsAndLabelsEqualAxolotlOverMistralCommon() throws IOException {
        JsonNode expected = expected();
        int compared = 0;
        for (String version : List.of("v3", "v7", "v11", "v13")) {
            Path m = modelDir(version);
            var cases = expected.path("versions").path(version).path("cases").fields();
            try (Tokenizer tok = Tokenizer.load(m)) {
                while (cases.hasNext()) {
                    var c = cases.next();
                    Path data = dir.resolve(version + "-" + c.getKey() + ".jsonl");
                    Files.writeString(data, JSON.writeValueAsString(Map.of("messages", c.getValue().get("messages"))) + "\n");
                    String yaml = "tokenizer_use_mistral_common: true\ndatasets:\n  - path: " + data.getFileName()
                            + "\n    type: chat_template\n";
                    Sample s = read(config(yaml), tok, dir, new LoadReport()).getFirst();
                    assertArrayEquals(ints(c.getValue().get("input_ids")), s.inputIds(), version + " " + c.getKey());
                    assertArrayEquals(ints(c.getValue().get("labels")), s.labels(), version + " " + c.getKey() + " labels");
                    compared++;
                }
            }
        }
        assertEquals(28, compared);
    }

    @Test
    void thinkingPartsAreLeftOutAsAxolotlDoes() throws IOException {
        // Axolotl 067b021's _convert_content_parts joins text/content/value of list parts: a thinking part adds nothing
        JsonNode think = expected().path("versions").path("v13").path("cases").path("think");
        int[] ids = ints(think.get("input_ids"));
        for (int id : ids) {
            assertFalse(id == 34 || id == 35, "no [THINK]/[/THINK] in Axolotl's ids");
        }
        assertTrue(ids.length > 20);
    }

    @Test
    void refusesWhatItDoesNotEncode() throws IOException {
        Path m = modelDir("v13");
        Path data = dir.resolve("tools.jsonl");
        Files.writeString(data, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\","
                + " \"content\": null, \"tool_calls\": [{\"id\": \"abc\", \"function\": {\"name\": \"f\", \"arguments\": {}}}]}]}\n"
                + "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n");
        String yaml = "tokenizer_use_mistral_common: true\ndatasets:\n  - path: tools.jsonl\n    type: chat_template\n";
        try (Tokenizer tok = Tokenizer.load(m)) {
            LoadReport report = new LoadReport();
            List<Sample> samples = new ArrayList<>();
            DatasetException e = assertThrows(DatasetException.class, () -> samples.addAll(read(config(yaml), tok, dir, report)));
            assertTrue(e.getMessage().contains("[TOOL_CALLS]"), e.getMessage());
        }
        // without tekken.json: a clear refusal naming the file
        Path empty = dir.resolve("plain");
        Files.createDirectories(empty);
        dev.jtune.data.tokenizer.ByteLevelTokenizerBuilder.writeDefault(empty);
        try (Tokenizer tok = Tokenizer.load(empty)) {
            String yaml2 = "tokenizer_use_mistral_common: true\ndatasets:\n  - path: x.jsonl\n    type: chat_template\n";
            Files.writeString(dir.resolve("x.jsonl"), "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"},"
                    + " {\"role\": \"assistant\", \"content\": \"b\"}]}\n");
            DatasetException e = assertThrows(DatasetException.class, () -> read(config(yaml2), tok, dir, new LoadReport()));
            assertTrue(e.getMessage().contains("tekken.json"), e.getMessage());
        }
    }

    static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asInt();
        }
        return out;
    }
}
