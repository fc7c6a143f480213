package dev.jtune.data.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.config.AxolotlKeys.Policy;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * The policy table against Axolotl's own schema (schema-keys.txt, extracted from its pydantic models at
 * {@link AxolotlKeys#COMMIT} by tools/axolotl/schema_keys.py), and each policy as a user meets it.
 */
class AxolotlKeysTest {
    private static final Path FILE = Path.of("configs/x.yml");

    private record SchemaKeys(String header, Set<String> top, Set<String> dataset) {}

    private static SchemaKeys schema() throws IOException {
        try (InputStream in = AxolotlKeysTest.class.getResourceAsStream("/axolotl/schema-keys.txt")) {
            String header = null;
            Set<String> top = new LinkedHashSet<>();
            Set<String> dataset = new LinkedHashSet<>();
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (line.startsWith("#")) {
                    if (header == null) header = line;
                    continue;
                }
                String[] cols = line.split(" ");
                (cols[0].equals("top") ? top : dataset).add(cols[1]); // dataset, dataset-rl
            }
            return new SchemaKeys(header, top, dataset);
        }
    }

    @Test
    void everySchemaKeyHasExactlyOnePolicy() throws IOException {
        SchemaKeys schema = schema();
        assertTrue(schema.header().endsWith("@" + AxolotlKeys.COMMIT), "the key list and the table name one commit: "
                + schema.header());
        assertTrue(schema.top().size() > 400 && schema.dataset().size() > 30, "the whole schema, not a part");
        List<String> missing = new ArrayList<>();
        for (String key : schema.top()) if (!AxolotlKeys.top().containsKey(key)) missing.add(key);
        for (String key : schema.dataset()) if (!AxolotlKeys.dataset().containsKey(key)) missing.add("datasets[]." + key);
        assertEquals(List.of(), missing, "keys of Axolotl's schema without a policy");
        // The table holds nothing else but jtune's own keys and named legacy ones.
        Set<String> extra = new TreeSet<>(AxolotlKeys.top().keySet());
        extra.removeAll(schema.top());
        Set<String> declared = new TreeSet<>(AxolotlKeys.JTUNE_ONLY);
        declared.addAll(AxolotlKeys.LEGACY);
        assertEquals(declared, extra);
        Set<String> extraDataset = new TreeSet<>(AxolotlKeys.dataset().keySet());
        extraDataset.removeAll(schema.dataset());
        assertEquals(Set.of(), extraDataset);
    }

    @Test
    void implementedMeansJtuneReadsIt() {
        // Every key jtune reads is in the table; every key the table calls implemented (outright) is read.
        for (String key : ConfigReader.TOP_LEVEL_KEYS) {
            assertTrue(AxolotlKeys.top().containsKey(key), key + " is read but has no policy");
        }
        AxolotlKeys.top().values().stream()
                .filter(r -> r.policy() == Policy.IMPLEMENTED && r.judge().isEmpty())
                .filter(r -> !AxolotlKeys.VOCABULARY.contains(r.key()))
                .forEach(r -> assertTrue(ConfigReader.TOP_LEVEL_KEYS.contains(r.key()), r.key() + " is not read"));
        AxolotlKeys.dataset().values().stream().filter(r -> r.policy() == Policy.IMPLEMENTED)
                .forEach(r -> assertTrue(ConfigReader.DATASET_KEYS.contains(r.key()), r.key() + " is not read"));
        // Not the other way round: a key jtune reads in a dataset entry is implemented there.
        for (String key : ConfigReader.DATASET_KEYS) {
            AxolotlKeys.Rule rule = AxolotlKeys.dataset().get(key);
            assertTrue(rule == null || rule.policy() == Policy.IMPLEMENTED, key);
        }
    }

    private static TrainConfig parse(String yaml) {
        return TrainConfig.parse(yaml, FILE);
    }

    private static ConfigException fails(String yaml) {
        return assertThrows(ConfigException.class, () -> parse(yaml));
    }

    @Test
    void equivalentKeysPrintOneInfoLine() {
        TrainConfig config = parse("base_model: m\nflash_attention: true\nliger_rms_norm: true\ntorch_compile: true\n");
        List<String> lines = config.notes().stream().map(ConfigNote::toString).toList();
        assertEquals(3, lines.size(), lines.toString());
        assertTrue(lines.get(0).startsWith("info: configs/x.yml:2:1: flash_attention: true — jtune computes exact"
                + " attention"), lines.get(0));
        assertTrue(lines.get(1).startsWith("info: configs/x.yml:3:1: liger_rms_norm: true — jtune runs its own fused"),
                lines.get(1));
        assertTrue(lines.get(2).startsWith("info: configs/x.yml:4:1: torch_compile: true — jtune does not compile"),
                lines.get(2));
        // Still read where jtune reads it: flash_attention is a typed trainer key.
        assertEquals(java.util.Optional.of(true), config.trainer().bool("flash_attention"));
    }

    @Test
    void offlineKeysPrintOneWarningLine() {
        TrainConfig config = parse("base_model: m\nhub_model_id: me/model\nwandb_project: p\n");
        assertEquals(List.of(ConfigNote.Level.WARNING, ConfigNote.Level.WARNING),
                config.notes().stream().map(ConfigNote::level).toList());
        assertEquals("warning: configs/x.yml:2:1: hub_model_id: me/model — not pushed: jtune works offline; the"
                + " result stays in output_dir", config.notes().get(0).toString());
        assertEquals(3, config.notes().get(1).line());
    }

    @Test
    void refusedKeysNameKeyValueAndWayOut() {
        ConfigException e = fails("base_model: m\nrl: dpo\n");
        assertEquals("configs/x.yml:2:1: rl: dpo is not supported: jtune trains causal-LM SFT only (full, LoRA,"
                + " QLoRA); preference, reward and RL training are not implemented", e.getMessage());
        assertTrue(fails("base_model: m\ngptq: true\n").getMessage()
                .contains("gptq: true is not supported: jtune quantizes the frozen base as bitsandbytes does"));
        assertTrue(fails("base_model: m\nmora: true\n").getMessage()
                .contains("mora: true is not supported: jtune's adapters are plain LoRA"));
        // fp8 is implemented (quant.Fp8): read, not refused.
        assertTrue(parse("base_model: m\nfp8: true\n").trainer().has("fp8"));
        // deepspeed is read (the trainer maps and checks its JSON when the config loads): no error here.
        assertTrue(parse("base_model: m\ndeepspeed: zero3.json\n").trainer().has("deepspeed"));
    }

    @Test
    void offAndEmptyValuesAskForNothing() {
        // Empty is absent; false (or an empty list) for a key jtune lacks asks for nothing it lacks.
        TrainConfig config = parse("""
                base_model: m
                hub_model_id:
                rl:
                deepspeed:
                load_in_8bit: false
                group_by_length: false
                plugins: []
                flash_attention: false
                wandb_watch:
                """);
        assertEquals(List.of(), config.notes());
        assertFalse(config.trainer().has("deepspeed"));
    }

    @Test
    void valuesDecideWhereTheyShould() {
        var paged = parse("base_model: m\noptimizer: paged_adamw_32bit\n").notes();
        assertEquals(1, paged.size());
        assertTrue(paged.get(0).note().contains("adamw_torch") && paged.get(0).note().contains("GPU memory policy"));
        assertEquals(List.of(), parse("base_model: m\noptimizer: adamw_torch_fused\n").notes());
        assertEquals(List.of(), parse("base_model: m\noptimizer: adamw_bnb_8bit\n").notes());
        assertEquals(List.of(), parse("base_model: m\noptimizer: adamw_8bit\n").notes());
        var paged8 = parse("base_model: m\noptimizer: paged_adamw_8bit\n").notes();
        assertTrue(paged8.get(0).note().contains("8-bit AdamW") && paged8.get(0).note().contains("GPU memory policy"));
        assertEquals(List.of(), parse("base_model: m\noptimizer: adamw_torch_8bit\n").notes());
        assertEquals(List.of(), parse("base_model: m\noptimizer: adamw_torch_4bit\n").notes());
        assertTrue(fails("base_model: m\noptimizer: lion_8bit\n").getMessage()
                .startsWith("configs/x.yml:2:1: optimizer: lion_8bit is not supported: jtune implements AdamW"));
        assertTrue(fails("base_model: m\nlr_scheduler: one_cycle\n").getMessage().contains("lr_scheduler: one_cycle"));

        assertEquals(ConfigNote.Level.INFO,
                parse("base_model: m\nattn_implementation: flash_attention_2\n").notes().get(0).level());
        assertTrue(fails("base_model: m\nattn_implementation: sage\n").getMessage().contains("exact attention"));

        var plugins = parse("base_model: m\nplugins:\n  - axolotl.integrations.liger.LigerPlugin\n"
                + "  - axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin\n").notes();
        assertEquals(1, plugins.size(), "one line for the key");
        assertEquals("plugins", plugins.get(0).key());
        // What the cross-entropy kernels save, jtune's chunked loss does: the info line says so.
        var cce = parse("base_model: m\ncut_cross_entropy: true\nchunked_cross_entropy_num_chunks: 8\n").notes();
        assertEquals(2, cce.size());
        assertTrue(cce.get(0).note().contains("chunks of trained tokens"), cce.get(0).note());
        assertTrue(fails("base_model: m\nplugins:\n  - axolotl.integrations.kd.KDPlugin\n").getMessage()
                .contains("plugin axolotl.integrations.kd.KDPlugin is not available"));
        // SwanLab's plugin registers its tracker's callbacks only: a warning, like wandb's keys.
        var swanlab = parse("base_model: m\nplugins:\n  - axolotl.integrations.swanlab.SwanLabPlugin\n"
                + "use_swanlab: true\n").notes();
        assertEquals(2, swanlab.size(), swanlab.toString());
        assertEquals(ConfigNote.Level.WARNING, swanlab.get(0).level());
        assertTrue(swanlab.get(0).note().startsWith("SwanLab: not sent: jtune works offline"), swanlab.toString());
        assertTrue(fails("base_model: m\nplugins:\n  - axolotl.integrations.swanlab.SwanLabPlugin\n"
                + "  - axolotl.integrations.kd.KDPlugin\n").getMessage().contains("KDPlugin is not available"));

        // Offloading moves tensors, not values: one info line each, and checkpointing stays on.
        TrainConfig offload = parse("base_model: m\ngradient_checkpointing: offload\nactivation_offloading: legacy\n"
                + "fsdp_config:\n  fsdp_offload_params: true\n");
        List<String> lines = offload.notes().stream().map(ConfigNote::toString).toList();
        assertEquals(3, lines.size(), lines.toString());
        assertTrue(lines.get(0).startsWith("info: configs/x.yml:2:1: gradient_checkpointing: offload — jtune keeps"
                + " saved activations in memory"), lines.get(0));
        assertTrue(lines.get(1).startsWith("info: configs/x.yml:3:1: activation_offloading: legacy — "), lines.get(1));
        assertTrue(lines.get(2).startsWith("info: configs/x.yml:4:1: fsdp_config: {fsdp_offload_params: true} — jtune"
                + " keeps the sharded parameters"), lines.get(2));
        assertEquals(java.util.Optional.of("offload"), offload.trainer().value("gradient_checkpointing"));
        assertEquals(List.of(), parse("base_model: m\nfsdp_config:\n  fsdp_offload_params: false\n").notes());
        assertTrue(fails("base_model: m\nactivation_offloading: gpu\n").getMessage()
                .contains("activation_offloading: gpu is not supported: give true, legacy, disk or hidden_states"));
        assertTrue(fails("base_model: m\ngradient_checkpointing: unsloth\n").getMessage()
                .contains("gradient_checkpointing: unsloth is not supported"));
        assertEquals(List.of(), parse("base_model: m\ngradient_checkpointing: true\nsequence_parallel_degree: 1\n"
                + "base_model_config: m\n").notes());
        // Context parallelism is equivalent here (one process computes a group's share); expert parallelism is not.
        assertTrue(parse("base_model: m\nsequence_parallel_degree: 2\n").notes().get(0).toString()
                .contains("sequence_parallel_degree: 2 — the ranks of a tensor/context-parallel group"));
        assertTrue(fails("base_model: m\nexpert_parallel_size: 2\n").getMessage().contains("data-parallel only"));
        assertTrue(fails("base_model: m\nbase_model_config: other\n").getMessage()
                .contains("base_model_config: other is not supported"));
    }

    @Test
    void datasetEntryKeysHavePoliciesToo() {
        TrainConfig config = parse("""
                base_model: m
                datasets:
                  - path: d.jsonl
                    type: alpaca
                    revision: main
                """);
        assertEquals("warning: configs/x.yml:5:5: datasets[0].revision: main — jtune reads the dataset from disk, as"
                + " it is there", config.notes().get(0).toString());
        assertTrue(fails("base_model: m\ndatasets:\n  - path: d\n    type: alpaca\n    shards: 4\n").getMessage()
                .startsWith("configs/x.yml:5:5: datasets[0]: shards: 4 is not supported"));
    }

    @Test
    void keysOutsideTheSchemaAreErrorsWithAHint() {
        // A real Axolotl key is not "unknown", and a misspelling of one is pointed at it.
        parse("base_model: m\ngradient_checkpointing_kwargs:\n  use_reentrant: false\n");
        assertEquals("configs/x.yml:2:1: unknown key 'gradient_checkpointing_kwarg' (did you mean"
                + " 'gradient_checkpointing_kwargs'?)", fails("base_model: m\ngradient_checkpointing_kwarg: {}\n")
                .getMessage());
        assertEquals("configs/x.yml:2:1: unknown key 'wandb_projct' (did you mean 'wandb_project'?)",
                fails("base_model: m\nwandb_projct: x\n").getMessage());
    }

    @Test
    void everyProblemOfAFileIsReportedInOneRun() {
        ConfigException e = fails("""
                base_model: m
                lerning_rate: 0.1
                rl: dpo
                sequence_len: -3
                datasets:
                  - path: d.jsonl
                    type: alpaca
                    feild_messages: x
                  - path: e.jsonl
                    type: nope
                optimizer: lion_8bit
                """);
        List<String> each = e.problems().stream().map(ConfigException::getMessage).toList();
        assertEquals(6, each.size(), each.toString());
        assertEquals(List.of(2, 3, 4, 8, 10, 11), e.problems().stream().map(ConfigException::line).toList());
        assertTrue(each.get(0).startsWith("configs/x.yml:2:1: unknown key 'lerning_rate'"), each.get(0));
        assertTrue(each.get(1).startsWith("configs/x.yml:3:1: rl: dpo is not supported"), each.get(1));
        assertTrue(each.get(2).startsWith("configs/x.yml:4:15: sequence_len"), each.get(2));
        assertTrue(each.get(3).startsWith("configs/x.yml:8:5: datasets[0]: unknown key 'feild_messages'"), each.get(3));
        assertTrue(each.get(4).startsWith("configs/x.yml:10:11: datasets[1].type"), each.get(4));
        assertTrue(each.get(5).startsWith("configs/x.yml:11:1: optimizer: lion_8bit"), each.get(5));
        // The message lists them all, one per line, under a count.
        assertEquals("configs/x.yml: 6 problems\n" + String.join("\n", each), e.getMessage());
        assertEquals(2, e.line());
    }
}
