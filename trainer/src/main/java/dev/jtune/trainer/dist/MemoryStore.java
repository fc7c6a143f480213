package dev.jtune.trainer.dist;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/**
 * A {@link Store} shared by threads of one JVM, for ranks that are threads (tests, benchmarks); processes use
 * {@link TcpStore}.
 */
public final class MemoryStore implements Store {
    private final Map<String, byte[]> values = new HashMap<>();

    @Override
    public synchronized void set(String key, byte[] value) {
        values.put(key, value.clone());
        notifyAll();
    }

    @Override
    public synchronized byte[] get(String key, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!values.containsKey(key)) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new DistException("store key " + key + " was not set within " + timeout);
            }
            try {
                wait(Math.max(1, left / 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new DistException("interrupted waiting for store key " + key, e);
            }
        }
        return values.get(key).clone();
    }

    @Override
    public synchronized long add(String key, long delta) {
        byte[] old = values.get(key);
        long v = (old == null ? 0 : Long.parseLong(new String(old))) + delta;
        set(key, Long.toString(v).getBytes());
        return v;
    }

    @Override
    public void close() {}
}
