package dev.jtune.trainer.dist;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.HexFormat;

/**
 * A {@link Store} over a directory, for tests with child JVMs on one machine: each key a file, written atomically
 * (temp + rename), polled by readers. {@code add} is not atomic across processes and not used by the ring.
 */
final class FileStore implements Store {
    private final Path dir;

    FileStore(Path dir) {
        this.dir = dir;
    }

    private Path file(String key) {
        return dir.resolve(HexFormat.of().formatHex(key.getBytes()));
    }

    @Override
    public void set(String key, byte[] value) {
        try {
            Path tmp = Files.createTempFile(dir, "tmp", ".part");
            Files.write(tmp, value);
            Files.move(tmp, file(key), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public byte[] get(String key, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            try {
                return Files.readAllBytes(file(key));
            } catch (java.nio.file.NoSuchFileException e) {
                if (System.nanoTime() > deadline) {
                    throw new DistException("store key " + key + " was not set within " + timeout);
                }
                try {
                    Thread.sleep(10);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new DistException("interrupted", ie);
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    @Override
    public synchronized long add(String key, long delta) {
        throw new UnsupportedOperationException("FileStore.add");
    }

    @Override
    public void close() {}
}
