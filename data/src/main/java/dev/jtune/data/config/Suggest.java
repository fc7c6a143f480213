package dev.jtune.data.config;

import java.util.Collection;
import java.util.Optional;

/**
 * "Did you mean ...?" hints for misspelt keys and values, by case-insensitive match or small edit distance.
 * Public so the command line can give the same hints for its own names.
 */
public final class Suggest {
    /** Largest edit distance still offered as a suggestion; beyond it, hints are more noise than help. */
    public static final int MAX_DISTANCE = 2;

    /** Shortest known name that a longer word may start with and still be suggested. */
    static final int MIN_PREFIX = 4;

    private Suggest() {}

    /**
     * Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two adjacent
     * characters each cost 1 (swaps are the commonest typo, so they should not cost 2).
     */
    public static int editDistance(String a, String b) {
        int[][] d = new int[a.length() + 1][b.length() + 1];
        for (int i = 0; i <= a.length(); i++) d[i][0] = i;
        for (int j = 0; j <= b.length(); j++) d[0][j] = j;
        for (int i = 1; i <= a.length(); i++) {
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                int best = Math.min(Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
                if (i > 1 && j > 1 && a.charAt(i - 1) == b.charAt(j - 2) && a.charAt(i - 2) == b.charAt(j - 1)) {
                    best = Math.min(best, d[i - 2][j - 2] + 1);
                }
                d[i][j] = best;
            }
        }
        return d[a.length()][b.length()];
    }

    /**
     * The candidate {@code word} most likely meant: one equal ignoring case, else the nearest within
     * {@link #MAX_DISTANCE} edits (and fewer edits than the word has characters, so that two-letter words do
     * not match everything); ties go to the earlier candidate. Failing those, the longest candidate of at
     * least {@value #MIN_PREFIX} characters that the word starts with.
     */
    public static Optional<String> closest(String word, Collection<String> candidates) {
        for (String candidate : candidates) {
            if (candidate.equalsIgnoreCase(word)) return Optional.of(candidate);
        }
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (String candidate : candidates) {
            int distance = editDistance(word, candidate);
            if (distance < bestDistance) {
                best = candidate;
                bestDistance = distance;
            }
        }
        if (bestDistance <= MAX_DISTANCE && bestDistance < word.length()) return Optional.of(best);
        // A known key with something appended ("sequence_length" for "sequence_len") is far in edits but
        // plainly meant; take the longest such prefix, and only a real word's worth of it.
        String prefix = null;
        for (String candidate : candidates) {
            if (candidate.length() >= MIN_PREFIX && word.startsWith(candidate)
                    && (prefix == null || candidate.length() > prefix.length())) {
                prefix = candidate;
            }
        }
        return Optional.ofNullable(prefix);
    }

    /** {@code " (did you mean 'x'?)"} for the closest candidate, or an empty string when none is close. */
    public static String didYouMean(String word, Collection<String> candidates) {
        return closest(word, candidates).map(s -> " (did you mean '" + s + "'?)").orElse("");
    }
}
