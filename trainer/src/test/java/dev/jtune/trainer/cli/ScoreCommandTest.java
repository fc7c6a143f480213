package dev.jtune.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.engine.Dtype;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code score} end to end — tokenizer.json, safetensors, Llama, loss — on a bf16 checkpoint that another
 * program (tools/reference/make_fixture.py, PyTorch) wrote together with the NLLs it computed.
 */
class ScoreCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static Path fixture;
    private static JsonNode expected;

    @BeforeAll
    static void locate() throws Exception {
        // The fixture lives in the model module's test resources; tests run with the module as working dir.
        fixture = Path.of("..", "model", "src", "test", "resources", "fixtures", "tiny-bf16-llama").toAbsolutePath();
        expected = JSON.readTree(fixture.resolve("expected.json").toFile());
    }

    private static List<JsonNode> score(Path input, Dtype dtype) throws Exception {
        var bytes = new ByteArrayOutputStream();
        try (var out = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
            assertEquals(0, ScoreCommand.score(fixture, input, dtype, out));
        }
        return bytes.toString(StandardCharsets.UTF_8).lines().map(l -> {
            try {
                return JSON.readTree(l);
            } catch (Exception e) {
                throw new AssertionError("not JSON: " + l, e);
            }
        }).toList();
    }

    @Test
    void fp32ScoresEqualThoseOfTheProgramThatWroteTheCheckpoint() throws Exception {
        List<JsonNode> out = score(fixture.resolve("inputs.jsonl"), Dtype.FP32);
        JsonNode lines = expected.get("lines");
        assertEquals(lines.size() + 1, out.size());
        for (int i = 0; i < lines.size(); i++) {
            JsonNode want = lines.get(i);
            assertEquals(want.get("tokens").asInt(), out.get(i).get("tokens").asInt(), "tokens of line " + (i + 1));
            double nll = want.get("fp32").get("nll").asDouble();
            assertEquals(nll, out.get(i).get("nll").asDouble(), 1e-4 * nll, "nll of line " + (i + 1));
            assertEquals(nll / want.get("tokens").asInt(), out.get(i).get("mean_nll").asDouble(), 1e-4 * nll);
        }
        JsonNode summary = out.get(lines.size());
        assertTrue(summary.get("summary").asBoolean());
        JsonNode want = expected.get("summary").get("fp32");
        assertEquals(want.get("tokens").asInt(), summary.get("tokens").asInt());
        assertEquals(want.get("mean_nll").asDouble(), summary.get("mean_nll").asDouble(), 1e-5);
        assertEquals(want.get("perplexity").asDouble(), summary.get("perplexity").asDouble(),
                1e-4 * want.get("perplexity").asDouble());
    }

    @Test
    void bf16ScoresAgreeWithTheBf16Reference() throws Exception {
        List<JsonNode> out = score(fixture.resolve("inputs.jsonl"), Dtype.BF16);
        JsonNode want = expected.get("summary").get("bf16");
        double mean = out.get(out.size() - 1).get("mean_nll").asDouble();
        assertEquals(want.get("mean_nll").asDouble(), mean, 0.005 * want.get("mean_nll").asDouble());
    }

    @Test
    void badLineIsReportedWithItsNumber(@TempDir Path tmp) throws Exception {
        Path input = tmp.resolve("in.jsonl");
        Files.writeString(input, "{\"text\": \"ok\"}\n\n{\"prompt\": \"only a prompt\"}\n");
        var err = new ByteArrayOutputStream();
        int code = Main.run(new String[] {"score", "--model", fixture.toString(), "--input", input.toString()},
                new PrintStream(new ByteArrayOutputStream()), new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(1, code);
        String msg = err.toString(StandardCharsets.UTF_8);
        assertTrue(msg.contains(input + ":3") && msg.contains("\"completion\""), msg);
    }

    @Test
    void usageErrorsExitWithTwoAndShowTheUsage() {
        var err = new ByteArrayOutputStream();
        int code = Main.run(new String[] {"score", "--modle", "x"}, new PrintStream(new ByteArrayOutputStream()),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(2, code);
        String msg = err.toString(StandardCharsets.UTF_8);
        assertTrue(msg.contains("unknown option --modle") && msg.contains("did you mean --model"), msg);
        assertTrue(msg.contains("usage: ./launch.sh score"), msg);
    }
}
