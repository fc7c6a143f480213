package dev.jtune.data.dataset;

import dev.jtune.data.config.DatasetConfig;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** Config and reading helpers for the dataset tests. */
final class DatasetTestSupport {
    private DatasetTestSupport() {}

    /** A config from YAML lines (base_model added). */
    static TrainConfig config(String yaml) {
        return TrainConfig.parse("base_model: m\n" + yaml, Path.of("test.yml"));
    }

    static DatasetConfig dataset(TrainConfig cfg) {
        return cfg.datasets().getFirst();
    }

    /** All samples of the config's first dataset, read against {@code base}. */
    static List<Sample> read(TrainConfig cfg, Tokenizer tok, Path base, LoadReport report) {
        try (Stream<Sample> s = DatasetReader.samples(dataset(cfg), cfg, tok, base, report)) {
            return new ArrayList<>(s.toList());
        }
    }

    static List<SourceRow> rows(List<Path> files) {
        List<SourceRow> out = new ArrayList<>();
        try (JsonRows rows = JsonRows.open(files)) {
            rows.forEachRemaining(out::add);
        }
        return out;
    }

    static int[] concat(List<int[]> parts) {
        return parts.stream().flatMapToInt(java.util.Arrays::stream).toArray();
    }
}
