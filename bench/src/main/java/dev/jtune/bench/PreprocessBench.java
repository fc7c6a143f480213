package dev.jtune.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.dataset.DatasetReader;
import dev.jtune.data.dataset.PrepareReport;
import dev.jtune.data.dataset.PreparedDataset;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Locale;
import java.util.Random;
import java.util.stream.Stream;

/**
 * Issue 3 part 7: preprocess 52,000 Alpaca-sized rows with a real Llama tokenizer (format, mask, pack at
 * sequence_len 2048, store) in at most 10 s. Rows are synthetic with Alpaca's shape: instruction about 15
 * words, an input of about 10 words in 40% of rows, output about 50 words.
 *
 * <p>Usage: {@code PreprocessBench TOKENIZER_DIR [ROWS]}; see bench/run.sh.
 */
public final class PreprocessBench {
    static final double TARGET_SECONDS = 10;
    private static final String[] WORDS = ("the of and to a in is that for it as was with be by on not he this are or his "
            + "from at which but have an they you were her she there been one all we their can has more when will would "
            + "if no out so said what up its about than into them only some could time these two may first then do any "
            + "like my now over such our man me even most made after also did many before must through back years where "
            + "much your way well down should because each just those people how too little state good very make world "
            + "still own see men work long get here between both life being under never day same another know while last "
            + "might us great old year off come since against go came right used take three write explain describe list "
            + "summarize translate generate classify identify compare create suggest provide rewrite calculate analyze "
            + "following sentence paragraph article poem story question answer example data function program computer "
            + "science history water energy climate health education economy technology language music color animal "
            + "important different possible available effective efficient sustainable environmental significant")
            .split(" ");

    private PreprocessBench() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: PreprocessBench TOKENIZER_DIR [ROWS]");
            System.exit(2);
        }
        Path tokDir = Path.of(args[0]);
        int rows = args.length > 1 ? Integer.parseInt(args[1]) : 52_000;
        Path work = Files.createTempDirectory("jtune-bench-");
        try {
            Path data = work.resolve("alpaca.jsonl");
            writeRows(data, rows, new Random(42));
            Files.writeString(work.resolve("bench.yml"), """
                    base_model: tokenizer
                    sequence_len: 2048
                    sample_packing: true
                    val_set_size: 0.02
                    output_dir: out
                    datasets:
                      - path: alpaca.jsonl
                        type: alpaca
                    """);
            TrainConfig config = TrainConfig.load(work.resolve("bench.yml"));
            long tl = System.nanoTime();
            try (Tokenizer tok = Tokenizer.load(tokDir)) {
                double loadSeconds = (System.nanoTime() - tl) / 1e9;
                // Warm-up on a small slice so JIT and native init are not what is measured (a real run pays
                // them once too: reported separately).
                warmUp(tok, work);
                var os = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
                long cpu0 = os.getProcessCpuTime();
                long t0 = System.nanoTime();
                PrepareReport report;
                String hash;
                double seconds;
                double cpuSeconds;
                try (PreparedDataset p = PreparedDataset.prepareOrLoad(config, tokDir, DatasetReader.source(config, tok, work), work)) {
                    report = p.report();
                    seconds = (System.nanoTime() - t0) / 1e9;
                    cpuSeconds = (os.getProcessCpuTime() - cpu0) / 1e9;
                    hash = rowsHash(p); // not timed: the bench's own check
                }
                long tokens = report.train().tokens() + report.eval().tokens();
                System.out.print(report.table());
                System.out.println();
                System.out.printf(Locale.ROOT, "tokenizer           %s (load %.2f s)%n", tokDir, loadSeconds);
                System.out.printf(Locale.ROOT, "cores               %d%n", Runtime.getRuntime().availableProcessors());
                System.out.printf(Locale.ROOT, "rows                %d%n", rows);
                System.out.printf(Locale.ROOT, "seconds             %.2f  (read, format, tokenize, mask, split, pack, "
                        + "hash, store)%n", seconds);
                System.out.printf(Locale.ROOT, "cpu seconds         %.2f  (all threads; wall on an idle machine is about "
                        + "cpu / cores = %.2f s; load average now %.1f)%n", cpuSeconds,
                        cpuSeconds / Runtime.getRuntime().availableProcessors(), os.getSystemLoadAverage());
                System.out.printf(Locale.ROOT, "rows/s              %.0f%n", rows / seconds);
                System.out.printf(Locale.ROOT, "rows sha-256        %s  (input ids, labels, positions, boundaries of every row; "
                        + "must not change with speed work)%n", hash);
                System.out.printf(Locale.ROOT, "tokens/s            %.0f  (%d tokens)%n", tokens / seconds, tokens);
                System.out.printf(Locale.ROOT, "vs 10 s target      %.2fx of the budget (%s)%n", seconds / TARGET_SECONDS,
                        seconds <= TARGET_SECONDS ? "PASS" : "FAIL");
                System.exit(seconds <= TARGET_SECONDS ? 0 : 1);
            }
        } finally {
            try (Stream<Path> walk = Files.walk(work)) {
                walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    /** SHA-256 over every prepared row of both splits, in order: the output the speed work must keep. */
    private static String rowsHash(PreparedDataset p) throws Exception {
        java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(1 << 16);
        for (var split : java.util.List.of(p.train(), p.eval())) {
            for (var row : split) {
                for (int[] a : new int[][] {row.inputIds(), row.labels(), row.positionIds(), row.cuSeqlens()}) {
                    if (buf.remaining() < 4 * (a.length + 1)) {
                        md.update(buf.flip());
                        buf.clear();
                    }
                    if (buf.remaining() < 4 * (a.length + 1)) {
                        buf = java.nio.ByteBuffer.allocate(4 * (a.length + 1));
                    }
                    buf.putInt(a.length);
                    for (int v : a) {
                        buf.putInt(v);
                    }
                }
            }
        }
        md.update(buf.flip());
        return java.util.HexFormat.of().formatHex(md.digest());
    }

    private static void warmUp(Tokenizer tok, Path work) throws Exception {
        Path dir = Files.createDirectories(work.resolve("warmup"));
        writeRows(dir.resolve("alpaca.jsonl"), 2000, new Random(1));
        Files.writeString(dir.resolve("w.yml"), "base_model: t\nsample_packing: true\noutput_dir: out\n"
                + "datasets:\n  - path: alpaca.jsonl\n    type: alpaca\n");
        TrainConfig config = TrainConfig.load(dir.resolve("w.yml"));
        try (PreparedDataset p = PreparedDataset.prepareOrLoad(config, tok.directory(),
                DatasetReader.source(config, tok, dir), dir)) {
            p.report();
        }
    }

    static void writeRows(Path file, int rows, Random r) throws Exception {
        ObjectMapper json = new ObjectMapper();
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            for (int i = 0; i < rows; i++) {
                ObjectNode o = json.createObjectNode();
                o.put("instruction", sentence(r, 15, 5) + "?");
                o.put("input", r.nextInt(10) < 4 ? sentence(r, 10, 4) : "");
                StringBuilder out = new StringBuilder();
                int words = Math.max(3, (int) Math.round(50 + 25 * r.nextGaussian()));
                while (words > 0) {
                    int n = Math.min(words, 6 + r.nextInt(14));
                    out.append(sentence(r, n, 0)).append(". ");
                    words -= n;
                }
                o.put("output", out.toString().strip());
                w.write(json.writeValueAsString(o));
                w.write('\n');
            }
        }
    }

    private static String sentence(Random r, int mean, int spread) {
        int n = Math.max(1, mean + (spread == 0 ? 0 : (int) Math.round(spread * r.nextGaussian())));
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            String w = WORDS[r.nextInt(WORDS.length)];
            if (i == 0) w = Character.toUpperCase(w.charAt(0)) + w.substring(1);
            if (i > 0) sb.append(i % 7 == 6 ? ", " : " ");
            sb.append(w);
        }
        return sb.toString();
    }
}
