package dev.jtune.trainer.train;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** The console progress display: one updating line on a terminal, plain lines otherwise. */
final class Progress {
    private final PrintStream out;
    private final boolean terminal;
    private boolean open;

    Progress(PrintStream out) {
        this.out = out;
        var console = System.console();
        this.terminal = out == System.out && console != null && console.isTerminal();
    }

    void step(long step, long total, double epoch, double loss, double lr, double gradNorm, double tokensPerSec,
            double trainedPerSec, long rssBytes, double etaSeconds) {
        String line = String.format(Locale.ROOT,
                "step %d/%d | epoch %.2f | loss %.4f | lr %.3e | grad_norm %.4f | %.0f tok/s | %.0f trained tok/s"
                        + " | rss %d MB | eta %s",
                step, total, epoch, loss, lr, gradNorm, tokensPerSec, trainedPerSec, rssBytes >> 20,
                duration(etaSeconds));
        if (terminal) {
            out.print("\r\033[2K" + line);
            open = true;
        } else {
            out.println(line);
        }
        out.flush();
    }

    void line(String text) {
        if (open) {
            out.println();
            open = false;
        }
        out.println(text);
        out.flush();
    }

    void finish() {
        if (open) {
            out.println();
            open = false;
        }
    }

    static String duration(double seconds) {
        if (!Double.isFinite(seconds) || seconds < 0) {
            return "?";
        }
        long s = Math.round(seconds);
        return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
    }

    /** Resident set size of this process (Linux), or 0 where unknown. */
    static long rssBytes() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (l.startsWith("VmRSS:")) {
                    return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux: report 0
        }
        return 0;
    }
}
