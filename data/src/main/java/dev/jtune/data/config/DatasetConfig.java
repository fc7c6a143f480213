package dev.jtune.data.config;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * One entry of {@code datasets:} or {@code test_datasets:}.
 *
 * @param path Hugging Face Hub id or local file/directory, exactly as written (see {@link #resolve(Path)})
 * @param format the {@code type:} with its field mappings
 * @param split split to read, e.g. {@code train} or a slice of it, {@code train[:20%]} (see {@link SplitSpec})
 * @param dataFiles {@code data_files}: files within {@code path} to read
 * @param name {@code name}: the dataset configuration (subset) name: the folder of that name under {@code path}
 * @param dsType {@code ds_type}: file format of local data, e.g. {@code json}
 * @param skipInvalid {@code skip_invalid}: drop rows that cannot be formatted rather than fail
 */
public record DatasetConfig(String path, DatasetFormat format, Optional<String> split, List<String> dataFiles,
        Optional<String> name, Optional<String> dsType, boolean skipInvalid) {
    public DatasetConfig {
        dataFiles = List.copyOf(dataFiles);
    }

    /** {@link #split()} parsed ({@code train} when not given); checked when the config loads. */
    public SplitSpec splitSpec() {
        return split.map(SplitSpec::parse).orElse(SplitSpec.TRAIN);
    }

    /** The {@code type:}. */
    public DatasetType type() {
        return format.type();
    }

    /**
     * {@link #path()} against {@code base}. Axolotl reads relative dataset paths against the working
     * directory, not the config file's, and {@link TrainConfig} keeps them as written for the same reason;
     * callers wanting config-relative paths pass the config's directory here. Absolute paths stay as they are.
     */
    public Path resolve(Path base) {
        return base.resolve(path);
    }
}
