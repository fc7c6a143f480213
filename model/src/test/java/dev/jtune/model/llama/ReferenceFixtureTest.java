package dev.jtune.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.model.engine.Dtype;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Cross-checks the two reference implementations: {@link ReferenceLlama} (Java, double) against the logits and
 * negative log-likelihoods that tools/reference/make_fixture.py (PyTorch, a transcription of transformers)
 * wrote into the {@code fixtures/tiny-bf16-llama} checkpoint.
 */
class ReferenceFixtureTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static Path dir;
    private static LlamaConfig config;
    private static Map<String, Tensor> tensors;
    private static JsonNode expected;
    private static ReferenceLlama model;

    /** One tensor of the checkpoint, widened to float. */
    record Tensor(String dtype, long[] shape, float[] data) {}

    @BeforeAll
    static void load() throws IOException, URISyntaxException {
        dir = Path.of(ReferenceFixtureTest.class.getResource("/fixtures/tiny-bf16-llama/config.json").toURI()).getParent();
        config = LlamaConfig.load(dir);
        tensors = readSafetensors(dir.resolve("model.safetensors"));
        expected = JSON.readTree(dir.resolve("expected.json").toFile());
        model = new ReferenceLlama(config, name -> {
            Tensor t = tensors.get(name);
            return t == null ? null : t.data();
        });
    }

    /**
     * A minimal safetensors reader for this test only: u64 LE header size, JSON header, raw LE data.
     * BF16 widens to float exactly ({@code bits << 16}).
     */
    static Map<String, Tensor> readSafetensors(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        ByteBuffer buf = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        long headerLen = buf.getLong(0);
        assertTrue(headerLen > 0 && 8 + headerLen <= all.length, "header length " + headerLen);
        assertEquals(0, headerLen % 8, "header padded to a multiple of 8");
        JsonNode header = JSON.readTree(new String(all, 8, (int) headerLen, StandardCharsets.UTF_8));
        int base = 8 + (int) headerLen;
        Map<String, Tensor> out = new LinkedHashMap<>();
        long nextOffset = 0;
        List<String> names = new ArrayList<>();
        for (var it = header.fields(); it.hasNext(); ) {
            var e = it.next();
            if (e.getKey().equals("__metadata__")) {
                assertEquals("pt", e.getValue().path("format").asText());
                continue;
            }
            names.add(e.getKey());
            JsonNode info = e.getValue();
            String dtype = info.get("dtype").asText();
            long[] shape = new long[info.get("shape").size()];
            long n = 1;
            for (int i = 0; i < shape.length; i++) {
                shape[i] = info.get("shape").get(i).asLong();
                n *= shape[i];
            }
            long begin = info.get("data_offsets").get(0).asLong();
            long end = info.get("data_offsets").get(1).asLong();
            assertEquals(nextOffset, begin, e.getKey() + ": data is contiguous, in header order");
            nextOffset = end;
            float[] data = new float[(int) n];
            switch (dtype) {
                case "BF16" -> {
                    assertEquals(2 * n, end - begin, e.getKey() + ": byte size");
                    for (int i = 0; i < n; i++) {
                        int bits = buf.getShort(base + (int) begin + 2 * i) & 0xFFFF;
                        data[i] = Float.intBitsToFloat(bits << 16);
                    }
                }
                case "F32" -> {
                    assertEquals(4 * n, end - begin, e.getKey() + ": byte size");
                    for (int i = 0; i < n; i++) {
                        data[i] = buf.getFloat(base + (int) begin + 4 * i);
                    }
                }
                default -> throw new AssertionError(e.getKey() + ": dtype " + dtype + " not handled by this test");
            }
            out.put(e.getKey(), new Tensor(dtype, shape, data));
        }
        assertEquals(all.length - base, nextOffset, "data runs to the end of the file");
        assertEquals(names.stream().sorted().toList(), names, "tensors are sorted by name");
        return out;
    }

    private static int[] ints(JsonNode array) {
        int[] a = new int[array.size()];
        for (int i = 0; i < a.length; i++) {
            a[i] = array.get(i).asInt();
        }
        return a;
    }

    @Test
    void configIsTheTinyLlama3StyleModel() {
        assertEquals("llama", config.modelType());
        assertEquals(259, config.vocabSize());
        assertEquals(64, config.hiddenSize());
        assertEquals(128, config.intermediateSize());
        assertEquals(2, config.numHiddenLayers());
        assertEquals(4, config.numAttentionHeads());
        assertEquals(2, config.numKeyValueHeads());
        assertEquals(16, config.headDim());
        assertEquals(new RopeScaling.Llama3(8, 1, 4, 32), config.ropeScaling());
        assertEquals(Dtype.BF16, config.torchDtype());
        assertEquals(0, config.bosTokenId());
        assertEquals(List.of(1), config.eosTokenIds());
        assertEquals(2, config.padTokenId());
        assertEquals(false, config.tieWordEmbeddings());
    }

    @Test
    void checkpointHoldsExactlyTheTensorsOfTheConfigInBf16() {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        int h = 64;
        shapes.put("model.embed_tokens.weight", new long[] {259, h});
        shapes.put("lm_head.weight", new long[] {259, h});
        shapes.put("model.norm.weight", new long[] {h});
        for (int l = 0; l < 2; l++) {
            String p = "model.layers." + l + ".";
            shapes.put(p + "input_layernorm.weight", new long[] {h});
            shapes.put(p + "post_attention_layernorm.weight", new long[] {h});
            shapes.put(p + "self_attn.q_proj.weight", new long[] {64, h});
            shapes.put(p + "self_attn.k_proj.weight", new long[] {32, h});
            shapes.put(p + "self_attn.v_proj.weight", new long[] {32, h});
            shapes.put(p + "self_attn.o_proj.weight", new long[] {h, 64});
            shapes.put(p + "mlp.gate_proj.weight", new long[] {128, h});
            shapes.put(p + "mlp.up_proj.weight", new long[] {128, h});
            shapes.put(p + "mlp.down_proj.weight", new long[] {h, 128});
        }
        assertEquals(shapes.keySet().stream().sorted().toList(), tensors.keySet().stream().sorted().toList());
        long params = 0;
        for (var e : shapes.entrySet()) {
            Tensor t = tensors.get(e.getKey());
            assertEquals("BF16", t.dtype(), e.getKey());
            assertEquals(List.of(box(e.getValue())), List.of(box(t.shape())), e.getKey());
            params += t.data().length;
        }
        assertEquals(config.parameterCount(), params);
    }

    private static Long[] box(long[] a) {
        Long[] b = new Long[a.length];
        for (int i = 0; i < a.length; i++) {
            b[i] = a[i];
        }
        return b;
    }

    @Test
    void inputIdsAreBosThenOneIdPerUtf8Byte() throws IOException {
        List<String> lines = Files.readAllLines(dir.resolve("inputs.jsonl"));
        JsonNode entries = expected.get("lines");
        assertEquals(lines.size(), entries.size());
        for (int i = 0; i < lines.size(); i++) {
            JsonNode in = JSON.readTree(lines.get(i));
            String text = in.has("text") ? in.get("text").asText() : in.get("prompt").asText() + in.get("completion").asText();
            byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
            int[] ids = new int[bytes.length + 1];
            for (int b = 0; b < bytes.length; b++) {
                ids[b + 1] = 3 + (bytes[b] & 0xFF);
            }
            JsonNode e = entries.get(i);
            assertEquals(List.of(box(ids)), List.of(box(ints(e.get("input_ids")))), "line " + i);
            int start = in.has("text") ? 1 : 1 + in.get("prompt").asText().getBytes(StandardCharsets.UTF_8).length;
            assertEquals(start, e.get("score_start").asInt(), "line " + i);
            assertEquals(ids.length - start, e.get("tokens").asInt(), "line " + i);
        }
    }

    private static Integer[] box(int[] a) {
        Integer[] b = new Integer[a.length];
        for (int i = 0; i < a.length; i++) {
            b[i] = a[i];
        }
        return b;
    }

    @Test
    void line0LogitsMatchThePythonReference() {
        int[] ids = ints(expected.get("lines").get(0).get("input_ids"));
        double[][] logits = model.logits(ids, null);
        JsonNode want = expected.get("logits_line0");
        assertEquals(ids.length, want.size());
        double max = 0;
        for (int t = 0; t < ids.length; t++) {
            assertEquals(config.vocabSize(), want.get(t).size());
            for (int v = 0; v < config.vocabSize(); v++) {
                max = Math.max(max, Math.abs(logits[t][v] - want.get(t).get(v).asDouble()));
            }
        }
        assertTrue(max <= 1e-4, "max |dlogit| " + max);
    }

    @Test
    void perLineFp32NllsMatchThePythonReference() {
        double total = 0;
        int tokens = 0;
        for (JsonNode e : expected.get("lines")) {
            int[] ids = ints(e.get("input_ids"));
            int start = e.get("score_start").asInt();
            double nll = ReferenceLlama.sequenceNll(model.logits(ids, null), ids, start);
            double want = e.get("fp32").get("nll").asDouble();
            assertEquals(want, nll, 1e-4 * Math.abs(want), "nll of " + e.get("input_ids"));
            assertEquals(e.get("fp32").get("mean_nll").asDouble(), nll / e.get("tokens").asInt(),
                    1e-4 * Math.abs(want) / e.get("tokens").asInt());
            total += nll;
            tokens += e.get("tokens").asInt();
        }
        JsonNode s = expected.get("summary").get("fp32");
        assertEquals(s.get("tokens").asInt(), tokens);
        assertEquals(s.get("mean_nll").asDouble(), total / tokens, 1e-4 * total / tokens);
        assertEquals(s.get("perplexity").asDouble(), Math.exp(total / tokens), 1e-4 * Math.exp(total / tokens));
    }

    @Test
    void packedLinesMatchTheFixtureToo() {
        JsonNode a = expected.get("lines").get(0);
        JsonNode b = expected.get("lines").get(1);
        int[] ia = ints(a.get("input_ids"));
        int[] ib = ints(b.get("input_ids"));
        int[] ids = new int[ia.length + ib.length];
        int[] seg = new int[ids.length];
        System.arraycopy(ia, 0, ids, 0, ia.length);
        System.arraycopy(ib, 0, ids, ia.length, ib.length);
        java.util.Arrays.fill(seg, ia.length, ids.length, 1);
        double[][] packed = model.logitsPacked(ids, null, seg);
        double[][] second = java.util.Arrays.copyOfRange(packed, ia.length, ids.length);
        double nll = ReferenceLlama.sequenceNll(second, ib, b.get("score_start").asInt());
        double want = b.get("fp32").get("nll").asDouble();
        assertEquals(want, nll, 1e-4 * want);
    }

    @Test
    void bf16NllsAreConsistentAndCloseToFp32() {
        int tokens = 0;
        double total = 0;
        for (JsonNode e : expected.get("lines")) {
            double f32 = e.get("fp32").get("nll").asDouble();
            double b16 = e.get("bf16").get("nll").asDouble();
            assertTrue(Math.abs(b16 - f32) <= 0.01 * f32, "bf16 " + b16 + " vs fp32 " + f32);
            assertTrue(Math.abs(b16 - f32) > 0, "the bf16 run is a different computation");
            tokens += e.get("tokens").asInt();
            total += b16;
        }
        JsonNode s = expected.get("summary").get("bf16");
        assertEquals(s.get("tokens").asInt(), tokens);
        assertEquals(s.get("mean_nll").asDouble(), total / tokens, 1e-6);
        // a random model is near uniform over the 259 ids: not degenerate, not confident
        double mean = s.get("mean_nll").asDouble();
        assertTrue(mean > 4 && mean < 9, "mean nll " + mean);
    }
}
