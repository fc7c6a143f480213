package dev.jtune.data.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Defaults, val_set_size forms and the dataset type mappings. */
class ConfigDatasetsTest {
    private static TrainConfig parse(String yaml) {
        return TrainConfig.parse(yaml, Path.of("configs/x.yml"));
    }

    @Test
    void defaults() {
        TrainConfig config = parse("base_model: m\n");
        assertEquals("m", config.baseModel());
        assertEquals(List.of(), config.datasets());
        assertEquals(List.of(), config.testDatasets());
        assertEquals(2048, config.sequenceLen());
        assertFalse(config.samplePacking());
        assertFalse(config.padToSequenceLen());
        assertFalse(config.trainOnInputs());
        assertEquals(ValSetSize.NONE, config.valSetSize());
        assertEquals(new ValSetSize.Count(0), config.valSetSize());
        assertFalse(config.hasEvaluation());
        assertEquals(42, config.seed());
        assertEquals(ExcessLengthStrategy.DROP, config.excessLengthStrategy());
        assertTrue(config.shuffleMergedDatasets());
        assertEquals("./outputs", config.outputDir());
        assertEquals(Path.of("./outputs"), config.outputPath());
        assertEquals(SpecialTokens.NONE, config.specialTokens());
        assertTrue(config.specialTokens().isEmpty());
        assertEquals(Optional.empty(), config.chatTemplate());
        assertEquals(Optional.empty(), config.datasetPreparedPath());
        assertEquals(TrainerSettings.EMPTY, config.trainer());
        assertEquals(Path.of("configs/x.yml"), config.source());
    }

    @Test
    void dataKeysOverrideDefaults() {
        TrainConfig config = parse("""
                base_model: m
                sequence_len: 512
                seed: 7
                shuffle_merged_datasets: no
                excess_length_strategy: truncate
                output_dir: out/run1
                train_on_inputs: true
                chat_template: jinja
                chat_template_jinja: "{{ messages }}"
                base_model_config: m
                tokenizer_config: tok
                """);
        assertEquals(512, config.sequenceLen());
        assertEquals(7, config.seed());
        assertFalse(config.shuffleMergedDatasets());
        assertEquals(ExcessLengthStrategy.TRUNCATE, config.excessLengthStrategy());
        assertEquals("out/run1", config.outputDir());
        assertTrue(config.trainOnInputs());
        assertEquals(Optional.of("jinja"), config.chatTemplate());
        assertEquals(Optional.of("{{ messages }}"), config.chatTemplateJinja());
        assertEquals(Optional.of("m"), config.baseModelConfig()); // the same folder; another is refused
        assertEquals(Optional.of("tok"), config.tokenizerConfig());
    }

    @Test
    void valSetSizeFractionVersusCount() {
        ValSetSize fraction = parse("base_model: m\nval_set_size: 0.1\n").valSetSize();
        assertEquals(new ValSetSize.Fraction(0.1), fraction);
        assertEquals(11, fraction.examplesOutOf(101)); // rounded up, as train_test_split does
        ValSetSize count = parse("base_model: m\nval_set_size: 200\n").valSetSize();
        assertEquals(new ValSetSize.Count(200), count);
        assertEquals(200, count.examplesOutOf(1000));
        assertEquals(50, count.examplesOutOf(50));
        assertTrue(parse("base_model: m\nval_set_size: 200\n").hasEvaluation());
        // 0 as an integer and 0.0 as a float both mean no split.
        assertEquals(0, parse("base_model: m\nval_set_size: 0\n").valSetSize().examplesOutOf(100));
        assertEquals(new ValSetSize.Fraction(0.0), parse("base_model: m\nval_set_size: 0.0\n").valSetSize());
        assertEquals(0, parse("base_model: m\nval_set_size: 0.0\n").valSetSize().examplesOutOf(100));
    }

    @Test
    void alpacaFieldMappings() {
        DatasetConfig dataset = parse("""
                base_model: m
                datasets:
                  - path: data/train.jsonl
                    type: alpaca
                    ds_type: json
                    split: train
                    data_files: [a.jsonl, b.jsonl]
                    name: default
                    skip_invalid: true
                    field_instruction: question
                    field_output: answer
                """).datasets().get(0);
        assertEquals(new DatasetFormat.Alpaca("question", "input", "answer"), dataset.format());
        assertEquals(Optional.of("json"), dataset.dsType());
        assertEquals(Optional.of("train"), dataset.split());
        assertEquals(List.of("a.jsonl", "b.jsonl"), dataset.dataFiles());
        assertEquals(Optional.of("default"), dataset.name());
        assertTrue(dataset.skipInvalid());
        // Kept as written; resolve() is the caller's choice of base.
        assertEquals("data/train.jsonl", dataset.path());
        assertEquals(Path.of("/runs/data/train.jsonl"), dataset.resolve(Path.of("/runs")));
        assertEquals(Path.of("/abs/x.jsonl"), new DatasetConfig("/abs/x.jsonl", DatasetFormat.Completion.DEFAULT,
                Optional.empty(), List.of(), Optional.empty(), Optional.empty(), false).resolve(Path.of("/runs")));
    }

    @Test
    void completionFieldDefaultsToText() {
        TrainConfig config = parse("""
                base_model: m
                datasets:
                  - path: a
                    type: completion
                  - path: b
                    type: completion
                    field: body
                    data_files: one.jsonl
                """);
        assertEquals(DatasetType.COMPLETION, config.datasets().get(0).type());
        assertEquals(new DatasetFormat.Completion("text"), config.datasets().get(0).format());
        assertEquals(new DatasetFormat.Completion("body"), config.datasets().get(1).format());
        assertEquals(List.of("one.jsonl"), config.datasets().get(1).dataFiles());
        assertFalse(config.datasets().get(0).skipInvalid());
    }

    @Test
    void chatTemplateDefaultsAndMappings() {
        TrainConfig config = parse("""
                base_model: m
                chat_template: chatml
                datasets:
                  - path: a
                    type: chat_template
                  - path: b
                    type: chat_template
                    field_messages: conversation
                    message_property_mappings:
                      role: speaker
                      content: text
                    roles_to_train: [assistant, tool]
                    train_on_eos: all
                    roles:
                      user: [human]
                      assistant: bot
                    chat_template: llama3
                    drop_system_message: true
                  - path: c
                    type: chat_template
                    message_field_role: from
                    message_field_content: value
                """);
        assertEquals(new DatasetFormat.Chat(DatasetType.CHAT_TEMPLATE, "messages",
                DatasetFormat.MessageProperties.ROLE_CONTENT, List.of("assistant"), TrainOnEos.TURN, Map.of(),
                Optional.empty(), false), config.datasets().get(0).format());
        assertEquals(new DatasetFormat.Chat(DatasetType.CHAT_TEMPLATE, "conversation",
                new DatasetFormat.MessageProperties("speaker", "text"), List.of("assistant", "tool"), TrainOnEos.ALL,
                Map.of("user", List.of("human"), "assistant", List.of("bot")), Optional.of("llama3"), true),
                config.datasets().get(1).format());
        DatasetFormat.Chat legacy = (DatasetFormat.Chat) config.datasets().get(2).format();
        assertEquals(DatasetFormat.MessageProperties.FROM_VALUE, legacy.messageProperties());
        assertEquals(Optional.of("chatml"), config.chatTemplate());
    }

    @Test
    void sharegptDefaults() {
        TrainConfig config = parse("""
                base_model: m
                datasets:
                  - path: a
                    type: sharegpt
                    train_on_eos: last
                test_datasets:
                  - path: t
                    type: sharegpt
                    split: test
                """);
        DatasetFormat.Chat chat = (DatasetFormat.Chat) config.datasets().get(0).format();
        assertEquals(DatasetType.SHAREGPT, chat.type());
        assertEquals("conversations", chat.fieldMessages());
        assertEquals(DatasetFormat.MessageProperties.FROM_VALUE, chat.messageProperties());
        assertEquals(List.of("gpt", "assistant"), chat.roles().get("assistant"));
        assertEquals(List.of("human", "user"), chat.roles().get("user"));
        assertEquals(List.of("assistant"), chat.rolesToTrain());
        assertEquals(TrainOnEos.LAST, chat.trainOnEos());
        assertEquals(1, config.testDatasets().size());
        assertEquals(Optional.of("test"), config.testDatasets().get(0).split());
        assertTrue(config.hasEvaluation());
    }

    @Test
    void axolotlSpellingsOfTheSameStrategy() {
        // Axolotl's prompt_strategies.load: "<module>.load" calls the module's load, as "<module>" does.
        for (var spelling : Map.of("chat_template.load", DatasetType.CHAT_TEMPLATE, "completion.load",
                DatasetType.COMPLETION, "input_output.load", DatasetType.INPUT_OUTPUT, "alpaca:instruct",
                DatasetType.ALPACA, "alpaca_instruct", DatasetType.ALPACA).entrySet()) {
            TrainConfig config = parse("base_model: m\ndatasets:\n  - {path: a, type: '" + spelling.getKey() + "'}\n");
            assertEquals(spelling.getValue(), config.datasets().get(0).type(), spelling.getKey());
            TrainConfig plain = parse("base_model: m\ndatasets:\n  - {path: a, type: "
                    + spelling.getValue().yamlName() + "}\n");
            assertEquals(plain.datasets(), config.datasets(), spelling.getKey());
        }
    }

    @Test
    void anchorsAndAliasesWork() {
        TrainConfig config = parse("""
                base_model: m
                datasets:
                  - &train
                    path: a
                    type: completion
                test_datasets:
                  - *train
                """);
        assertEquals(config.datasets(), config.testDatasets());
    }
}
