package dev.jtune.data.dataset;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.tokenizer.PublishedTokenizers;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Axolotl's instruction types ({@code alpaca}, {@code alpaca:chat|chatml|phi}, {@code jeopardy}, {@code oasst},
 * {@code gpteacher}, {@code summarizetldr}, {@code explainchoice}, {@code concisechoice}) on four published
 * tokenizers (Llama-3.1, Mistral's SentencePiece Llama tokenizer, Qwen3, Gemma 3): every row's ids and labels equal
 * those of transformers with Axolotl's prompters and tokenizing strategy restated in
 * {@code tools/reference/instruction_expected.py} (resources/instruction-formats/expected.json). Rows cover an
 * absent, empty and present input, unicode and whitespace at the edges, literal EOS text ending the output, an
 * empty output and a newline-first output, with and without {@code train_on_inputs}.
 */
class InstructionFormatsTest {
    private static final Map<String, Tokenizer> TOKENIZERS = new HashMap<>();

    @AfterAll
    static void close() {
        TOKENIZERS.values().forEach(Tokenizer::close);
    }

    @Test
    void everyTypeAndRowEqualsAxolotlOverTransformers(@TempDir Path dir) throws Exception {
        JsonNode expected;
        try (InputStream in = InstructionFormatsTest.class.getResourceAsStream("/instruction-formats/expected.json")) {
            expected = new ObjectMapper().readTree(in);
        }
        int checked = 0;
        List<String> mismatches = new ArrayList<>();
        for (JsonNode c : expected.get("cases")) {
            Tokenizer tok = TOKENIZERS.computeIfAbsent(c.get("tokenizer").asText(),
                    name -> Tokenizer.load(PublishedTokenizers.dir(name)));
            Path data = dir.resolve("rows.jsonl");
            Files.writeString(data, c.get("row").toString() + "\n");
            TrainConfig cfg = TrainConfig.parse("base_model: m\nsequence_len: " + expected.get("sequence_len").asInt()
                    + "\ntrain_on_inputs: " + c.get("train_on_inputs").asBoolean()
                    + "\ndatasets:\n  - path: rows.jsonl\n    type: " + c.get("type").asText() + "\n", dir.resolve("c.yml"));
            List<Sample> samples = DatasetTestSupport.read(cfg, tok, dir, new LoadReport());
            assertEquals(1, samples.size());
            String what = c.get("tokenizer").asText() + " " + c.get("type").asText() + " " + c.get("row_name").asText()
                    + (c.get("train_on_inputs").asBoolean() ? " train_on_inputs" : "");
            if (!java.util.Arrays.equals(ints(c.get("input_ids")), samples.getFirst().inputIds())
                    || !java.util.Arrays.equals(ints(c.get("labels")), samples.getFirst().labels())) {
                mismatches.add(what);
            }
            checked++;
        }
        assertTrue(mismatches.isEmpty(), mismatches.size() + " of " + checked + " differ: " + mismatches);
        assertEquals(616, checked, "every case of expected.json was read");
    }

    private static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asInt();
        return out;
    }
}
