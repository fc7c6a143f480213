package dev.jtune.data.dataset;

import dev.jtune.data.config.DatasetConfig;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.reflect.RecordComponent;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The cache key of a prepared dataset: SHA-256 (first {@value #HEX_LENGTH} hex digits) over everything the
 * rows depend on, namely the {@link #FORMAT_VERSION}, the loader's {@link SampleSource#version()}, the data
 * keys of the config ({@code datasets}, {@code test_datasets}, {@code val_set_size}, {@code sequence_len},
 * {@code sample_packing}, {@code train_on_inputs}, {@code chat_template}, {@code chat_template_jinja},
 * {@code special_tokens}, {@code excess_length_strategy}, {@code min_sample_len},
 * {@code dataset_exact_deduplication}, {@code seed}, {@code shuffle_merged_datasets}), the
 * bytes of the tokenizer's files, and the bytes of every dataset file. Trainer keys ({@code learning_rate},
 * {@code micro_batch_size}, ...) and {@code pad_to_sequence_len} (applied per batch) are not part of it.
 *
 * <p>Config values are hashed in a canonical text form derived from the records themselves (maps sorted by
 * key), so a component added to {@link DatasetConfig} later is covered without touching this class.
 */
public final class PreparedKey {
    /** Bump when the stored format or the pipeline's output for the same inputs changes. */
    public static final int FORMAT_VERSION = 1;
    public static final int HEX_LENGTH = 32;

    /** Files of a tokenizer directory that can change tokenization or special tokens. */
    static final List<String> TOKENIZER_FILES = List.of(Tokenizer.TOKENIZER_JSON, Tokenizer.TOKENIZER_CONFIG_JSON,
            Tokenizer.SPECIAL_TOKENS_MAP_JSON, Tokenizer.GENERATION_CONFIG_JSON, Tokenizer.CHAT_TEMPLATE_JINJA,
            dev.jtune.data.tokenizer.Tekken.FILE);

    private PreparedKey() {}

    /** The key for {@code config} read by {@code source} with the tokenizer in {@code tokenizerDir}. */
    public static String of(TrainConfig config, Path tokenizerDir, SampleSource source) {
        MessageDigest sha = sha256();
        update(sha, "jtune prepared dataset v" + FORMAT_VERSION + "\n");
        update(sha, "loader " + canonical(source.version()) + "\n");
        update(sha, "config " + dataDescription(config) + "\n");
        for (String name : TOKENIZER_FILES) {
            Path f = tokenizerDir.resolve(name);
            if (Files.isRegularFile(f)) hashFile(sha, "tokenizer " + name, f);
        }
        hashDatasets(sha, "datasets", config.datasets(), source);
        hashDatasets(sha, "test_datasets", config.testDatasets(), source);
        return HexFormat.of().formatHex(sha.digest()).substring(0, HEX_LENGTH);
    }

    /** The canonical text of the data keys that are hashed. */
    static String dataDescription(TrainConfig c) {
        Map<String, Object> keys = new TreeMap<>();
        keys.put("datasets", c.datasets());
        keys.put("test_datasets", c.testDatasets());
        keys.put("val_set_size", c.valSetSize());
        keys.put("sequence_len", c.sequenceLen());
        keys.put("sample_packing", c.samplePacking());
        keys.put("train_on_inputs", c.trainOnInputs());
        keys.put("chat_template", c.chatTemplate());
        keys.put("chat_template_jinja", c.chatTemplateJinja());
        keys.put("special_tokens", c.specialTokens());
        keys.put("excess_length_strategy", c.excessLengthStrategy());
        keys.put("seed", c.seed());
        keys.put("shuffle_merged_datasets", Preprocessor.shufflesTrain(c)); // curriculum_sampling may turn it off
        if (c.minSampleLen() > 0) {
            keys.put("min_sample_len", c.minSampleLen());
        }
        c.streaming().ifPresent(st -> keys.put("streaming", st));
        if (c.datasetExactDeduplication()) {
            keys.put("dataset_exact_deduplication", true);
        }
        if (!c.eotTokens().isEmpty()) {
            keys.put("eot_tokens", c.eotTokens());
        }
        if (SampleBuilder.usesMistralCommon(c)) {
            keys.put("tokenizer_use_mistral_common", true);
        }
        if (!c.chatTemplateKwargs().isEmpty()) {
            keys.put("chat_template_kwargs", c.chatTemplateKwargs());
        }
        return canonical(keys);
    }

    private static void hashDatasets(MessageDigest sha, String section, List<DatasetConfig> datasets, SampleSource source) {
        for (int i = 0; i < datasets.size(); i++) {
            for (Path f : source.inputs(datasets.get(i))) {
                if (!Files.isRegularFile(f)) {
                    throw new UncheckedIOException(new java.nio.file.NoSuchFileException(f + ": dataset file of "
                            + section + "[" + i + "] not found"));
                }
                hashFile(sha, section + "[" + i + "] " + f.getFileName(), f);
            }
        }
    }

    /** Name, size and contents, streamed. */
    private static void hashFile(MessageDigest sha, String label, Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            update(sha, label + " " + Files.size(file) + "\n");
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) > 0) sha.update(buf, 0, n);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot read for the prepared-dataset key: " + e.getMessage(), e);
        }
    }

    /** A canonical, unambiguous text for config values: records by component, maps sorted, strings quoted. */
    static String canonical(Object v) {
        return switch (v) {
            case null -> "null";
            case String s -> quote(s);
            case Boolean b -> b.toString();
            case Integer i -> i.toString();
            case Long l -> l.toString();
            case Double d -> Double.toString(d);
            case Enum<?> e -> e.getDeclaringClass().getSimpleName() + "." + e.name();
            case Path p -> quote(p.toString());
            case Optional<?> o -> o.map(x -> "some(" + canonical(x) + ")").orElse("none");
            case List<?> list -> {
                var sb = new StringBuilder("[");
                for (Object x : list) sb.append(canonical(x)).append(',');
                yield sb.append(']').toString();
            }
            case Map<?, ?> map -> {
                var sorted = new TreeMap<String, String>();
                map.forEach((k, x) -> sorted.put(canonical(k), canonical(x)));
                var sb = new StringBuilder("{");
                sorted.forEach((k, x) -> sb.append(k).append(':').append(x).append(','));
                yield sb.append('}').toString();
            }
            case Record r -> {
                var sb = new StringBuilder(r.getClass().getSimpleName()).append('{');
                for (RecordComponent rc : r.getClass().getRecordComponents()) {
                    try {
                        sb.append(rc.getName()).append('=').append(canonical(rc.getAccessor().invoke(r))).append(',');
                    } catch (ReflectiveOperationException e) {
                        throw new IllegalStateException("cannot read " + rc, e);
                    }
                }
                yield sb.append('}').toString();
            }
            default -> throw new IllegalStateException("no canonical form for " + v.getClass().getName()
                    + "; teach PreparedKey.canonical about it");
        };
    }

    private static String quote(String s) {
        return '"' + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + '"';
    }

    private static void update(MessageDigest sha, String s) {
        sha.update(s.getBytes(StandardCharsets.UTF_8));
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
