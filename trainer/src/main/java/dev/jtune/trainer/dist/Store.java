package dev.jtune.trainer.dist;

import java.time.Duration;

/**
 * A key-value store every rank of a job reaches (torch.distributed's {@code Store}): the rendezvous point of
 * the launcher and the place where process groups exchange addresses and ids. Keys are strings, values bytes.
 */
public interface Store extends AutoCloseable {
    /** Sets {@code key} (overwriting). */
    void set(String key, byte[] value);

    /**
     * The value of {@code key}, waiting until some rank sets it.
     *
     * @throws DistException naming the key when {@code timeout} passes first
     */
    byte[] get(String key, Duration timeout);

    /** Adds {@code delta} to the integer counter at {@code key} (created at 0) and returns the new value. */
    long add(String key, long delta);

    @Override
    void close();
}
