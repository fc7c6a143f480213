package dev.jtune.trainer.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.model.hf.Directories;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.ArrayList;
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
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

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

    /**
     * Writes {@code state} into a checkpoint folder: {@link #SCHEDULER_FILE}, {@link #RNG_FILE}, {@link #DATA_FILE},
     * {@link #SCALER_FILE} (fp16 only) and, last, {@link #TRAINER_STATE} with transformers' TrainerState fields
     * (trainer_callback.py).
     */
    public static void writeState(Path dir, TrainingState state) throws IOException {
        TrainingState.Scheduler sc = state.scheduler();
        ObjectNode sched = JSON.createObjectNode();
        sched.put("lr_scheduler", sc.name());
        sched.put("last_epoch", sc.lastEpoch());
        sched.put("base_lr", sc.baseLr());
        sched.put("warmup_steps", sc.warmupSteps());
        sched.put("total_steps", sc.totalSteps());
        sched.put("last_lr", sc.lastLr());
        writeJson(dir.resolve(SCHEDULER_FILE), sched);
        ObjectNode rng = JSON.createObjectNode();
        rng.put("seed", state.seed());
        rng.put("global_step", state.globalStep());
        rng.put("scheme", "libtorch manual_seed(splitmix64(seed, step, micro_batch, layer)) before each decoder layer");
        writeJson(dir.resolve(RNG_FILE), rng);
        TrainingState.DataPosition d = state.data();
        ObjectNode data = JSON.createObjectNode();
        data.put("epoch", d.epoch());
        data.put("batch_index", d.batchIndex());
        data.put("batches_per_epoch", d.batchesPerEpoch());
        data.put("gradient_accumulation_steps", d.gradientAccumulationSteps());
        data.put("world_size", d.worldSize());
        writeJson(dir.resolve(DATA_FILE), data);
        if (state.scaler().isPresent()) {
            TrainingState.Scaler g = state.scaler().get();
            ObjectNode s = JSON.createObjectNode();
            s.put("scale", g.scale());
            s.put("growth_tracker", g.growthTracker());
            s.put("skipped_steps", g.skippedSteps());
            writeJson(dir.resolve(SCALER_FILE), s);
        }
        TrainingState.Plan plan = state.plan();
        ObjectNode s = JSON.createObjectNode();
        s.putNull("best_global_step");
        s.putNull("best_metric");
        s.putNull("best_model_checkpoint");
        s.put("epoch", state.epoch());
        s.put("eval_steps", plan.evalSteps());
        s.put("global_step", state.globalStep());
        s.put("is_hyper_param_search", false);
        s.put("is_local_process_zero", true);
        s.put("is_world_process_zero", true);
        s.putArray("log_history").addAll(state.logHistory());
        s.put("logging_steps", plan.loggingSteps());
        s.put("max_steps", plan.maxSteps());
        s.put("num_input_tokens_seen", state.tokensSeen());
        s.put("num_train_epochs", plan.numTrainEpochs());
        s.put("save_steps", plan.saveSteps());
        s.set("stateful_callbacks", JSON.createObjectNode());
        s.put("total_flos", 0);
        s.put("train_batch_size", plan.trainBatchSize());
        s.putNull("trial_name");
        s.putNull("trial_params");
        writeJson(dir.resolve(TRAINER_STATE), s);
    }

    /** Reads what {@link #writeState} wrote. */
    public static TrainingState readState(Path dir) throws IOException {
        JsonNode trainer = JSON.readTree(dir.resolve(TRAINER_STATE).toFile());
        JsonNode data = JSON.readTree(dir.resolve(DATA_FILE).toFile());
        JsonNode sched = JSON.readTree(dir.resolve(SCHEDULER_FILE).toFile());
        JsonNode rng = JSON.readTree(dir.resolve(RNG_FILE).toFile());
        Path scalerFile = dir.resolve(SCALER_FILE);
        Optional<TrainingState.Scaler> scaler = Optional.empty();
        if (Files.exists(scalerFile)) {
            JsonNode s = JSON.readTree(scalerFile.toFile());
            scaler = Optional.of(new TrainingState.Scaler(s.path("scale").asDouble(), s.path("growth_tracker").asInt(),
                    s.path("skipped_steps").asLong()));
        }
        List<JsonNode> history = new ArrayList<>();
        trainer.path("log_history").forEach(history::add);
        return new TrainingState(trainer.path("global_step").asLong(), trainer.path("epoch").asDouble(),
                trainer.path("num_input_tokens_seen").asLong(), history,
                new TrainingState.Scheduler(sched.path("lr_scheduler").asText(), sched.path("last_epoch").asLong(),
                        sched.path("base_lr").asDouble(), sched.path("warmup_steps").asLong(),
                        sched.path("total_steps").asLong(), sched.path("last_lr").asDouble()),
                rng.path("seed").asLong(),
                new TrainingState.DataPosition(data.path("epoch").asInt(), data.path("batch_index").asInt(),
                        data.path("batches_per_epoch").asInt(), data.path("gradient_accumulation_steps").asInt(),
                        data.path("world_size").asInt(1)),
                scaler,
                new TrainingState.Plan(trainer.path("eval_steps").asLong(), trainer.path("logging_steps").asLong(),
                        trainer.path("max_steps").asLong(), trainer.path("num_train_epochs").asLong(),
                        trainer.path("save_steps").asLong(), trainer.path("train_batch_size").asLong()));
    }

    private static void writeJson(Path file, JsonNode node) throws IOException {
        Files.writeString(file, JSON.writeValueAsString(node) + "\n");
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

    /** "the last checkpoint is PATH" or "no checkpoint was saved", for error messages. */
    static String describeLatest(Path outputDir) {
        try {
            return latest(outputDir).map(p -> "the last checkpoint is " + p).orElse("no checkpoint was saved");
        } catch (IOException e) {
            return "no checkpoint was saved";
        }
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
        prune(outputDir, limit, null);
    }

    /**
     * As transformers' {@code _rotate_checkpoints} with a best checkpoint ({@code load_best_model_at_end}): the best
     * moves to the second-to-last place, so it is kept, and a limit of 1 keeps 2 while the best is not the newest.
     *
     * @param best the best checkpoint, or null
     */
    public static void prune(Path outputDir, long limit, Path best) throws IOException {
        if (limit <= 0) {
            return;
        }
        List<Path> all = new java.util.ArrayList<>(list(outputDir));
        Path newest = all.isEmpty() ? null : all.getLast();
        if (best != null && all.contains(best) && !best.equals(newest)) {
            all.remove(best);
            all.add(all.size() - 1, best);
            if (limit == 1) limit = 2;
        }
        for (int i = 0; i < all.size() - limit; i++) {
            remove(all.get(i));
        }
    }

    /** At the end, with a limit of 1 and a best checkpoint (transformers' train end): every other one goes. */
    public static void keepOnly(Path outputDir, Path best) throws IOException {
        for (Path p : list(outputDir)) {
            if (!p.equals(best)) remove(p);
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
