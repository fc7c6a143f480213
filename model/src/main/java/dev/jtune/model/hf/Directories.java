package dev.jtune.model.hf;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;

/** Whole-folder writes: a model directory is built aside and swapped in, so it is never seen half-written. */
public final class Directories {
    private Directories() {}

    /**
     * Puts the finished folder {@code fresh} at {@code target} by renames in the same parent folder; an existing
     * {@code target} is moved aside first and deleted only once {@code fresh} is in place.
     */
    public static void replace(Path fresh, Path target) throws IOException {
        Path old = null;
        if (Files.exists(target)) {
            old = Files.createTempDirectory(target.getParent(), target.getFileName() + ".old-");
            Files.delete(old);
            Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
        }
        Files.move(fresh, target, StandardCopyOption.ATOMIC_MOVE);
        if (old != null) {
            deleteRecursively(old);
        }
    }

    /** Deletes {@code p} and everything under it; nothing if it does not exist. */
    public static void deleteRecursively(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (var walk = Files.walk(p)) {
            for (Path f : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(f);
            }
        }
    }
}
