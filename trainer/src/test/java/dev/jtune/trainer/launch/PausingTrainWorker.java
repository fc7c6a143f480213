package dev.jtune.trainer.launch;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * The jtune command line as a launcher's worker ({@code --main-class}), with one difference for the tests that
 * kill a worker at a known point: {@code PausingTrainWorker N ARGS...} runs {@code Main ARGS...}, and rank 0 (the
 * one that prints progress) stops on its training thread right after printing {@code saved .../checkpoint-N}, prints
 * {@link #pausedLine} and waits there: for ever (a SIGKILL ends it), or until a SIGTERM has reached the trainer's own
 * handler, after which it goes on. While it waits, the other ranks wait for it in a collective. So where every
 * rank is when the test kills one never depends on how fast the machine is.
 */
public final class PausingTrainWorker {
    private PausingTrainWorker() {}

    static String pausedLine(long step) {
        return "paused after checkpoint-" + step;
    }

    public static void main(String[] args) {
        long step = Long.parseLong(args[0]);
        String saved = "checkpoint-" + step;
        PrintStream real = System.out;
        System.setOut(new PrintStream(real, true, StandardCharsets.UTF_8) {
            private boolean paused;

            @Override
            public void println(String x) {
                super.println(x);
                if (!paused && x != null && x.startsWith("saved ") && x.endsWith(saved)) {
                    paused = true;
                    pause(step, real);
                }
            }
        });
        dev.jtune.trainer.cli.Main.main(Arrays.copyOfRange(args, 1, args.length));
    }

    /** Chains a handler behind the trainer's (installed by now: this runs inside the training) and waits. */
    private static void pause(long step, PrintStream real) {
        CountDownLatch termReachedTrainer = new CountDownLatch(1);
        SignalHandler[] trainers = new SignalHandler[1];
        trainers[0] = Signal.handle(new Signal("TERM"), sig -> {
            try {
                trainers[0].handle(sig);
            } finally {
                termReachedTrainer.countDown();
            }
        });
        real.println(pausedLine(step));
        real.flush();
        try {
            termReachedTrainer.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
