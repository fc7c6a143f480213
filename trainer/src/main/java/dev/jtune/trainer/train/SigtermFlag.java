package dev.jtune.trainer.train;

import java.util.concurrent.atomic.AtomicBoolean;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/** SIGTERM as a request to stop at the next step boundary (instead of the JVM's immediate shutdown). */
final class SigtermFlag {
    private SigtermFlag() {}

    /** Installs the handler; returns the previous one (null where signals cannot be handled). */
    static Object install(AtomicBoolean flag) {
        try {
            return Signal.handle(new Signal("TERM"), s -> flag.set(true));
        } catch (IllegalArgumentException | UnsupportedOperationException e) {
            return null;
        }
    }

    static void restore(Object previous) {
        if (previous instanceof SignalHandler h) {
            try {
                Signal.handle(new Signal("TERM"), h);
            } catch (IllegalArgumentException e) {
                // leave ours
            }
        }
    }
}
