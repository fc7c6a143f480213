package dev.jtune.data.config;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * A training config, read from an Axolotl-style YAML file with Axolotl's key names and defaults.
 *
 * <p>The data keys are typed components here; model, adapter and trainer keys are type-checked into
 * {@link #trainer()}. Keys left empty ({@code fp16:}) are treated as absent, as Axolotl does.
 *
 * @param source the file the config was read from, as given
 * @param baseModel {@code base_model}: Hub id or local directory of the model to fine-tune (required)
 * @param baseModelConfig {@code base_model_config}: where to read the model config, if not {@code base_model}
 * @param tokenizerConfig {@code tokenizer_config}: where to read the tokenizer, if not {@code base_model}
 * @param modelType {@code model_type}, e.g. {@code LlamaForCausalLM}
 * @param tokenizerType {@code tokenizer_type}, e.g. {@code LlamaTokenizer}
 * @param datasets {@code datasets}: training data, merged in order
 * @param testDatasets {@code test_datasets}: evaluation data (then {@code val_set_size} must be 0)
 * @param valSetSize {@code val_set_size}: part of the training data held out for evaluation; default none
 * @param sequenceLen {@code sequence_len}: longest example in tokens; default 2048
 * @param samplePacking {@code sample_packing}: pack several examples per sequence; default false
 * @param padToSequenceLen {@code pad_to_sequence_len}: pad every batch to {@code sequence_len}; default false
 * @param trainOnInputs {@code train_on_inputs}: also train on prompt tokens; default false
 * @param chatTemplate {@code chat_template}: template name ({@code chatml}, {@code tokenizer_default},
 *     {@code jinja}, ...) for conversation datasets
 * @param chatTemplateJinja {@code chat_template_jinja}: the template text itself
 * @param specialTokens {@code special_tokens}: token overrides
 * @param datasetPreparedPath {@code dataset_prepared_path}: where tokenized data is cached
 * @param shuffleMergedDatasets {@code shuffle_merged_datasets}: shuffle after merging; default true
 * @param seed {@code seed}: for shuffling, splitting and initialisation; default 42
 * @param outputDir {@code output_dir}: default {@code ./outputs}
 * @param excessLengthStrategy {@code excess_length_strategy}: default drop
 * @param minSampleLen {@code min_sample_len}: samples with fewer tokens are dropped, as Axolotl's length filter does
 *     (0: not given; Axolotl's default of 2 is what dropping samples with no trained token already does)
 * @param datasetExactDeduplication {@code dataset_exact_deduplication}: identical tokenized samples of a split are
 *     dropped, the first kept
 * @param eotTokens {@code eot_tokens}: tokens that end a turn
 * @param chatTemplateKwargs {@code chat_template_kwargs}: variables for the chat template
 * @param trainer every other accepted key
 * @param notes the info and warning lines the file's keys earn ({@link AxolotlKeys}), in file order; the verbs
 *     print them once when they load the config
 * @param positions where each key and list item of the file stands, by dotted path ({@code lora_r},
 *     {@code fsdp_config.fsdp_offload_params}, {@code datasets[0].split}, {@code lora_target_modules[1]}), so that
 *     checks made after loading ({@link ConfigProblems}) can name file:line:column too
 * @param streaming Axolotl's streamed, packed data path ({@code pretraining_dataset:}, or {@code streaming: true}
 *     with {@code sample_packing}); then {@link #datasets()} holds that one dataset and the trainer's
 *     {@code micro_batch_size} is 1
 */
public record TrainConfig(Path source, String baseModel, Optional<String> baseModelConfig,
        Optional<String> tokenizerConfig, Optional<String> modelType, Optional<String> tokenizerType,
        List<DatasetConfig> datasets, List<DatasetConfig> testDatasets, ValSetSize valSetSize, int sequenceLen,
        boolean samplePacking, boolean padToSequenceLen, boolean trainOnInputs, Optional<String> chatTemplate,
        Optional<String> chatTemplateJinja, SpecialTokens specialTokens, Optional<String> datasetPreparedPath,
        boolean shuffleMergedDatasets, long seed, String outputDir, ExcessLengthStrategy excessLengthStrategy,
        int minSampleLen, boolean datasetExactDeduplication, List<String> eotTokens, java.util.Map<String, Object> chatTemplateKwargs, TrainerSettings trainer,
        List<ConfigNote> notes, java.util.Map<String, Position> positions, Optional<Streaming> streaming) {

    public static final int DEFAULT_SEQUENCE_LEN = 2048;
    public static final long DEFAULT_SEED = 42;
    public static final String DEFAULT_OUTPUT_DIR = "./outputs";

    public TrainConfig {
        datasets = List.copyOf(datasets);
        testDatasets = List.copyOf(testDatasets);
        eotTokens = List.copyOf(eotTokens);
        notes = List.copyOf(notes);
        chatTemplateKwargs = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(chatTemplateKwargs));
        positions = java.util.Map.copyOf(positions);
    }

    /** A 1-based line and column in the config file. */
    public record Position(int line, int column) {}

    /**
     * Where the key or list item at {@code path} stands; for a path the file does not hold
     * ({@code fsdp_config.offload_params} when only {@code fsdp_config} is there), the nearest enclosing one.
     */
    public Optional<Position> position(String path) {
        String p = path;
        while (true) {
            Position at = positions.get(p);
            if (at != null) return Optional.of(at);
            String parent = p.replaceFirst("(\\.[^.\\[]*|\\[\\d+])$", ""); // drop ".key" or "[i]"
            if (parent.equals(p) || parent.isEmpty()) return Optional.empty();
            p = parent;
        }
    }

    /**
     * Reads and checks a config file.
     *
     * @throws ConfigException naming the file, line, column and problem; with several, one listing them all
     */
    public static TrainConfig load(Path file) {
        return ConfigReader.load(file);
    }

    /** Reads config text; {@code source} is only used in messages and {@link #source()}. */
    public static TrainConfig parse(String yaml, Path source) {
        return ConfigReader.parse(yaml, source);
    }

    /**
     * Every top-level key jtune reads itself, data keys first, then {@link TrainerSettings#KEYS}; the rest of
     * Axolotl's schema is accepted or refused as {@link AxolotlKeys#top()} says.
     */
    public static List<String> knownKeys() {
        return ConfigReader.TOP_LEVEL_KEYS;
    }

    /** Whether the config names any held-out evaluation data. */
    public boolean hasEvaluation() {
        return !testDatasets.isEmpty() || valSetSize.examplesOutOf(Long.MAX_VALUE) > 0;
    }

    /** {@link #outputDir()} as a path, relative to the working directory like the dataset paths. */
    public Path outputPath() {
        return Path.of(outputDir);
    }
}
