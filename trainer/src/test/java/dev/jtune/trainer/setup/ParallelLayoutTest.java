package dev.jtune.trainer.setup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.config.ConfigException;
import dev.jtune.data.config.ConfigProblems;
import dev.jtune.data.config.TrainConfig;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

/**
 * Axolotl's parallelism degrees on jtune's processes: the data-parallel layout (and so the global batch) is the one
 * Axolotl builds for a world of processes × tp × cp, and a process count Axolotl would stop on is refused.
 * The reference is Axolotl's own layout function, run by {@code parallel-layout/make_fixture.py}.
 */
class ParallelLayoutTest {
    private static final Path FILE = Path.of("configs/p.yml");

    private static OptionalInt opt(JsonNode n) {
        return n.isNull() ? OptionalInt.empty() : OptionalInt.of(n.asInt());
    }

    @Test
    void layoutIsAxolotlsForEveryCaseOfTheGrid() throws Exception {
        JsonNode root;
        try (InputStream in = getClass().getResourceAsStream("/parallel-layout/axolotl_layouts.json")) {
            root = new ObjectMapper().readTree(in);
        }
        int ok = 0;
        int stops = 0;
        for (JsonNode c : root.get("cases")) {
            int processes = c.get(0).asInt();
            ParallelLayout layout = new ParallelLayout(c.get(1).isNull() ? 1 : c.get(1).asInt(),
                    c.get(2).isNull() ? 1 : c.get(2).asInt(), opt(c.get(3)), opt(c.get(4)));
            boolean fsdp = c.get(5).asBoolean();
            if (c.get(8).isNull()) {
                var dp = layout.resolve(processes, fsdp);
                assertEquals(List.of(c.get(6).asInt(), c.get(7).asInt()), List.of(dp.dpReplicate(), dp.dpShard()),
                        c.toString());
                // Axolotl's world over tp × cp: every process is one data-parallel rank.
                assertEquals(processes, dp.ranks(), c.toString());
                ok++;
            } else {
                var e = assertThrows(IllegalArgumentException.class, () -> layout.resolve(processes, fsdp),
                        c.toString());
                String axolotl = c.get(8).asText();
                assertTrue(e.getMessage().contains(axolotl.substring(0, Math.min(axolotl.length(), 60))),
                        c + " → " + e.getMessage());
                stops++;
            }
        }
        assertEquals(1152, ok + stops);
        assertTrue(ok > 300 && stops > 300, ok + " layouts, " + stops + " stops");
    }

    /** The four example configs of Axolotl that set degrees, on the process counts of their own layouts. */
    @Test
    void axolotlsExampleLayouts() {
        // examples/distributed-parallel/llama-3_1-8b-hsdp-tp.yaml: 16 devices = 8 data ranks × tp 2.
        var hsdp = new ParallelLayout(2, 1, OptionalInt.of(4), OptionalInt.of(2));
        assertEquals(new ParallelLayout.DataParallel(2, 4), hsdp.resolve(8, true));
        var e = assertThrows(IllegalArgumentException.class, () -> hsdp.resolve(1, true));
        assertTrue(e.getMessage().startsWith("dp_shard_size 4, dp_replicate_size 2, tensor_parallel_size 2: this run"
                + " has 1 process, which stands for Axolotl's world of 2 devices"), e.getMessage());
        assertTrue(e.getMessage().contains("'ParallelismConfig total_size (4) does not match num_processes (2)."),
                e.getMessage());
        assertTrue(e.getMessage().contains("./launch.sh --nproc-per-node 8"), e.getMessage());
        // examples/distributed-parallel/qwen3-8b-fsdp-tp-cp.yaml: 8 devices = 2 data ranks × tp 2 × cp 2; on one
        // process (Axolotl's 4 devices) its rule leaves no room for dp_shard 2 and runs one data rank.
        var qwen = new ParallelLayout(2, 2, OptionalInt.of(2), OptionalInt.empty());
        assertEquals(new ParallelLayout.DataParallel(1, 2), qwen.resolve(2, true));
        assertEquals(new ParallelLayout.DataParallel(1, 1), qwen.resolve(1, true));
        assertThrows(IllegalArgumentException.class, () -> qwen.resolve(3, true));
        // examples/alst/*: context_parallel_size 8 alone, dp_shard fills the rest: any process count.
        var alst = new ParallelLayout(1, 8, OptionalInt.empty(), OptionalInt.empty());
        for (int n = 1; n <= 4; n++) assertEquals(n, alst.resolve(n, false).ranks());
    }

    @Test
    void globalBatchLineCountsDataRanksOnly() {
        var qwen = new ParallelLayout(2, 2, OptionalInt.of(2), OptionalInt.empty());
        String note = qwen.note(qwen.resolve(2, true), 1, 3);
        assertTrue(note.startsWith("info: parallelism: 2 processes = Axolotl's data-parallel ranks (dp_replicate 1 ×"
                + " dp_shard 2) of its world of 8"), note);
        assertTrue(note.endsWith("global batch 1 × 3 × 2 = 6 micro-batch rows per step, as Axolotl's"), note);
    }

    private static List<String> problems(String yaml, OptionalInt processes) {
        TrainConfig config = TrainConfig.parse("base_model: m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n"
                + yaml, FILE);
        ConfigProblems problems = new ConfigProblems(config);
        ParallelLayout.check(config, problems);
        processes.ifPresent(n -> problems.run(ParallelLayout.keyOf(config.trainer()),
                () -> ParallelLayout.of(config.trainer()).resolve(n, ConfigChecks.fsdpAsked(config.trainer()))));
        return problems.problems().stream().map(p -> p.line() + ":" + p.column() + " " + p.problem()).toList();
    }

    @Test
    void axolotlsValidatorsRefuseWhatItRefuses() {
        List<String> found = problems("""
                context_parallel_size: 2
                tensor_parallel_size: 2
                sample_packing: true
                micro_batch_size: 2
                optimizer: adamw_bnb_8bit
                attn_implementation: sdpa
                """, OptionalInt.empty());
        assertEquals(3, found.size(), found.toString());
        assertTrue(found.get(0).startsWith("5:1 context_parallel_size 2 with sample_packing and micro_batch_size 2 is"
                + " refused"), found.get(0));
        assertTrue(found.get(1).startsWith("5:1 context_parallel_size 2 is refused without flash attention"),
                found.get(1));
        assertTrue(found.get(2).startsWith("6:1 tensor_parallel_size 2 with optimizer: adamw_bnb_8bit is refused"),
                found.get(2));
        // The same degrees with flash attention, one row per micro-batch and torch's AdamW: nothing to say.
        assertEquals(List.of(), problems("""
                context_parallel_size: 2
                tensor_parallel_size: 2
                sample_packing: true
                micro_batch_size: 1
                attn_implementation: flash_attention_2
                """, OptionalInt.empty()));
    }

    @Test
    void processCountIsCheckedAtTheFirstDegree() {
        String yaml = """
                fsdp_config:
                  fsdp_version: 2
                dp_shard_size: 4
                dp_replicate_size: 2
                """;
        List<String> found = problems(yaml, OptionalInt.of(4));
        assertEquals(1, found.size(), found.toString());
        assertTrue(found.get(0).startsWith("7:1 dp_shard_size 4, dp_replicate_size 2: this run has 4 processes"),
                found.get(0));
        assertEquals(List.of(), problems(yaml, OptionalInt.of(8)));
        // Without FSDP Axolotl refuses dp_shard_size as soon as the world has room for it.
        List<String> noFsdp = problems("dp_shard_size: 2\n", OptionalInt.of(2));
        assertTrue(noFsdp.get(0).contains("'dp_shard_size was configured without a corresponding fsdp_config!"),
                noFsdp.toString());
        assertTrue(noFsdp.get(0).startsWith("5:1 "), noFsdp.toString());
        // A degree below 1.
        assertTrue(problems("tensor_parallel_size: 0\n", OptionalInt.empty()).get(0)
                .startsWith("5:1 tensor_parallel_size must be a whole number of at least 1, got 0"));
    }

    @Test
    void degreesEarnInfoLinesNotErrors() {
        TrainConfig config = TrainConfig.parse("""
                base_model: m
                tensor_parallel_size: 2
                dp_shard_size: 1
                ring_attn_func: batch_zigzag
                """, FILE);
        List<String> notes = config.notes().stream().map(Object::toString).toList();
        assertEquals(2, notes.size(), notes.toString());
        assertTrue(notes.get(0).startsWith("info: configs/p.yml:2:1: tensor_parallel_size: 2 — the ranks of a"
                + " tensor/context-parallel group share one micro-batch"), notes.get(0));
        var e = assertThrows(ConfigException.class, () -> TrainConfig.parse("base_model: m\nring_attn_func: ring\n",
                FILE));
        assertTrue(e.getMessage().contains("ring_attn_func: ring is not supported"), e.getMessage());
    }
}
