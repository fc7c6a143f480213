package dev.jtune.data.config;

import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.nodes.Node;

/**
 * Turns config YAML into a {@link TrainConfig}. Works on SnakeYAML's node tree rather than loaded maps so
 * that every error can name the line and column of the key or value at fault, and so that duplicate keys,
 * which a map would silently collapse, are caught.
 */
final class ConfigReader {
    static final List<String> DATA_KEYS = List.of("base_model", "base_model_config", "tokenizer_config", "model_type",
            "tokenizer_type", "datasets", "test_datasets", "val_set_size", "sequence_len", "sample_packing",
            "pad_to_sequence_len", "train_on_inputs", "chat_template", "chat_template_jinja", "special_tokens",
            "dataset_prepared_path", "shuffle_merged_datasets", "seed", "output_dir", "excess_length_strategy",
            "eot_tokens", "chat_template_kwargs", "min_sample_len", "dataset_exact_deduplication",
            "pretraining_dataset", "streaming", "streaming_multipack_buffer_size", "pretrain_multipack_buffer_size",
            "pretrain_multipack_attn");
    /** The keys jtune reads itself. */
    static final List<String> TOP_LEVEL_KEYS = Stream.concat(DATA_KEYS.stream(), TrainerSettings.KEYS.keySet().stream())
            .toList();
    /** Every key a config may hold: those jtune reads and the rest of Axolotl's schema, judged by {@link AxolotlKeys}. */
    static final List<String> ALL_TOP_KEYS = Stream.concat(TOP_LEVEL_KEYS.stream(), AxolotlKeys.top().keySet().stream())
            .distinct().toList();

    private static final List<String> SPECIAL_TOKEN_KEYS = List.of("bos_token", "eos_token", "pad_token", "unk_token");
    private static final List<String> DATASET_COMMON_KEYS = List.of("path", "type", "split", "data_files", "name",
            "ds_type", "skip_invalid");
    private static final List<String> ALPACA_KEYS = List.of("field_instruction", "field_input", "field_output");
    private static final List<String> COMPLETION_KEYS = List.of("field");
    // message_field_role/content are Axolotl's older spelling of message_property_mappings; still common.
    private static final List<String> CHAT_KEYS = List.of("field_messages", "message_property_mappings",
            "message_field_role", "message_field_content", "roles_to_train", "train_on_eos", "roles",
            "chat_template", "drop_system_message", "message_field_training", "message_field_training_detail",
            "split_thinking", "field_tools");
    private static final List<String> INPUT_OUTPUT_KEYS = List.of("field_segments");
    static final List<String> DATASET_KEYS = Stream.of(DATASET_COMMON_KEYS, ALPACA_KEYS, COMPLETION_KEYS,
            CHAT_KEYS, INPUT_OUTPUT_KEYS).flatMap(List::stream).toList();
    /** The keys of a user-defined prompt format ({@code type:} given as a mapping), as Axolotl's. */
    private static final List<String> USER_DEFINED_KEYS = List.of("field_instruction", "field_input", "field_output",
            "field_system", "format", "no_input_format", "system_prompt", "system_format");
    private static final List<String> ALL_DATASET_KEYS = Stream.concat(DATASET_KEYS.stream(),
            AxolotlKeys.dataset().keySet().stream()).distinct().toList();
    private static final List<String> DS_TYPES = List.of("json", "csv", "parquet", "arrow", "text");

    private ConfigReader() {}

    static TrainConfig load(Path file) {
        try (Reader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            return read(reader, file);
        } catch (NoSuchFileException e) {
            throw new ConfigException(file, 0, 0, "no such file", e);
        } catch (IOException e) {
            throw new ConfigException(file, 0, 0, "cannot read: " + e.getMessage(), e);
        }
    }

    static TrainConfig parse(String yaml, Path source) {
        return read(new StringReader(yaml), source);
    }

    private static TrainConfig read(Reader reader, Path file) {
        Node root;
        try {
            root = new Yaml(new LoaderOptions()).compose(reader);
        } catch (MarkedYAMLException e) {
            var mark = e.getProblemMark() != null ? e.getProblemMark() : e.getContextMark();
            String problem = "invalid YAML: " + (e.getProblem() != null ? e.getProblem() : e.getContext());
            if (mark == null) throw new ConfigException(file, 0, 0, problem, e);
            throw new ConfigException(file, mark.getLine() + 1, mark.getColumn() + 1, problem, e);
        } catch (YAMLException e) {
            throw new ConfigException(file, 0, 0, "invalid YAML: " + e.getMessage(), e);
        }
        if (root == null) {
            throw new ConfigException(file, 1, 1, "empty config (expected a mapping with base_model, datasets, ...)");
        }
        // Every problem of the file is collected and reported together; reading goes on past each one.
        Problems problems = new Problems(file);
        YamlMapping top = new YamlValue(file, "", root).asMapping(ALL_TOP_KEYS, problems);
        List<ConfigNote> notes = new ArrayList<>();
        Set<String> refused = new HashSet<>();
        for (String key : top.presentKeys()) {
            AxolotlKeys.Rule rule = AxolotlKeys.top().get(key);
            if (rule == null) continue; // read by jtune only; AxolotlKeysTest keeps this empty
            if (key.equals("base_model_config") && problems.attempt(() -> top.string("base_model"), Optional.empty())
                    .equals(problems.attempt(() -> top.string(key), Optional.empty()))) {
                continue; // the same folder: nothing else to read
            }
            if (!judge(top, key, rule, problems, notes)) refused.add(key);
        }
        TrainConfig config = readTop(top, problems, notes, refused, positions(root));
        problems.throwIfAny();
        return config;
    }

    /**
     * Applies a key's {@link AxolotlKeys.Rule} to its value: a note for equivalent and offline keys, a problem for
     * refused ones.
     *
     * @return false when the key was refused
     */
    private static boolean judge(YamlMapping mapping, String key, AxolotlKeys.Rule rule, Problems problems,
            List<ConfigNote> notes) {
        if (rule.policy() == AxolotlKeys.Policy.IMPLEMENTED && rule.judge().isEmpty()) return true;
        YamlValue value = mapping.get(key).orElseThrow();
        Object java = problems.attempt(value::toJava, null);
        if (java == null) return false; // a duplicate key inside: already reported
        AxolotlKeys.Verdict verdict = rule.judge(java);
        String shown = render(java);
        var mark = mapping.keyNode(key).getStartMark();
        switch (verdict.policy()) {
            case IMPLEMENTED -> {}
            case EQUIVALENT, NOT_OFFLINE -> notes.add(new ConfigNote(
                    verdict.policy() == AxolotlKeys.Policy.EQUIVALENT ? ConfigNote.Level.INFO : ConfigNote.Level.WARNING,
                    value.file(), mark.getLine() + 1, mark.getColumn() + 1, value.path(), shown, verdict.note()));
            case REFUSED -> {
                problems.add(mapping.errorAtKey(key, key + ": " + shown + " is not supported: " + verdict.note()));
                return false;
            }
        }
        return true;
    }

    /** A value as a message shows it: scalars as written, lists and mappings in YAML's flow style, cut short. */
    static String render(Object value) {
        String text = switch (value) {
            case Map<?, ?> m -> {
                List<String> entries = new ArrayList<>();
                m.forEach((k, v) -> entries.add(k + ": " + render(v)));
                yield "{" + String.join(", ", entries) + "}";
            }
            case List<?> l -> "[" + String.join(", ", l.stream().map(ConfigReader::render).toList()) + "]";
            case null -> "";
            default -> String.valueOf(value);
        };
        return text.length() > 80 ? text.substring(0, 77) + "..." : text;
    }

    /** Every key's and list item's position by dotted path, as {@link TrainConfig#positions()} documents. */
    private static Map<String, TrainConfig.Position> positions(Node root) {
        Map<String, TrainConfig.Position> out = new LinkedHashMap<>();
        collectPositions(root, "", out);
        return out;
    }

    private static void collectPositions(Node node, String path, Map<String, TrainConfig.Position> out) {
        if (node instanceof org.yaml.snakeyaml.nodes.MappingNode mapping) {
            for (var tuple : mapping.getValue()) {
                if (!(tuple.getKeyNode() instanceof org.yaml.snakeyaml.nodes.ScalarNode key)) continue;
                String child = path.isEmpty() ? key.getValue() : path + "." + key.getValue();
                var mark = key.getStartMark();
                out.putIfAbsent(child, new TrainConfig.Position(mark.getLine() + 1, mark.getColumn() + 1));
                collectPositions(tuple.getValueNode(), child, out);
            }
        } else if (node instanceof org.yaml.snakeyaml.nodes.SequenceNode sequence) {
            for (int i = 0; i < sequence.getValue().size(); i++) {
                Node item = sequence.getValue().get(i);
                String child = path + "[" + i + "]";
                var mark = item.getStartMark();
                out.putIfAbsent(child, new TrainConfig.Position(mark.getLine() + 1, mark.getColumn() + 1));
                collectPositions(item, child, out);
            }
        }
    }

    private static TrainConfig readTop(YamlMapping top, Problems p, List<ConfigNote> notes, Set<String> refused,
            Map<String, TrainConfig.Position> positions) {
        List<DatasetConfig> datasets = p.attempt(() -> top.get("datasets").map(v -> readDatasets(v, p, notes))
                .orElse(List.of()), List.of());
        Optional<YamlValue> pretraining = top.get("pretraining_dataset");
        List<DatasetConfig> read = datasets;
        if (pretraining.isPresent()) {
            DatasetConfig entry = p.attempt(() -> readPretraining(pretraining.get(), p), null);
            if (top.get("datasets").isPresent()) {
                p.add(top.get("datasets").orElseThrow().error("Axolotl trains on pretraining_dataset alone when it is"
                        + " given and never reads datasets:; give one of the two"));
            }
            read = entry == null ? List.of() : List.of(entry);
        }
        List<DatasetConfig> trainDatasets = read;
        List<DatasetConfig> testDatasets = p.attempt(() -> top.get("test_datasets").map(v -> readDatasets(v, p, notes))
                .orElse(List.of()), List.of());
        ValSetSize valSetSize = p.attempt(() -> top.get("val_set_size").map(ConfigReader::readValSetSize)
                .orElse(ValSetSize.NONE), ValSetSize.NONE);
        if (!testDatasets.isEmpty() && valSetSize.examplesOutOf(Long.MAX_VALUE) > 0) {
            p.add(top.get("val_set_size").orElseThrow()
                    .error("must be 0 or left out when test_datasets is given (evaluation comes from test_datasets)"));
        }
        Optional<String> chatTemplate = p.attempt(() -> top.string("chat_template"), Optional.empty());
        top.get("chat_template").ifPresent(v -> p.attempt(() -> checkTemplateName(v)));
        Optional<String> chatTemplateJinja = p.attempt(() -> top.string("chat_template_jinja"), Optional.empty());
        if (chatTemplateJinja.isPresent() && chatTemplate.isPresent() && !chatTemplate.get().equals("jinja")) {
            p.add(top.get("chat_template").orElseThrow().error(
                    "must be 'jinja' (or left out) when chat_template_jinja is given, got '" + chatTemplate.get() + "'"));
        }
        Map<String, Object> trainer = new LinkedHashMap<>();
        for (String key : top.presentKeys()) {
            if (TrainerSettings.KEYS.containsKey(key) && !refused.contains(key)) {
                p.attempt(() -> trainer.put(key, TrainerSettings.read(key, top.get(key).orElseThrow())));
            }
        }
        int sequenceLen = p.attempt(() -> top.get("sequence_len").map(v -> v.asIntAtLeast(1))
                .orElse(TrainConfig.DEFAULT_SEQUENCE_LEN), TrainConfig.DEFAULT_SEQUENCE_LEN);
        Optional<Streaming> streaming = p.attempt(() -> readStreaming(top, p, trainDatasets, valSetSize, sequenceLen, trainer, notes),
                Optional.empty());
        return new TrainConfig(
                top.self().file(),
                p.attempt(() -> top.require("base_model", "a Hugging Face Hub id or a local model directory").asString(), ""),
                p.attempt(() -> top.string("base_model_config"), Optional.empty()),
                p.attempt(() -> top.string("tokenizer_config"), Optional.empty()),
                p.attempt(() -> top.string("model_type"), Optional.empty()),
                p.attempt(() -> top.string("tokenizer_type"), Optional.empty()),
                trainDatasets,
                testDatasets,
                valSetSize,
                sequenceLen,
                p.attempt(() -> top.bool("sample_packing", false), false),
                p.attempt(() -> top.bool("pad_to_sequence_len", false), false),
                p.attempt(() -> top.bool("train_on_inputs", false), false),
                chatTemplate,
                chatTemplateJinja,
                p.attempt(() -> top.get("special_tokens").map(ConfigReader::readSpecialTokens).orElse(SpecialTokens.NONE),
                        SpecialTokens.NONE),
                p.attempt(() -> top.string("dataset_prepared_path"), Optional.empty()),
                p.attempt(() -> top.bool("shuffle_merged_datasets", true), true),
                p.attempt(() -> top.get("seed").map(YamlValue::asLong).orElse(TrainConfig.DEFAULT_SEED),
                        TrainConfig.DEFAULT_SEED),
                p.attempt(() -> top.string("output_dir", TrainConfig.DEFAULT_OUTPUT_DIR), TrainConfig.DEFAULT_OUTPUT_DIR),
                p.attempt(() -> top.get("excess_length_strategy")
                        .map(v -> v.asEnum(ExcessLengthStrategy.class, ExcessLengthStrategy::yamlName))
                        .orElse(ExcessLengthStrategy.DROP), ExcessLengthStrategy.DROP),
                p.attempt(() -> top.get("min_sample_len").map(v -> v.asIntAtLeast(0)).orElse(0), 0),
                p.attempt(() -> top.bool("dataset_exact_deduplication", false), false),
                p.attempt(() -> top.get("eot_tokens").map(YamlValue::asStringList).orElse(List.of()), List.of()),
                p.attempt(() -> top.get("chat_template_kwargs").map(ConfigReader::readKwargs).orElse(Map.of()), Map.of()),
                new TrainerSettings(trainer),
                notes,
                positions,
                streaming);
    }

    /** The keys of one {@code pretraining_dataset:} entry: Axolotl's PretrainingDataset, and SFTDataset's {@code field}. */
    private static final List<String> PRETRAINING_KEYS = List.of("path", "name", "split", "text_column", "type",
            "trust_remote_code", "data_files", "skip", "field", "ds_type");

    /**
     * {@code pretraining_dataset:} as the one dataset it is: a path, or a list whose first entry Axolotl reads
     * ({@code _extract_pretraining_config}); {@code type: pretrain} (the default) or {@code completion}.
     */
    private static DatasetConfig readPretraining(YamlValue value, Problems p) {
        if (value.isString()) {
            return new DatasetConfig(value.asString(), DatasetFormat.Pretrain.DEFAULT, Optional.empty(), List.of(),
                    Optional.empty(), Optional.empty(), false);
        }
        List<YamlValue> items = value.asList();
        if (items.isEmpty()) throw value.error("expected at least one entry (Axolotl's MinLen(1))");
        if (items.size() > 1) {
            p.add(items.get(1).error("Axolotl reads only pretraining_dataset[0] (utils/data/sft.py"
                    + " _extract_pretraining_config) and would ignore this entry; give one entry"));
        }
        YamlMapping entry = items.get(0).asMapping(PRETRAINING_KEYS, p);
        String path = entry.require("path", "a Hugging Face Hub id or a local file or directory").asString();
        String type = entry.string("type", "pretrain");
        entry.get("skip").ifPresent(v -> {
            if (v.asLong() > 0) p.add(entry.errorAtKey("skip", "skip: " + v.asLong() + " is not supported: jtune"
                    + " reads the whole local file; cut the first rows out of the file, or give split: train[N:]"));
        });
        entry.get("trust_remote_code").ifPresent(v -> { });
        DatasetFormat format = switch (type) {
            case "pretrain" -> {
                entry.get("field").ifPresent(v -> p.add(entry.errorAtKey("field", "'field' does not apply to type"
                        + " pretrain (it reads text_column, default text)")));
                yield new DatasetFormat.Pretrain(entry.string("text_column", "text"));
            }
            case "completion" -> new DatasetFormat.Completion(entry.string("field", "text"));
            default -> throw entry.get("type").orElseThrow().error("jtune reads pretraining_dataset entries of type"
                    + " pretrain (overlapping windows with EOS) or completion, got '" + type + "'");
        };
        Optional<String> split = entry.string("split");
        split.ifPresent(s -> {
            try {
                SplitSpec.parse(s);
            } catch (IllegalArgumentException e) {
                throw entry.get("split").orElseThrow().error(e.getMessage());
            }
        });
        return new DatasetConfig(path, format, split, entry.get("data_files").map(v -> v.isString()
                ? List.of(v.asString()) : v.asStringList()).orElse(List.of()), entry.string("name"),
                entry.string("ds_type"), false);
    }

    /**
     * The streamed path's settings when {@code pretraining_dataset:} or {@code streaming: true} asks for it, with what
     * jtune does not do refused here; sets {@code micro_batch_size} to 1 in {@code trainer}, as Axolotl does
     * (each packed row already holds {@code micro_batch_size × sequence_len} tokens).
     */
    private static Optional<Streaming> readStreaming(YamlMapping top, Problems p, List<DatasetConfig> datasets,
            ValSetSize valSetSize, int sequenceLen, Map<String, Object> trainer, List<ConfigNote> notes) {
        boolean pretraining = top.get("pretraining_dataset").isPresent();
        boolean streaming = top.bool("streaming", false);
        if (!pretraining && !streaming) return Optional.empty();
        String why = pretraining ? "pretraining_dataset" : "streaming: true";
        if (!top.bool("sample_packing", false)) {
            p.add((top.get("sample_packing").isPresent() ? top.get("sample_packing") : top.get(pretraining
                    ? "pretraining_dataset" : "streaming")).orElseThrow().error(why + " without sample_packing: true is"
                    + " not supported: jtune implements Axolotl's packed streaming path only (its unpacked one"
                    + " tokenizes rows without EOS, or without packing); set sample_packing: true"));
        }
        top.get("pretrain_multipack_attn").ifPresent(v -> {
            if (!v.asBoolean()) p.add(v.error("false (packed documents attending to each other) is not supported: jtune always keeps packed documents apart; leave it out or true"));
        });
        if (valSetSize.examplesOutOf(Long.MAX_VALUE) > 0) {
            p.add(top.get("val_set_size").orElseThrow().error("must be 0 or left out with " + why + ": Axolotl's"
                    + " streamed path holds out no evaluation rows; give test_datasets"));
        }
        if (streaming && !pretraining && datasets.size() > 1) {
            p.add(top.get("datasets").orElseThrow().error("streaming: true with sample_packing reads only datasets[0]"
                    + " in Axolotl (utils/data/sft.py _prepare_streaming_dataset); give one dataset"));
        }
        int buffer = top.get("streaming_multipack_buffer_size").or(() -> top.get("pretrain_multipack_buffer_size"))
                .map(v -> v.asIntAtLeast(1)).orElse(Streaming.DEFAULT_BUFFER_SIZE);
        int bin = top.get("sample_packing_bin_size").map(v -> v.asIntAtLeast(1)).orElse(Streaming.DEFAULT_BIN_SIZE);
        long micro = trainer.get("micro_batch_size") instanceof Long m ? m : 1L;
        trainer.put("micro_batch_size", 1L);
        // What Axolotl's stream gives and jtune's local read does not reproduce bit for bit: the random orders.
        String key = pretraining ? "pretraining_dataset" : "streaming";
        var mark = top.keyNode(key).getStartMark();
        notes.add(new ConfigNote(ConfigNote.Level.INFO, top.self().file(), mark.getLine() + 1, mark.getColumn() + 1,
                key, pretraining ? "[...]" : "true", "Axolotl's streamed path, read from the local file: buffers of "
                + buffer + " rows packed into rows of " + micro + " x " + sequenceLen + " tokens and at most " + bin
                + " documents (micro_batch_size becomes 1); its buffer shuffle and sampler order are drawn by jtune's"
                + " seeded generator, not numpy's and torch's"));
        // sample_packing_bin_size is read here (its info line speaks of the ordinary packing path)
        notes.removeIf(n -> n.key().equals("sample_packing_bin_size"));
        return Optional.of(new Streaming(pretraining, buffer, bin, Math.toIntExact(micro * sequenceLen)));
    }

    /**
     * A {@code chat_template:} name jtune renders: its built-ins and Axolotl's named templates
     * ({@link dev.jtune.data.template.ChatTemplates#NAMES}), {@code jinja}, or {@code tokenizer_default_fallback_}
     * one of them.
     */
    private static String checkTemplateName(YamlValue value) {
        String name = value.asString();
        String fallback = "tokenizer_default_fallback_";
        String named = name.startsWith(fallback) ? name.substring(fallback.length()) : name;
        List<String> known = dev.jtune.data.template.ChatTemplates.NAMES;
        if (named.equals("jinja") && !name.startsWith(fallback) || known.contains(named)) return name;
        String why = switch (named) {
            case "jamba" -> "Axolotl's jamba template calls a macro with *args, Jinja syntax jtune's interpreter lacks;"
                    + " jtune does not implement Jamba either";
            case "phi_4" -> "Axolotl's schema does not accept phi_4 either (its ChatTemplate enum lacks it); give"
                    + " chat_template: jinja with chat_template_jinja, or tokenizer_default";
            default -> "expected one of " + String.join(", ", known) + ", jinja, or tokenizer_default_fallback_<name>"
                    + Suggest.didYouMean(named, known);
        };
        throw value.error("'" + name + "' is not a chat template jtune has: " + why);
    }

    /** {@code chat_template_kwargs}: a mapping of template variables (e.g. {@code enable_thinking: false}). */
    private static Map<String, Object> readKwargs(YamlValue value) {
        Map<String, Object> out = new LinkedHashMap<>();
        value.asOpenMapping().forEach((k, v) -> out.put(k, v.toJava()));
        return out;
    }

    private static ValSetSize readValSetSize(YamlValue value) {
        if (value.isInteger()) {
            long count = value.asLong();
            if (count < 0) throw value.error("expected a fraction in [0, 1) or a count >= 0, got " + count);
            return new ValSetSize.Count(count);
        }
        double fraction = value.asDouble();
        if (fraction < 0 || fraction >= 1) {
            throw value.error("expected a fraction in [0, 1) or a count >= 0 written as an integer, got " + fraction);
        }
        return new ValSetSize.Fraction(fraction);
    }

    private static SpecialTokens readSpecialTokens(YamlValue value) {
        YamlMapping tokens = value.asMapping(SPECIAL_TOKEN_KEYS);
        return new SpecialTokens(tokens.string("bos_token"), tokens.string("eos_token"), tokens.string("pad_token"),
                tokens.string("unk_token"));
    }

    private static List<DatasetConfig> readDatasets(YamlValue value, Problems p, List<ConfigNote> notes) {
        List<DatasetConfig> datasets = new ArrayList<>();
        for (YamlValue item : value.asList()) {
            DatasetConfig dataset = p.attempt(() -> readDataset(item.asMapping(ALL_DATASET_KEYS, p), p, notes), null);
            if (dataset != null) datasets.add(dataset);
        }
        return datasets;
    }

    /** The instruction types besides alpaca (each may also carry {@code :style}), for the list of valid types. */
    private static Stream<String> instructionKindNames() {
        return java.util.Arrays.stream(InstructionKind.values()).filter(k -> k != InstructionKind.ALPACA)
                .map(InstructionKind::yamlName);
    }

    private static DatasetConfig readDataset(YamlMapping dataset, Problems p, List<ConfigNote> notes) {
        // Axolotl's dataset keys that jtune does not read itself: a note, or a problem.
        for (String key : dataset.presentKeys()) {
            if (!DATASET_KEYS.contains(key)) judge(dataset, key, AxolotlKeys.dataset().get(key), p, notes);
        }
        String path = dataset.require("path", "a Hugging Face Hub id or a local file or directory").asString();
        List<String> typeNames = java.util.Arrays.stream(DatasetType.values())
                .filter(t -> t != DatasetType.USER_DEFINED && t != DatasetType.PRE_TOKENIZED && t != DatasetType.PRETRAIN)
                .map(DatasetType::yamlName).toList();
        Optional<YamlValue> given = dataset.get("type");
        if (given.isEmpty()) { // Axolotl: no type, rows already tokenized (input_ids, attention_mask, labels)
            for (String key : dataset.presentKeys()) {
                if (DATASET_KEYS.contains(key) && !DATASET_COMMON_KEYS.contains(key)) {
                    p.add(dataset.errorAtKey(key, "'" + key + "' does not apply to a pre-tokenized dataset (no type:"
                            + " given; its rows are input_ids, attention_mask and labels); give type: for raw rows"));
                }
            }
            return dataset(dataset, path, new DatasetFormat.PreTokenized());
        }
        YamlValue typeValue = given.get();
        if (!typeValue.isString() && !typeValue.isNull() && !typeValue.isBoolean() && !typeValue.isInteger()) {
            return readUserDefined(dataset, path, typeValue.asMapping(USER_DEFINED_KEYS), p);
        }
        String typeText = typeValue.isString() ? typeValue.asString() : "";
        if (typeText.equals(DatasetType.USER_DEFINED.yamlName())) {
            throw typeValue.error("a user-defined prompt format is given as a mapping (format:, no_input_format:, ...)");
        }
        if (typeText.equals(DatasetType.PRETRAIN.yamlName())) {
            throw typeValue.error("type: pretrain is read in pretraining_dataset: (Axolotl takes its text_column from"
                    + " there); for plain text in datasets: give type: completion");
        }
        Optional<String> preference = DatasetType.preferenceType(typeText);
        if (preference.isPresent()) throw typeValue.error(preference.get());
        Optional<DatasetFormat.Alpaca> instruction = instructionType(typeText, typeValue);
        if (instruction.isPresent() && instruction.get().kind() != InstructionKind.ALPACA) {
            for (String key : ALPACA_KEYS) {
                if (dataset.get(key).isPresent()) {
                    p.add(dataset.errorAtKey(key, "'" + key + "' does not apply to type " + typeText + " (Axolotl's "
                            + instruction.get().kind().yamlName() + " reads its own columns; field_* names columns"
                            + " for type: alpaca)"));
                }
            }
        }
        DatasetType type = instruction.isPresent() ? DatasetType.ALPACA : DatasetType.byName(typeText)
                .orElseGet(() -> { // throws: not a type (user_defined is named, its mapping form told above)
                    typeValue.asOneOf(Stream.of(typeNames.stream(), instructionKindNames(), Stream.of("user_defined"))
                            .flatMap(s -> s).toList());
                    throw new IllegalStateException();
                });
        List<String> applicable = switch (type) {
            case ALPACA -> ALPACA_KEYS;
            case COMPLETION -> COMPLETION_KEYS;
            case SHAREGPT, CHAT_TEMPLATE -> CHAT_KEYS;
            case INPUT_OUTPUT -> INPUT_OUTPUT_KEYS;
            case USER_DEFINED, PRE_TOKENIZED, PRETRAIN -> List.of();
        };
        for (String key : dataset.presentKeys()) {
            if (DATASET_KEYS.contains(key) && !DATASET_COMMON_KEYS.contains(key) && !applicable.contains(key)) {
                p.add(dataset.errorAtKey(key, "'" + key + "' does not apply to type " + type.yamlName()
                        + " (it is for " + familyOf(key) + ")"));
            }
        }
        DatasetFormat format = switch (type) {
            case ALPACA -> instruction.isPresent() && instruction.get().kind() != InstructionKind.ALPACA
                    ? instruction.get()
                    : new DatasetFormat.Alpaca(InstructionKind.ALPACA,
                    instruction.map(DatasetFormat.Alpaca::style).orElse(PromptStyle.INSTRUCT),
                    dataset.string("field_instruction", DatasetFormat.Alpaca.DEFAULT.fieldInstruction()),
                    dataset.string("field_input", DatasetFormat.Alpaca.DEFAULT.fieldInput()),
                    dataset.string("field_output", DatasetFormat.Alpaca.DEFAULT.fieldOutput()));
            case COMPLETION -> new DatasetFormat.Completion(
                    dataset.string("field", DatasetFormat.Completion.DEFAULT.field()));
            case SHAREGPT, CHAT_TEMPLATE -> readChat(dataset, type);
            case INPUT_OUTPUT -> new DatasetFormat.InputOutput(dataset.string("field_segments", "segments"));
            case USER_DEFINED, PRE_TOKENIZED, PRETRAIN -> throw new IllegalStateException();
        };
        return dataset(dataset, path, format);
    }

    /**
     * {@code alpaca}, {@code jeopardy}, ... optionally {@code :<style>}: the types Axolotl's wrappers.py hands to
     * its Alpaca prompter (the base name before the colon picks the handler, the rest is the prompt style).
     * Empty when the base is not one of them; an error for a style Axolotl's prompter has no formats for.
     */
    private static Optional<DatasetFormat.Alpaca> instructionType(String typeText, YamlValue at) {
        int colon = typeText.indexOf(':');
        String base = colon < 0 ? typeText : typeText.substring(0, colon);
        Optional<InstructionKind> kind = InstructionKind.byName(base);
        if (kind.isEmpty()) return Optional.empty();
        PromptStyle style = PromptStyle.INSTRUCT;
        if (colon >= 0) {
            String name = typeText.substring(colon + 1);
            style = PromptStyle.byName(name).orElseThrow(() -> at.error("'" + name + "' is not one of Axolotl's"
                    + " prompt styles for " + base + ": " + String.join(", ",
                    java.util.Arrays.stream(PromptStyle.values()).map(PromptStyle::yamlName).toList())));
        }
        DatasetFormat.Alpaca d = DatasetFormat.Alpaca.DEFAULT;
        return Optional.of(new DatasetFormat.Alpaca(kind.get(), style, d.fieldInstruction(), d.fieldInput(), d.fieldOutput()));
    }

    private static DatasetConfig dataset(YamlMapping dataset, String path, DatasetFormat format) {
        Optional<String> split = dataset.string("split");
        if (split.isPresent()) {
            try {
                SplitSpec.parse(split.get());
            } catch (IllegalArgumentException e) {
                throw dataset.get("split").orElseThrow().error(e.getMessage());
            }
        }
        return new DatasetConfig(path, format, split,
                dataset.get("data_files").map(YamlValue::asStringList).orElse(List.of()),
                dataset.string("name"),
                dataset.get("ds_type").map(v -> v.asOneOf(DS_TYPES)),
                dataset.bool("skip_invalid", false));
    }

    /** {@code type: {format: ..., no_input_format: ..., ...}}: Axolotl's user-defined prompt format. */
    private static DatasetConfig readUserDefined(YamlMapping dataset, String path, YamlMapping type, Problems p) {
        for (String key : dataset.presentKeys()) {
            if (DATASET_KEYS.contains(key) && !DATASET_COMMON_KEYS.contains(key)) {
                p.add(dataset.errorAtKey(key, "'" + key + "' does not apply to a user-defined prompt format (its"
                        + " keys go inside type:, e.g. type: {field_instruction: q, format: ...})"));
            }
        }
        String format = type.require("format", "the prompt with {instruction} and {input}, e.g. '[INST] {instruction} {input} [/INST] '").asString();
        DatasetFormat.UserDefined ud = new DatasetFormat.UserDefined(
                type.string("field_instruction", "instruction"),
                type.string("field_input", "input"),
                type.string("field_output", "output"),
                type.string("field_system", "system"),
                format,
                type.string("no_input_format", format),
                type.string("system_prompt", ""),
                type.string("system_format", "{system}"));
        return dataset(dataset, path, ud);
    }

    private static String familyOf(String key) {
        if (INPUT_OUTPUT_KEYS.contains(key)) return "input_output";
        if (ALPACA_KEYS.contains(key)) return "alpaca";
        if (COMPLETION_KEYS.contains(key)) return "completion";
        return "sharegpt and chat_template";
    }

    private static DatasetFormat.Chat readChat(YamlMapping dataset, DatasetType type) {
        boolean sharegpt = type == DatasetType.SHAREGPT;
        DatasetFormat.MessageProperties layout = sharegpt
                ? DatasetFormat.MessageProperties.FROM_VALUE : DatasetFormat.MessageProperties.ROLE_CONTENT;
        String roleKey = layout.role();
        String contentKey = layout.content();
        Optional<YamlValue> mappings = dataset.get("message_property_mappings");
        if (mappings.isPresent()) {
            for (String legacy : List.of("message_field_role", "message_field_content")) {
                if (dataset.get(legacy).isPresent()) {
                    throw dataset.errorAtKey(legacy, "give either '" + legacy + "' or message_property_mappings, not both");
                }
            }
            YamlMapping properties = mappings.get().asMapping(List.of("role", "content"));
            roleKey = properties.string("role", roleKey);
            contentKey = properties.string("content", contentKey);
        } else {
            roleKey = dataset.string("message_field_role", roleKey);
            contentKey = dataset.string("message_field_content", contentKey);
        }
        // ShareGPT speakers are human/gpt; the usual mapping onto chat roles is Axolotl's default too.
        Map<String, List<String>> roles = sharegpt
                ? Map.of("system", List.of("system"), "user", List.of("human", "user"),
                        "assistant", List.of("gpt", "assistant"))
                : Map.of();
        Optional<YamlValue> rolesValue = dataset.get("roles");
        if (rolesValue.isPresent()) {
            Map<String, List<String>> given = new LinkedHashMap<>();
            rolesValue.get().asOpenMapping().forEach((role, names) -> given.put(role, names.asStringList()));
            roles = given;
        }
        return new DatasetFormat.Chat(type,
                dataset.string("field_messages", sharegpt ? "conversations" : "messages"),
                new DatasetFormat.MessageProperties(roleKey, contentKey),
                dataset.get("roles_to_train").map(YamlValue::asStringList).orElse(List.of("assistant")),
                dataset.get("train_on_eos").map(v -> v.asEnum(TrainOnEos.class, TrainOnEos::yamlName))
                        .orElse(TrainOnEos.TURN),
                roles,
                dataset.get("chat_template").map(ConfigReader::checkTemplateName),
                dataset.bool("drop_system_message", false),
                new DatasetFormat.MessageExtras(dataset.string("message_field_training"),
                        dataset.string("message_field_training_detail"), dataset.bool("split_thinking", false),
                        dataset.string("field_tools", "tools")));
    }
}
