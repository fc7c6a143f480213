package dev.jtune.bench;

import dev.jtune.data.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The floor under the Alpaca preprocessing benchmark: the Rust tokenizer alone, one thread, on 52,000
 * Alpaca-shaped texts (the Stanford prompt, a 15-word instruction, a 55-word answer), encoded whole and then
 * only their prompts (until issue 11's close-out {@code AlpacaSamples} encoded both per row to find the masked
 * prefix; it now encodes prompt and answer apart, as Axolotl, so about the whole texts' work), and the whole texts
 * through the batch API (the Rust side's own threads), each twice. Process CPU seconds and wall seconds.
 *
 * <pre>bench/tokenizer-floor.sh [TOKENIZER_DIR]</pre>
 */
public final class TokenizerFloorBench {
    private static final String PREAMBLE = "Below is an instruction that describes a task. Write a response that "
            + "appropriately completes the request.\n\n### Instruction:\n";
    private static final String RESPONSE = "\n\n### Response:\n";

    private TokenizerFloorBench() {}

    public static void main(String[] args) {
        String[] words = ("the quick brown fox jumps over lazy dog model data train token water river stone light "
                + "important different possible").split(" ");
        Random r = new Random(1);
        List<String> texts = new ArrayList<>();
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < 52_000; i++) {
            StringBuilder sb = new StringBuilder(PREAMBLE);
            for (int j = 0; j < 15; j++) {
                sb.append(j == 0 ? "" : " ").append(words[r.nextInt(words.length)]);
            }
            sb.append('?').append(RESPONSE);
            prompts.add(sb.toString());
            for (int j = 0; j < 55; j++) {
                sb.append(j == 0 ? "" : " ").append(words[r.nextInt(words.length)]).append(j % 9 == 8 ? "." : "");
            }
            texts.add(sb.toString());
        }
        var os = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        try (Tokenizer tok = Tokenizer.load(Path.of(args[0]))) {
            for (int rep = 0; rep < 2; rep++) {
                for (String mode : new String[] {"whole texts", "prompts only", "whole texts, batch API"}) {
                    long c0 = os.getProcessCpuTime();
                    long t0 = System.nanoTime();
                    long n = 0;
                    if (mode.startsWith("prompts")) {
                        for (String t : prompts) {
                            n += tok.encode(t, false).length;
                        }
                    } else if (mode.endsWith("batch API")) {
                        for (int i = 0; i < texts.size(); i += 1000) {
                            for (int[] ids : tok.encodeBatch(texts.subList(i, Math.min(texts.size(), i + 1000)), false)) {
                                n += ids.length;
                            }
                        }
                    } else {
                        for (String t : texts) {
                            n += tok.encode(t, false).length;
                        }
                    }
                    double cpu = (os.getProcessCpuTime() - c0) / 1e9;
                    System.out.printf(Locale.ROOT, "%-24s %,10d tokens  cpu %6.2f s  wall %6.2f s  %,9.0f tokens per cpu s  (load %.1f)%n",
                            mode, n, cpu, (System.nanoTime() - t0) / 1e9, n / cpu, os.getSystemLoadAverage());
                }
            }
        }
    }
}
