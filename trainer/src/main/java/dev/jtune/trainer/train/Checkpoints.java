package dev.jtune.trainer.train;

import dev.jtune.model.hf.Directories;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The {@code output_dir/checkpoint-N/} folders: written whole or not at all, found, pruned.
 *
 * <p>A checkpoint is written into {@code checkpoint-N.tmp-XXXX} and renamed into place once every file is in
 * it, so a folder named {@code checkpoint-N} is always complete; {@link #TRAINER_STATE} is written last as a
 * second guard. Pruning renames a folder to {@code checkpoint-N.deleting-XXXX} before deleting it. Temp and
 * deleting folders left by a crash are never taken for checkpoints and are removed by {@link #cleanStale}.
 */
public final class Checkpoints {
    public static final String TRAINER_STATE = "trainer_state.json";
    public static final String OPTIMIZER_FILE = "optimizer.safetensors";
    public static final String SCHEDULER_FILE = "scheduler.json";
    public static final String RNG_FILE = "rng_state.json";
    public static final String DATA_FILE = "data_state.json";
    public static final String SCALER_FILE = "scaler.json";

    private static final Pattern NAME = Pattern.compile("checkpoint-(\\d+)");

    private Checkpoints() {}

    /** Writes the content of a checkpoint into a folder. */
    @FunctionalInterface
    public interface Writer {
        void write(Path dir) throws IOException;
    }

    /** Writes {@code output_dir/checkpoint-step} atomically, replacing an older one of the same step. */
    public static Path write(Path outputDir, long step, Writer writer) throws IOException {
        Files.createDirectories(outputDir);
        String name = "checkpoint-" + step;
        Path tmp = Files.createTempDirectory(outputDir, name + ".tmp-");
        try {
            writer.write(tmp);
            if (!Files.isRegularFile(tmp.resolve(TRAINER_STATE))) {
                throw new IllegalStateException("checkpoint writer left no " + TRAINER_STATE);
            }
            Path target = outputDir.resolve(name);
            if (Files.exists(target)) {
                remove(target);
            }
            move(tmp, target);
            return target;
        } catch (IOException | RuntimeException e) {
            Directories.deleteRecursively(tmp);
            throw e;
        }
    }

    /** Complete checkpoints in {@code outputDir}, oldest (lowest step) first. */
    public static List<Path> list(Path outputDir) throws IOException {
        if (!Files.isDirectory(outputDir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(outputDir)) {
            return s.filter(p -> step(p).isPresent() && Files.isDirectory(p)
                            && Files.isRegularFile(p.resolve(TRAINER_STATE)))
                    .sorted(Comparator.comparingLong(p -> step(p).orElseThrow()))
                    .toList();
        }
    }

    /** The newest complete checkpoint, if any. */
    public static Optional<Path> latest(Path outputDir) throws IOException {
        List<Path> all = list(outputDir);
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    /** N of a folder named exactly {@code checkpoint-N}. */
    public static Optional<Long> step(Path dir) {
        Matcher m = NAME.matcher(dir.getFileName().toString());
        return m.matches() ? Optional.of(Long.parseLong(m.group(1))) : Optional.empty();
    }

    /**
     * {@code resume_from_checkpoint}: {@code auto} is the newest complete checkpoint in {@code outputDir} (none:
     * start fresh); anything else is a checkpoint folder that must be complete.
     *
     * @throws IllegalArgumentException naming the path and what is missing
     */
    public static Optional<Path> resolve(String setting, Path outputDir) throws IOException {
        if (setting.equals("auto")) {
            return latest(outputDir);
        }
        Path dir = Path.of(setting);
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("resume_from_checkpoint: " + dir + " is not a directory");
        }
        if (!Files.isRegularFile(dir.resolve(TRAINER_STATE))) {
            throw new IllegalArgumentException("resume_from_checkpoint: " + dir + " has no " + TRAINER_STATE
                    + "; not a complete checkpoint");
        }
        return Optional.of(dir);
    }

    /** Deletes the oldest complete checkpoints beyond {@code limit} (no-op for limit <= 0). */
    public static void prune(Path outputDir, long limit) throws IOException {
        if (limit <= 0) {
            return;
        }
        List<Path> all = list(outputDir);
        for (int i = 0; i < all.size() - limit; i++) {
            remove(all.get(i));
        }
    }

    /** Removes temp and half-deleted folders that a crash left behind. */
    public static void cleanStale(Path outputDir) throws IOException {
        if (!Files.isDirectory(outputDir)) {
            return;
        }
        List<Path> stale;
        try (Stream<Path> s = Files.list(outputDir)) {
            stale = s.filter(p -> {
                String n = p.getFileName().toString();
                return n.startsWith("checkpoint-") && (n.contains(".tmp-") || n.contains(".deleting-"));
            }).toList();
        }
        for (Path p : stale) {
            Directories.deleteRecursively(p);
        }
    }

    /** Renames out of the checkpoint namespace first, so a half-deleted folder never looks complete. */
    private static void remove(Path dir) throws IOException {
        Path trash = Files.createTempDirectory(dir.getParent(), dir.getFileName() + ".deleting-");
        Files.delete(trash);
        move(dir, trash);
        Directories.deleteRecursively(trash);
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            throw new IOException("cannot rename " + from + " to " + to + " atomically: " + e.getMessage(), e);
        }
    }

    /** Writes a small text file atomically (temp + rename) — for files outside checkpoints. */
    static void writeAtomically(Path file, String text) {
        try {
            Path tmp = Files.createTempFile(file.toAbsolutePath().getParent(), file.getFileName() + ".", ".tmp");
            try {
                Files.writeString(tmp, text);
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
    }
}
