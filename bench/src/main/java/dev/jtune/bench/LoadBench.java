package dev.jtune.bench;

import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.hf.HfCheckpoint;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.quant.Nf4;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Loading a checkpoint as the trainer does (issue 14, part 2): the frozen linears quantized to NF4 (QLoRA) or kept
 * dense, everything else in the compute dtype. Prints the wall time, the process's peak RSS during the load
 * ({@code VmHWM}, reset just before), the RSS after it, and the Java heap's share.
 *
 * <pre>bench/run.sh LoadBench MODEL_DIR [nf4|dense] [bf16|fp32]</pre>
 */
public final class LoadBench {
    private LoadBench() {}

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        boolean nf4 = args.length < 2 || args[1].equals("nf4");
        Dtype dtype = args.length < 3 ? Dtype.BF16 : Dtype.parse(args[2]);
        Torch.engine();
        long before = status("VmRSS");
        resetPeak();
        long start = System.nanoTime();
        try (HfCheckpoint checkpoint = HfCheckpoint.open(dir); NDManager m = Torch.newManager();
                LlamaModel model = LlamaModel.load(checkpoint.config(), checkpoint, dtype, m,
                        nf4 ? Nf4.linearFactory() : (name, weight) -> new dev.jtune.model.llama.DenseLinear(weight))) {
            double seconds = (System.nanoTime() - start) / 1e9;
            long peak = status("VmHWM");
            long after = status("VmRSS");
            System.out.printf(Locale.ROOT, "after load: RssAnon %.2f GiB, RssFile %.2f GiB (mapped checkpoint pages)%n",
                    gib(status("RssAnon")), gib(status("RssFile")));
            Runtime rt = Runtime.getRuntime();
            System.out.printf(Locale.ROOT, "load %s (%s, %,d parameters) %s %s: %.1f s, peak RSS during load %.2f GiB,"
                    + " RSS after %.2f GiB (before %.2f GiB), Java heap committed %.2f GiB, max %.2f GiB, load average %s%n",
                    dir, checkpoint.config().family().architecture(), checkpoint.config().parameterCount(),
                    nf4 ? "NF4" : "dense", dtype.label(), seconds, gib(peak), gib(after), gib(before),
                    rt.totalMemory() / 1073741824.0, rt.maxMemory() / 1073741824.0, loadAverage());
            if (model.layers().isEmpty()) {
                throw new IllegalStateException("no layers");
            }
        }
    }

    private static double gib(long kib) {
        return kib / 1048576.0;
    }

    /** A {@code /proc/self/status} field in KiB. */
    static long status(String field) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field + ":")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IllegalStateException(field + " not in /proc/self/status");
    }

    /** Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs). */
    static void resetPeak() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (IOException e) {
            System.err.println("cannot reset the peak RSS (" + e.getMessage() + "); peak includes start-up");
        }
    }

    static String loadAverage() throws IOException {
        return Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
    }
}
