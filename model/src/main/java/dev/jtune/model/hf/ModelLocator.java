package dev.jtune.model.hf;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Finds a Hugging Face model directory: a local folder, or a repository id ({@code meta-llama/Llama-2-7b-hf})
 * already present in the Hugging Face hub cache ({@code $HF_HUB_CACHE}, {@code $HF_HOME/hub} or
 * {@code ~/.cache/huggingface/hub}). Nothing is ever downloaded.
 */
public final class ModelLocator {
    private ModelLocator() {}

    /** Resolves {@code nameOrPath} using the process environment. */
    public static Path resolve(String nameOrPath) {
        return resolve(nameOrPath, System.getenv(), Path.of(System.getProperty("user.home")));
    }

    /** Resolves {@code nameOrPath} against an explicit environment and home directory (for tests). */
    public static Path resolve(String nameOrPath, Map<String, String> env, Path home) {
        Path local = Path.of(nameOrPath);
        if (Files.isDirectory(local)) {
            return local;
        }
        Path cache = hubCache(env, home);
        if (nameOrPath.matches("[A-Za-z0-9][\\w.-]*/[\\w.-]+")) {
            Path repo = cache.resolve("models--" + nameOrPath.replace("/", "--"));
            Path snapshots = repo.resolve("snapshots");
            try {
                Path ref = repo.resolve("refs").resolve("main");
                if (Files.isRegularFile(ref)) {
                    Path snap = snapshots.resolve(Files.readString(ref).strip());
                    if (Files.isDirectory(snap)) {
                        return snap;
                    }
                }
                if (Files.isDirectory(snapshots)) {
                    try (var list = Files.list(snapshots)) {
                        var only = list.filter(Files::isDirectory).toList();
                        if (only.size() == 1) {
                            return only.get(0);
                        }
                    }
                }
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot read the hub cache entry " + repo + ": " + e.getMessage(), e);
            }
            throw new IllegalArgumentException("model '" + nameOrPath + "' is neither a local directory nor in the Hugging Face cache ("
                    + repo + "); jtune does not download models: fetch it first (e.g. huggingface-cli download "
                    + nameOrPath + ") or give a local path");
        }
        throw new IllegalArgumentException("model directory " + local.toAbsolutePath() + " does not exist");
    }

    static Path hubCache(Map<String, String> env, Path home) {
        String hubCache = env.get("HF_HUB_CACHE");
        if (hubCache != null && !hubCache.isBlank()) {
            return Path.of(hubCache);
        }
        String hfHome = env.get("HF_HOME");
        if (hfHome != null && !hfHome.isBlank()) {
            return Path.of(hfHome).resolve("hub");
        }
        return home.resolve(".cache").resolve("huggingface").resolve("hub");
    }
}
