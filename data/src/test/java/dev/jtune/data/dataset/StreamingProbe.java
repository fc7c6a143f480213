package dev.jtune.data.dataset;

import java.nio.file.Path;
import java.util.List;

/** Child-JVM entry point of {@link JsonRowsStreamingTest}: counts the rows of each file given, prints the counts. */
public final class StreamingProbe {
    private StreamingProbe() {}

    public static void main(String[] args) {
        StringBuilder out = new StringBuilder();
        for (String arg : args) {
            long n = 0;
            long chars = 0;
            try (JsonRows rows = JsonRows.open(List.of(Path.of(arg)))) {
                while (rows.hasNext()) {
                    chars += rows.next().value().get("text").asText().length();
                    n++;
                }
            }
            out.append(n).append(' ').append(chars).append('\n');
        }
        System.out.print(out);
    }
}
