package dev.jtune.data.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every kind of config error, with its exact file:line:column and message. */
class ConfigErrorsTest {
    private static final Path FILE = Path.of("configs/x.yml");

    private static String fails(String yaml) {
        return assertThrows(ConfigException.class, () -> TrainConfig.parse(yaml, FILE)).getMessage();
    }

    @Test
    void unknownTopLevelKeys() {
        assertEquals("configs/x.yml:2:1: unknown key 'sequence_length' (did you mean 'sequence_len'?)",
                fails("base_model: m\nsequence_length: 512\n"));
        assertEquals("configs/x.yml:3:1: unknown key 'lerning_rate' (did you mean 'learning_rate'?)",
                fails("base_model: m\nseed: 1\nlerning_rate: 0.1\n"));
        assertEquals("configs/x.yml:1:1: unknown key 'Base_Model' (did you mean 'base_model'?)",
                fails("Base_Model: m\nbase_model: m\n"));
        assertEquals("configs/x.yml:2:1: unknown key 'zzz_top'", fails("base_model: m\nzzz_top: 1\n"));
    }

    @Test
    void unknownNestedKeys() {
        assertEquals("configs/x.yml:5:5: datasets[0]: unknown key 'feild_messages' (did you mean 'field_messages'?)",
                fails("""
                        base_model: m
                        datasets:
                          - path: a
                            type: chat_template
                            feild_messages: x
                        """));
        assertEquals("configs/x.yml:7:9: datasets[1].message_property_mappings: unknown key 'contnet' "
                + "(did you mean 'content'?)", fails("""
                        base_model: m
                        datasets:
                          - {path: a, type: completion}
                          - path: b
                            type: chat_template
                            message_property_mappings:
                                contnet: text
                        """));
        assertEquals("configs/x.yml:3:3: special_tokens: unknown key 'eos_tokn' (did you mean 'eos_token'?)",
                fails("base_model: m\nspecial_tokens:\n  eos_tokn: x\n"));
    }

    @Test
    void preferenceDatasetTypesAreNamedAsSuch() {
        // chat_template.default is prompt_strategies/dpo/chat_template.py's default(): read only with rl: dpo.
        assertEquals("configs/x.yml:4:11: datasets[0].type: 'chat_template.default' is one of Axolotl's"
                + " preference/reward data formats (its prompt_strategies/dpo, kto, orpo, bradley_terry or ebft"
                + " modules), read only with rl: or reward_model:; jtune trains SFT only: for conversations give"
                + " type: chat_template", fails("""
                        base_model: m
                        datasets:
                          - path: a
                            type: chat_template.default
                        """));
        assertTrue(fails("base_model: m\ndatasets:\n  - {path: a, type: llama3.ultra}\n")
                .contains("'llama3.ultra' is one of Axolotl's preference/reward data formats"));
        assertTrue(fails("base_model: m\ndatasets:\n  - {path: a, type: alpaca:fancy}\n")
                .contains("'fancy' is not one of Axolotl's prompt styles for alpaca: instruct, chat, chatml, phi"));
        assertTrue(fails("base_model: m\ndatasets:\n  - {path: a, type: jeopardy, field_output: x}\n")
                .contains("'field_output' does not apply to type jeopardy"));
    }

    @Test
    void chatTemplateNamesAreCheckedAtLoad() {
        String qwen4 = fails("base_model: m\nchat_template: qwen4\n");
        assertTrue(qwen4.startsWith("configs/x.yml:2:16: chat_template: 'qwen4' is not a chat template jtune has:"
                + " expected one of alpaca, "), qwen4);
        assertTrue(qwen4.endsWith("(did you mean 'qwen3'?)"), qwen4);
        assertTrue(fails("base_model: m\nchat_template: phi_4\n").contains("Axolotl's schema does not accept phi_4"));
        assertTrue(fails("base_model: m\ndatasets:\n  - {path: a, type: chat_template, chat_template: gemma33}\n")
                .contains("datasets[0].chat_template: 'gemma33' is not a chat template jtune has"));
        for (String ok : java.util.List.of("qwen3", "gemma3", "phi_3", "llama4", "mistral_v7_tekken", "chatml",
                "tokenizer_default", "tokenizer_default_fallback_qwen_25", "llama3")) {
            assertEquals(java.util.Optional.of(ok), TrainConfig.parse("base_model: m\nchat_template: " + ok + "\n", FILE)
                    .chatTemplate());
        }
    }

    @Test
    void cosineRatiosOutsideTheUnitInterval() {
        assertEquals("configs/x.yml:3:1: cosine_min_lr_ratio: 1.5 is not supported: give a ratio between 0.0 and"
                + " 1.0 (of learning_rate; Axolotl asserts the same)",
                fails("base_model: m\nlr_scheduler: cosine\ncosine_min_lr_ratio: 1.5\n"));
        assertEquals("configs/x.yml:2:1: lr_scheduler_kwargs: {eta_min: 1.0E-6} is not supported: jtune reads"
                + " lr_scheduler_kwargs num_cycles (cosine schedules) and min_lr or min_lr_rate (lr_scheduler:"
                + " cosine_with_min_lr), as numbers", fails("base_model: m\nlr_scheduler_kwargs: {eta_min: 1.0e-6}\n"));
        assertEquals(java.util.Map.of("min_lr_rate", 0.1), TrainConfig.parse("base_model: m\nlr_scheduler:"
                + " cosine_with_min_lr\nlr_scheduler_kwargs: {min_lr_rate: 0.1}\n", FILE).trainer()
                .mapping("lr_scheduler_kwargs"));
        TrainConfig ok = TrainConfig.parse("base_model: m\ncosine_min_lr_ratio: 0.1\ncosine_constant_lr_ratio: 0\n",
                FILE);
        assertEquals(java.util.Optional.of(0.1), ok.trainer().value("cosine_min_lr_ratio"));
        assertEquals(java.util.Optional.of(0.0), ok.trainer().value("cosine_constant_lr_ratio"));
    }

    @Test
    void valuesOutsideClosedSets() {
        assertEquals("configs/x.yml:4:11: datasets[0].type: 'alpacca' is not one of alpaca, sharegpt, chat_template, "
                + "completion, input_output, jeopardy, oasst, gpteacher, summarizetldr, explainchoice, concisechoice, "
                + "user_defined (did you mean 'alpaca'?)", fails("""
                        base_model: m
                        datasets:
                          - path: a
                            type: alpacca
                        """));
        assertEquals("configs/x.yml:2:25: excess_length_strategy: 'truncat' is not one of drop, truncate "
                + "(did you mean 'truncate'?)", fails("base_model: m\nexcess_length_strategy: truncat\n"));
        assertEquals("configs/x.yml:5:19: datasets[0].train_on_eos: 'every' is not one of turn, last, all, none",
                fails("""
                        base_model: m
                        datasets:
                          - path: a
                            type: sharegpt
                            train_on_eos: every
                        """));
        assertEquals("configs/x.yml:2:10: adapter: 'qlor' is not one of lora, qlora (did you mean 'qlora'?)",
                fails("base_model: m\nadapter: qlor\n"));
        assertEquals("configs/x.yml:2:49: datasets[0].ds_type: 'jsonl' is not one of json, csv, parquet, arrow, "
                + "text (did you mean 'json'?)", fails("base_model: m\ndatasets: [{path: a, type: completion, ds_type: jsonl}]\n"));
    }

    @Test
    void duplicateKeys() {
        assertEquals("configs/x.yml:3:1: duplicate key 'seed' (first given on line 2)",
                fails("base_model: m\nseed: 1\nseed: 2\n"));
        assertEquals("configs/x.yml:5:5: datasets[0]: duplicate key 'path' (first given on line 3)", fails("""
                base_model: m
                datasets:
                  - path: a
                    type: completion
                    path: b
                """));
        assertEquals("configs/x.yml:4:3: fsdp_config: duplicate key 'x' (first given on line 3)",
                fails("base_model: m\nfsdp_config:\n  x: 1\n  x: 1\n"));
    }

    @Test
    void wrongTypes() {
        assertEquals("configs/x.yml:2:15: sequence_len: expected an integer, got string 'abc'",
                fails("base_model: m\nsequence_len: abc\n"));
        assertEquals("configs/x.yml:2:15: sequence_len: expected an integer >= 1, got 0",
                fails("base_model: m\nsequence_len: 0\n"));
        assertEquals("configs/x.yml:2:17: sample_packing: expected true or false, got integer '1'",
                fails("base_model: m\nsample_packing: 1\n"));
        assertEquals("configs/x.yml:2:9: lora_r: expected an integer, got number '8.5'",
                fails("base_model: m\nlora_r: 8.5\n"));
        assertEquals("configs/x.yml:2:16: learning_rate: expected a number, got string '0.1'",
                fails("base_model: m\nlearning_rate: \"0.1\"\n"));
        assertEquals("configs/x.yml:2:16: learning_rate: expected a finite number, got string 'fast'",
                fails("base_model: m\nlearning_rate: fast\n"));
        assertEquals("configs/x.yml:2:13: model_type: expected a string, got integer '7'",
                fails("base_model: m\nmodel_type: 7\n"));
        assertEquals("configs/x.yml:2:11: datasets: expected a list, got string 'foo'",
                fails("base_model: m\ndatasets: foo\n"));
        assertEquals("configs/x.yml:3:5: datasets[0]: expected a mapping, got string 'a.jsonl'",
                fails("base_model: m\ndatasets:\n  - a.jsonl\n"));
        assertEquals("configs/x.yml:3:3: lora_target_modules: expected a list, got a mapping",
                fails("base_model: m\nlora_target_modules:\n  q: 1\n"));
        assertEquals("configs/x.yml:2:7: bf16: expected true, false or 'auto', got string 'maybe'",
                fails("base_model: m\nbf16: maybe\n"));
        assertEquals("configs/x.yml:2:14: fsdp_config: expected a mapping, got a list",
                fails("base_model: m\nfsdp_config: [a]\n"));
        assertEquals("configs/x.yml:1:1: expected a mapping, got a list", fails("- base_model: m\n"));
        assertEquals("configs/x.yml:2:3: expected a plain key, got a list", fails("base_model: m\n? [a]\n: 1\n"));
    }

    @Test
    void valSetSizeOutOfRange() {
        assertEquals("configs/x.yml:2:15: val_set_size: expected a fraction in [0, 1) or a count >= 0 written as "
                + "an integer, got 1.5", fails("base_model: m\nval_set_size: 1.5\n"));
        assertEquals("configs/x.yml:2:15: val_set_size: expected a fraction in [0, 1) or a count >= 0, got -3",
                fails("base_model: m\nval_set_size: -3\n"));
        assertEquals("configs/x.yml:2:15: val_set_size: expected a number, got a list",
                fails("base_model: m\nval_set_size: [1]\n"));
        assertEquals("configs/x.yml:2:15: val_set_size: must be 0 or left out when test_datasets is given "
                + "(evaluation comes from test_datasets)",
                fails("base_model: m\nval_set_size: 0.1\ntest_datasets: [{path: t, type: completion}]\n"));
    }

    @Test
    void integerKeysFollowAxolotlsSchema() {
        // pydantic's int: 10.0 is 10, a fraction is refused (examples/llama-3/diffusion/sft-1b.yaml has 0.1).
        assertEquals(10L, TrainConfig.parse("base_model: m\nwarmup_steps: 10.0\n", Path.of("configs/x.yml")).trainer()
                .integer("warmup_steps").orElseThrow());
        assertEquals("configs/x.yml:2:15: warmup_steps: expected an integer, got number '0.1' (Axolotl's schema"
                + " refuses a fraction too); a share of the training steps is warmup_ratio: 0.1",
                fails("base_model: m\nwarmup_steps: 0.1\n"));
        // tokens: list[str]; examples/archived/jeopardy-bot/config.yml gives the special tokens there.
        assertEquals("configs/x.yml:3:3: tokens: expected a list of new tokens (Axolotl's schema: list[str]), got a"
                + " mapping; bos_token, eos_token, pad_token and unk_token go under special_tokens:",
                fails("base_model: m\ntokens:\n  bos_token: <s>\n"));
    }

    @Test
    void missingRequiredKeys() {
        assertEquals("configs/x.yml:1:1: missing required key 'base_model' (a Hugging Face Hub id or a local model "
                + "directory)", fails("seed: 1\n"));
        assertEquals("configs/x.yml:1:1: missing required key 'base_model' (a Hugging Face Hub id or a local model "
                + "directory)", fails("base_model:\n"));
        // No type: is Axolotl's pre-tokenized dataset; a key of a raw-row type then says so.
        assertEquals("configs/x.yml:4:5: datasets[0]: 'field_instruction' does not apply to a pre-tokenized dataset"
                + " (no type: given; its rows are input_ids, attention_mask and labels); give type: for raw rows",
                fails("base_model: m\ndatasets:\n  - path: a\n    field_instruction: q\n"));
        assertEquals("configs/x.yml:4:11: datasets[0].type: 'pretokenized' is not one of alpaca, sharegpt,"
                + " chat_template, completion, input_output, jeopardy, oasst, gpteacher, summarizetldr, explainchoice,"
                + " concisechoice, user_defined",
                fails("base_model: m\ndatasets:\n  - path: a\n    type: pretokenized\n"));
        assertEquals("configs/x.yml:3:5: datasets[0]: missing required key 'path' (a Hugging Face Hub id or a "
                + "local file or directory)", fails("base_model: m\ndatasets:\n  - type: alpaca\n"));
    }

    @Test
    void keysThatDoNotApplyToTheType() {
        assertEquals("configs/x.yml:5:5: datasets[0]: 'field_instruction' does not apply to type chat_template "
                + "(it is for alpaca)", fails("""
                        base_model: m
                        datasets:
                          - path: a
                            type: chat_template
                            field_instruction: q
                        """));
        assertEquals("configs/x.yml:5:5: datasets[0]: 'roles_to_train' does not apply to type completion "
                + "(it is for sharegpt and chat_template)", fails("""
                        base_model: m
                        datasets:
                          - path: a
                            type: completion
                            roles_to_train: [assistant]
                        """));
        assertEquals("configs/x.yml:5:5: datasets[0]: give either 'message_field_role' or "
                + "message_property_mappings, not both", fails("""
                        base_model: m
                        datasets:
                          - path: a
                            type: chat_template
                            message_field_role: from
                            message_property_mappings: {role: from}
                        """));
        assertEquals("configs/x.yml:2:16: chat_template: must be 'jinja' (or left out) when chat_template_jinja "
                + "is given, got 'chatml'", fails("base_model: m\nchat_template: chatml\nchat_template_jinja: x\n"));
    }

    @Test
    void malformedOrEmptyFiles() {
        assertEquals("configs/x.yml:1:1: empty config (expected a mapping with base_model, datasets, ...)", fails(""));
        assertEquals("configs/x.yml:1:1: empty config (expected a mapping with base_model, datasets, ...)",
                fails("# just a comment\n"));
        ConfigException syntax = assertThrows(ConfigException.class,
                () -> TrainConfig.parse("base_model: m\ndatasets: [a, b\nseed: 1\n", FILE));
        assertEquals(FILE, syntax.file());
        assertTrue(syntax.line() >= 2, syntax.getMessage());
        assertTrue(syntax.problem().startsWith("invalid YAML: "), syntax.getMessage());
        assertTrue(syntax.getMessage().startsWith("configs/x.yml:" + syntax.line() + ":" + syntax.column() + ": "));
        ConfigException tab = assertThrows(ConfigException.class,
                () -> TrainConfig.parse("base_model: m\n\tseed: 1\n", FILE));
        assertEquals(2, tab.line(), tab.getMessage());
    }

    @TempDir
    Path dir;

    @Test
    void loadNamesTheFileAsGiven() throws IOException {
        Path file = dir.resolve("bad.yml");
        Files.writeString(file, "base_model: m\n\nsample_pakcing: true\n");
        ConfigException error = assertThrows(ConfigException.class, () -> TrainConfig.load(file));
        assertEquals(file + ":3:1: unknown key 'sample_pakcing' (did you mean 'sample_packing'?)", error.getMessage());
        assertEquals(file, error.file());
        assertEquals(3, error.line());
        assertEquals(1, error.column());
        assertEquals("unknown key 'sample_pakcing' (did you mean 'sample_packing'?)", error.problem());

        Path missing = dir.resolve("missing.yml");
        ConfigException notFound = assertThrows(ConfigException.class, () -> TrainConfig.load(missing));
        assertEquals(missing + ": no such file", notFound.getMessage());
        assertEquals(0, notFound.line());
    }

    @Test
    void trainerAccessorsRefuseUnknownOrMistypedKeys() {
        TrainerSettings trainer = TrainConfig.parse("base_model: m\nlora_r: 8\n", FILE).trainer();
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class, () -> trainer.integer("lora_rr"));
        assertEquals("not a trainer key: 'lora_rr' (did you mean 'lora_r'?)", unknown.getMessage());
        assertThrows(IllegalArgumentException.class, () -> trainer.string("lora_r"));
        assertThrows(IllegalArgumentException.class, () -> new TrainerSettings(java.util.Map.of("sequence_len", 1)));
    }
}
