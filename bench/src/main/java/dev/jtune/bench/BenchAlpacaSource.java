package dev.jtune.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jtune.data.dataset.RowTally;
import dev.jtune.data.dataset.Sample;
import dev.jtune.data.dataset.SampleSource;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A bench-side Alpaca loader behind the {@link SampleSource} seam (the real loaders are elsewhere): JSONL rows,
 * BOS + Stanford Alpaca prompt + output + EOS, labels on output and EOS. Prompts and outputs are tokenized in
 * chunks with {@link Tokenizer#encodeBatch}, which the Rust library spreads over all cores.
 */
final class BenchAlpacaSource {
    static final String WITH_INPUT = "Below is an instruction that describes a task, paired with an input that provides "
            + "further context. Write a response that appropriately completes the request.\n\n"
            + "### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:\n";
    static final String NO_INPUT = "Below is an instruction that describes a task. Write a response that appropriately "
            + "completes the request.\n\n### Instruction:\n%s\n\n### Response:\n";
    static final int CHUNK = 4096;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Nanoseconds spent reading+formatting and tokenizing (for the phase breakdown). */
    long readNanos;
    long tokenizeNanos;

    private final Tokenizer tok;

    BenchAlpacaSource(Tokenizer tok) {
        this.tok = tok;
    }

    SampleSource source(Path baseDir) {
        return SampleSource.of(baseDir, "bench-alpaca-1", (ds, tally) -> load(dev.jtune.data.dataset.DatasetFiles.resolve(ds, baseDir), tally).stream());
    }

    private List<Sample> load(List<Path> files, RowTally tally) {
        long t0 = System.nanoTime();
        List<String> prompts = new ArrayList<>();
        List<String> outputs = new ArrayList<>();
        for (Path f : files) {
            try (BufferedReader in = Files.newBufferedReader(f, StandardCharsets.UTF_8)) {
                String line;
                while ((line = in.readLine()) != null) {
                    if (line.isBlank()) continue;
                    tally.read(1);
                    JsonNode row = JSON.readTree(line);
                    String output = row.path("output").asText("");
                    if (output.isEmpty()) {
                        tally.skipped("empty output", 1);
                        continue;
                    }
                    String input = row.path("input").asText("");
                    String instruction = row.path("instruction").asText("");
                    prompts.add(input.isEmpty() ? NO_INPUT.formatted(instruction) : WITH_INPUT.formatted(instruction, input));
                    outputs.add(output);
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        long t1 = System.nanoTime();
        readNanos += t1 - t0;
        int bos = tok.bosId().orElse(-1);
        int eos = tok.eosId().orElseThrow();
        List<Sample> out = new ArrayList<>(prompts.size());
        for (int from = 0; from < prompts.size(); from += CHUNK) {
            int to = Math.min(prompts.size(), from + CHUNK);
            List<int[]> p = tok.encodeBatch(prompts.subList(from, to), false);
            List<int[]> o = tok.encodeBatch(outputs.subList(from, to), false);
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
                java.util.Arrays.fill(labels, 0, promptEnd, Sample.IGNORE_INDEX);
                System.arraycopy(ids, promptEnd, labels, promptEnd, n - promptEnd);
                out.add(new Sample(ids, labels));
            }
        }
        tokenizeNanos += System.nanoTime() - t1;
        return out;
    }
}
