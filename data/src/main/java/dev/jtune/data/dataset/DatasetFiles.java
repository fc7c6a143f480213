package dev.jtune.data.dataset;

import dev.jtune.data.config.DatasetConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.stream.Stream;

/**
 * The local files a dataset entry reads, in order. {@code path} (against a base directory) is a file or a
 * directory; a directory gives its {@code .json} and {@code .jsonl} files, searched recursively, hidden
 * ({@code .name}) files and folders left out, sorted by their path relative to it. {@code data_files}
 * entries, relative to a directory {@code path}, are files, folders (searched the same way) or globs
 * ({@code *.jsonl}, {@code train/**}), taken in the order given. With {@code ds_type: json} every file
 * is parsed as JSON whatever its name ({@code .jsonl} still line by line); without it a file must be named
 * {@code .json} or {@code .jsonl}, each possibly compressed ({@code .jsonl.zst}, {@link Compressed}). {@code name}
 * (a Hub dataset's subset) reads the folder of that name under a directory {@code path}. Local files form one
 * split, {@code train}, of which {@code split:} may read slices ({@link SlicedRows}). Nothing is downloaded: a
 * {@code path} that does not exist is an error that says so.
 */
public final class DatasetFiles {
    private DatasetFiles() {}

    /** @throws DatasetException when nothing matches, a file is missing, or the entry asks for what jtune cannot read */
    public static List<Path> resolve(DatasetConfig ds, Path baseDir) {
        Path path = ds.resolve(baseDir).toAbsolutePath().normalize();
        if (ds.dsType().isPresent() && !ds.dsType().get().equals("json")) {
            throw new DatasetException(null, 0, "dataset " + ds.path() + ": ds_type '" + ds.dsType().get()
                    + "' is not supported; jtune reads JSON (.json arrays, .jsonl lines): convert the data, or use ds_type: json");
        }
        for (String split : ds.splitSpec().splits()) {
            if (!split.equals("train")) {
                throw new DatasetException(null, 0, "dataset " + ds.path() + ": split '" + split
                        + "' does not exist; local files form a single split, 'train' (slices such as train[:20%]"
                        + " select part of it)");
            }
        }
        if (!Files.exists(path)) {
            throw new DatasetException(null, 0, "dataset " + ds.path() + ": no such file or directory (" + path
                    + "); jtune does not download datasets from the Hugging Face Hub: fetch it first (e.g. "
                    + "huggingface-cli download --repo-type dataset " + ds.path() + " --local-dir DIR) and give the local path");
        }
        if (ds.name().isPresent()) {
            // A Hub dataset's configuration (subset) is the folder of that name in its snapshot (allenai/c4's en/).
            Path subset = path.resolve(ds.name().get());
            if (!Files.isDirectory(path) || !Files.isDirectory(subset)) {
                throw new DatasetException(null, 0, "dataset " + ds.path() + ": name '" + ds.name().get()
                        + "': no folder " + subset + "; jtune reads a subset from its folder in the dataset's snapshot");
            }
            path = subset;
        }
        boolean forced = ds.dsType().isPresent();
        List<Path> files = new ArrayList<>();
        if (Files.isDirectory(path)) {
            if (ds.dataFiles().isEmpty()) {
                files.addAll(walk(path, forced));
            } else {
                LinkedHashSet<Path> selected = new LinkedHashSet<>();
                for (String entry : ds.dataFiles()) {
                    selected.addAll(select(path, entry, forced));
                }
                files.addAll(selected);
            }
            if (files.isEmpty()) {
                throw new DatasetException(path, 0, "no .json or .jsonl files" + (ds.dataFiles().isEmpty() ? "" : " among data_files " + ds.dataFiles()));
            }
        } else {
            if (!ds.dataFiles().isEmpty()) {
                throw new DatasetException(path, 0, "data_files selects files within a directory, but path is a file");
            }
            files.add(path);
        }
        for (Path f : files) {
            if (!forced && !isJson(f)) {
                throw new DatasetException(f, 0, "cannot tell the format from the name: name it .json or .jsonl (compressed:"
                        + " .jsonl.gz, .jsonl.bz2, .jsonl.xz, .jsonl.zst), or set ds_type: json");
            }
        }
        return List.copyOf(files);
    }

    private static boolean isJson(Path f) {
        String name = Compressed.plainName(f.getFileName().toString());
        return name.endsWith(".json") || name.endsWith(".jsonl");
    }

    private static List<Path> select(Path dir, String entry, boolean forced) {
        if (entry.chars().anyMatch(c -> "*?[{".indexOf(c) >= 0)) {
            PathMatcher matcher = FileSystems.getDefault().getPathMatcher("glob:" + entry);
            List<Path> matched = walk(dir, true).stream().filter(f -> matcher.matches(dir.relativize(f))).toList();
            if (matched.isEmpty()) {
                throw new DatasetException(dir, 0, "data_files pattern '" + entry + "' matches no file");
            }
            return matched;
        }
        Path p = dir.resolve(entry).normalize();
        if (Files.isDirectory(p)) {
            return walk(p, forced);
        }
        if (!Files.isRegularFile(p)) {
            throw new DatasetException(dir, 0, "data_files entry '" + entry + "' does not exist");
        }
        return List.of(p);
    }

    /** Regular files under {@code dir}, hidden ones left out, JSON-named unless {@code any}, sorted by relative path. */
    private static List<Path> walk(Path dir, boolean any) {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile)
                    .filter(f -> dir.relativize(f).toString().isEmpty()
                            || java.util.stream.StreamSupport.stream(dir.relativize(f).spliterator(), false)
                                    .noneMatch(part -> part.toString().startsWith(".")))
                    .filter(f -> any || isJson(f))
                    .sorted((a, b) -> dir.relativize(a).toString().replace('\\', '/')
                            .compareTo(dir.relativize(b).toString().replace('\\', '/')))
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (UncheckedIOException e) {
            throw new DatasetException(dir, 0, "cannot list: " + e.getCause().getMessage(), e);
        }
    }
}
