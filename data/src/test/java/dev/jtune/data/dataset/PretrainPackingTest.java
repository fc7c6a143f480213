package dev.jtune.data.dataset;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.jtune.data.config.DatasetFormat;
import dev.jtune.data.tokenizer.PublishedTokenizers;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * Axolotl's pretraining path against {@code tools/reference/axolotl_pretrain_expected.py}
 * (resources/pretrain/expected.json): its PretrainTokenizationStrategy windows run through transformers 5.18's
 * tokenizers (overlap, EOS per window, the filter to 2..sequence_len tokens; the Qwen tokenizer's ByteLevel
 * post-processor keeps no overflow, so one window per text there), then pack_group's first fit with the
 * per-bin sample cap and the collator's concatenation (ids, labels, position ids restarting per document).
 */
class PretrainPackingTest {
    private static JsonNode expected;

    @BeforeAll
    static void load() throws IOException {
        try (InputStream in = PretrainPackingTest.class.getResourceAsStream("/pretrain/expected.json")) {
            expected = new ObjectMapper().readTree(in);
        }
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    private static List<Sample> windows(Tokenizer tokenizer) {
        int seqLen = expected.get("sequence_len").asInt();
        PretrainSamples builder = new PretrainSamples(new DatasetFormat.Pretrain("body"), tokenizer, seqLen);
        List<Sample> out = new ArrayList<>();
        int line = 0;
        for (JsonNode text : expected.get("texts")) {
            var row = JsonNodeFactory.instance.objectNode().put("body", text.asText());
            for (Sample s : builder.build(new SourceRow(Path.of("t.jsonl"), ++line, row))) {
                if (s.length() >= 2 && s.length() <= seqLen) out.add(s);
            }
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama2", "qwen3"})
    void windowsAndPackedRowsAreAxolotls(String name) {
        JsonNode want = expected.get("tokenizers").get(name);
        int seqLen = expected.get("sequence_len").asInt();
        try (Tokenizer tokenizer = Tokenizer.load(PublishedTokenizers.dir(name))) {
            List<Sample> samples = windows(tokenizer);
            assertEquals(want.get("samples").size(), samples.size(), name + ": number of windows");
            for (int i = 0; i < samples.size(); i++) {
                int[] ids = ints(want.get("samples").get(i));
                assertArrayEquals(ids, samples.get(i).inputIds(), name + " window " + i);
                assertArrayEquals(ids, samples.get(i).labels(), name + " window " + i + " labels: all trained");
            }
            int capacity = expected.get("micro_batch_size").asInt() * seqLen;
            List<int[]> bins = Packer.firstFit(samples.stream().mapToInt(Sample::length).toArray(), capacity,
                    expected.get("bin_size").asInt());
            List<Row> rows = Preprocessor.packFirstFit(samples, capacity, expected.get("bin_size").asInt());
            assertEquals(want.get("rows").size(), rows.size(), name + ": packed rows");
            for (int r = 0; r < rows.size(); r++) {
                JsonNode w = want.get("rows").get(r);
                assertArrayEquals(ints(w.get("bin")), bins.get(r), name + " bin " + r);
                Row row = rows.get(r);
                int n = row.length(); // Axolotl pads to a multiple of sequence_len; jtune's collator pads later
                assertEquals(0, ints(w.get("input_ids")).length % seqLen);
                assertArrayEquals(java.util.Arrays.copyOf(ints(w.get("input_ids")), n), row.inputIds(), name + " row " + r);
                assertArrayEquals(java.util.Arrays.copyOf(ints(w.get("position_ids")), n), row.positionIds(),
                        name + " row " + r + " position ids");
                int[] labels = java.util.Arrays.copyOf(ints(w.get("labels")), n);
                // jtune's packing policy (Row): a document's first label, which would be predicted from the
                // previous document's EOS, is not trained; every other label is Axolotl's.
                for (int k = 0; k < row.cuSeqlens().length - 1; k++) labels[row.cuSeqlens()[k]] = Sample.IGNORE_INDEX;
                assertArrayEquals(labels, row.labels(), name + " row " + r + " labels");
                for (int k = n; k < ints(w.get("labels")).length; k++) {
                    assertEquals(Sample.IGNORE_INDEX, w.get("labels").get(k).asInt(), "Axolotl's padding is untrained");
                }
            }
        }
    }

    @Test
    void firstFitKeepsOrderAndCapsSamplesPerBin() {
        // first fit, not first-fit-decreasing: 3 goes into the first bin although 5 came later
        assertEquals(List.of(List.of(0, 1), List.of(2, 3)), bins(Packer.firstFit(new int[] {6, 3, 5, 4}, 10, 200)));
        // at most two per bin: the third 1-token sample opens a new bin despite the room
        assertEquals(List.of(List.of(0, 1), List.of(2, 3), List.of(4)),
                bins(Packer.firstFit(new int[] {1, 1, 1, 1, 1}, 10, 2)));
        assertNotEquals(bins(Packer.assign(new int[] {6, 3, 5, 4}, 10)),
                bins(Packer.firstFit(new int[] {6, 3, 5, 4}, 10, 200)));
    }

    private static List<List<Integer>> bins(List<int[]> bins) {
        return bins.stream().map(b -> java.util.Arrays.stream(b).boxed().toList()).toList();
    }

    @Test
    void bufferedShuffleIsAPermutationThatMovesItemsOnlyWithinTheBuffer() {
        List<Integer> items = new ArrayList<>();
        for (int i = 0; i < 1000; i++) items.add(i);
        assertEquals(items, Preprocessor.bufferShuffled(items, 1, new Random(3)), "a buffer of one keeps the order");
        List<Integer> out = Preprocessor.bufferShuffled(items, 50, new Random(3));
        assertEquals(items, out.stream().sorted().toList());
        assertNotEquals(items, out);
        for (int pos = 0; pos < out.size(); pos++) {
            // item k enters the buffer after k - 50 items were emitted, so it cannot come out earlier
            assertTrue(pos >= out.get(pos) - 50, "item " + out.get(pos) + " at " + pos);
        }
        List<Integer> whole = Preprocessor.bufferShuffled(items, 5000, new Random(3));
        assertNotEquals(out, whole);
    }
}
