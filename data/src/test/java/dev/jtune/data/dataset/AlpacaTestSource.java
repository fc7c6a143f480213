package dev.jtune.data.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.config.DatasetConfig;
import dev.jtune.data.config.DatasetFormat;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * A minimal test-side Alpaca loader behind the {@link SampleSource} seam (the real loaders live elsewhere):
 * JSONL rows {@code {instruction, input?, output}}, BOS + Stanford Alpaca prompt + output + EOS, labels on
 * output and EOS (on everything with {@code train_on_inputs}). Rows with an empty output are skipped with a
 * reason.
 */
public final class AlpacaTestSource {
    static final String WITH_INPUT = "Below is an instruction that describes a task, paired with an input that provides "
            + "further context. Write a response that appropriately completes the request.\n\n"
            + "### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:\n";
    static final String NO_INPUT = "Below is an instruction that describes a task. Write a response that appropriately "
            + "completes the request.\n\n### Instruction:\n%s\n\n### Response:\n";
    private static final ObjectMapper JSON = new ObjectMapper();

    private AlpacaTestSource() {}

    public static SampleSource of(Tokenizer tok, boolean trainOnInputs, Path baseDir) {
        return SampleSource.of(baseDir, "alpaca-test-1", (ds, tally) -> samples(ds, tok, trainOnInputs, baseDir, tally));
    }

    static Stream<Sample> samples(DatasetConfig ds, Tokenizer tok, boolean trainOnInputs, Path baseDir, RowTally tally) {
        if (!(ds.format() instanceof DatasetFormat.Alpaca)) {
            throw new IllegalArgumentException("test source reads alpaca only, not " + ds.type());
        }
        List<String> prompts = new ArrayList<>();
        List<String> outputs = new ArrayList<>();
        for (Path file : dev.jtune.data.dataset.DatasetFiles.resolve(ds, baseDir)) {
            List<String> lines;
            try {
                lines = Files.readAllLines(file, StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            for (String line : lines) {
                if (line.isBlank()) continue;
                tally.read(1);
                JsonNode row;
                try {
                    row = JSON.readTree(line);
                } catch (IOException e) {
                    tally.skipped("not JSON", 1);
                    continue;
                }
                String output = row.path("output").asText("");
                if (output.isEmpty()) {
                    tally.skipped("empty output", 1);
                    continue;
                }
                prompts.add(prompt(row.path("instruction").asText(""), row.path("input").asText("")));
                outputs.add(output);
            }
        }
        return encode(tok, prompts, outputs, trainOnInputs).stream();
    }

    static String prompt(String instruction, String input) {
        return input.isEmpty() ? NO_INPUT.formatted(instruction) : WITH_INPUT.formatted(instruction, input);
    }

    /** BOS + prompt + output + EOS; labels on the output and EOS. */
    public static List<Sample> encode(Tokenizer tok, List<String> prompts, List<String> outputs, boolean trainOnInputs) {
        List<int[]> p = tok.encodeBatch(prompts, false);
        List<int[]> o = tok.encodeBatch(outputs, false);
        int bos = tok.bosId().orElse(-1);
        int eos = tok.eosId().orElseThrow();
        List<Sample> out = new ArrayList<>(p.size());
        for (int i = 0; i < p.size(); i++) {
            int[] a = p.get(i);
            int[] b = o.get(i);
            int head = bos >= 0 ? 1 : 0;
            int n = head + a.length + b.length + 1;
            int[] ids = new int[n];
            int[] labels = new int[n];
            if (head == 1) ids[0] = bos;
            System.arraycopy(a, 0, ids, head, a.length);
            System.arraycopy(b, 0, ids, head + a.length, b.length);
            ids[n - 1] = eos;
            int promptEnd = head + a.length;
            for (int k = 0; k < n; k++) labels[k] = trainOnInputs || k >= promptEnd ? ids[k] : Sample.IGNORE_INDEX;
            out.add(new Sample(ids, labels));
        }
        return out;
    }
}
