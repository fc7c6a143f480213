package dev.jtune.data.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A small, deterministic byte-level BPE trainer (GPT-2 style): the text is split with GPT-2's
 * pre-tokenization pattern, each piece becomes its UTF-8 bytes written in GPT-2's byte alphabet, and the
 * most frequent adjacent pair is merged until the vocabulary is full or no pair occurs twice. Ties go to
 * the pair whose left, then right, symbol sorts first, so the same text always gives the same merges.
 */
final class ByteLevelBpeTrainer {

    /** GPT-2's pre-tokenization pattern, as the tokenizers library's ByteLevel pre-tokenizer uses it. */
    static final Pattern GPT2_PATTERN = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    private static final int MIN_PAIR_FREQUENCY = 2;

    /** GPT-2's bytes_to_unicode: byte b is written as the character BYTE_CHARS[b]. */
    static final char[] BYTE_CHARS = new char[256];

    static {
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            BYTE_CHARS[b] = printable ? (char) b : (char) (256 + n++);
        }
    }

    /** The trained model: the tokens after the 256 byte symbols, in id order, and the merges in rank order. */
    record Result(List<String> newTokens, List<Merge> merges) {}

    /** One merge rule: the adjacent symbols {@code left} and {@code right} become {@code left + right}. */
    record Merge(String left, String right) {
        @Override
        public String toString() {
            return left + " " + right;
        }
    }

    private ByteLevelBpeTrainer() {}

    /** The byte-level form of a string: its UTF-8 bytes, each as its GPT-2 alphabet character. */
    static String toByteLevel(String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        StringBuilder sb = new StringBuilder(bytes.length);
        for (byte b : bytes) {
            sb.append(BYTE_CHARS[b & 0xFF]);
        }
        return sb.toString();
    }

    /**
     * Learns merges on {@code text} until {@code maxNewTokens} new tokens exist or no pair is frequent
     * enough. Merges that would spell one of {@code reserved} (the special tokens) are never made.
     */
    static Result train(String text, int maxNewTokens, Set<String> reserved) {
        // Word frequencies; a TreeMap keeps the word order (and so everything below) independent of hashing.
        TreeMap<String, Long> wordCounts = new TreeMap<>();
        Matcher m = GPT2_PATTERN.matcher(text);
        while (m.find()) {
            wordCounts.merge(toByteLevel(m.group()), 1L, Long::sum);
        }

        List<String> symbols = new ArrayList<>();
        Map<String, Integer> symbolIds = new HashMap<>();
        for (int b = 0; b < 256; b++) {
            String s = String.valueOf(BYTE_CHARS[b]);
            symbolIds.put(s, symbols.size());
            symbols.add(s);
        }

        int nWords = wordCounts.size();
        int[][] words = new int[nWords][];
        long[] counts = new long[nWords];
        int w = 0;
        for (var e : wordCounts.entrySet()) {
            String word = e.getKey();
            int[] syms = new int[word.length()];
            for (int i = 0; i < syms.length; i++) {
                syms[i] = symbolIds.get(String.valueOf(word.charAt(i)));
            }
            words[w] = syms;
            counts[w] = e.getValue();
            w++;
        }

        Map<Long, Long> pairCounts = new HashMap<>();
        Map<Long, Set<Integer>> pairWords = new HashMap<>();
        for (int i = 0; i < nWords; i++) {
            int[] syms = words[i];
            for (int j = 0; j + 1 < syms.length; j++) {
                long pair = pair(syms[j], syms[j + 1]);
                pairCounts.merge(pair, counts[i], Long::sum);
                pairWords.computeIfAbsent(pair, k -> new HashSet<>()).add(i);
            }
        }

        // Highest count first; ties by the left symbol's string, then the right's.
        Comparator<long[]> order = Comparator.<long[]>comparingLong(e -> -e[0])
                .thenComparing(e -> symbols.get(left(e[1])))
                .thenComparing(e -> symbols.get(right(e[1])));
        PriorityQueue<long[]> queue = new PriorityQueue<>(order);
        pairCounts.forEach((pair, count) -> queue.add(new long[] {count, pair}));

        List<String> newTokens = new ArrayList<>();
        List<Merge> merges = new ArrayList<>();
        Set<Long> merged = new HashSet<>();
        Set<Long> banned = new HashSet<>();
        Map<Long, Long> delta = new HashMap<>();
        while (newTokens.size() < maxNewTokens) {
            long[] top = queue.poll();
            if (top == null) {
                break;
            }
            long pair = top[1];
            long current = pairCounts.getOrDefault(pair, 0L);
            if (current != top[0] || banned.contains(pair)) {
                continue; // stale queue entry
            }
            if (current < MIN_PAIR_FREQUENCY) {
                break;
            }
            int a = left(pair);
            int b = right(pair);
            String token = symbols.get(a) + symbols.get(b);
            if (reserved.contains(token)) {
                banned.add(pair);
                continue;
            }
            Integer id = symbolIds.get(token);
            if (id == null) {
                id = symbols.size();
                symbols.add(token);
                symbolIds.put(token, id);
                newTokens.add(token);
            }
            if (merged.add(pair)) {
                merges.add(new Merge(symbols.get(a), symbols.get(b)));
            }

            delta.clear();
            for (int wi : new TreeSet<>(pairWords.get(pair))) {
                int[] before = words[wi];
                int[] after = applyMerge(before, a, b, id);
                if (after.length == before.length) {
                    continue;
                }
                long c = counts[wi];
                for (int j = 0; j + 1 < before.length; j++) {
                    delta.merge(pair(before[j], before[j + 1]), -c, Long::sum);
                }
                for (int j = 0; j + 1 < after.length; j++) {
                    long p = pair(after[j], after[j + 1]);
                    delta.merge(p, c, Long::sum);
                    pairWords.computeIfAbsent(p, k -> new HashSet<>()).add(wi);
                }
                words[wi] = after;
            }
            // Apply the changes in a fixed order so that the queue sees the same sequence every run.
            for (var e : new TreeMap<>(delta).entrySet()) {
                if (e.getValue() == 0) {
                    continue;
                }
                long p = e.getKey();
                long updated = pairCounts.getOrDefault(p, 0L) + e.getValue();
                if (updated <= 0) {
                    pairCounts.remove(p);
                } else {
                    pairCounts.put(p, updated);
                    queue.add(new long[] {updated, p});
                }
            }
            pairCounts.remove(pair);
            pairWords.remove(pair);
        }
        return new Result(List.copyOf(newTokens), List.copyOf(merges));
    }

    private static int[] applyMerge(int[] syms, int a, int b, int merged) {
        int[] out = null;
        int n = 0;
        for (int i = 0; i < syms.length; i++) {
            if (i + 1 < syms.length && syms[i] == a && syms[i + 1] == b) {
                if (out == null) {
                    out = new int[syms.length - 1];
                    System.arraycopy(syms, 0, out, 0, i);
                    n = i;
                }
                out[n++] = merged;
                i++;
            } else if (out != null) {
                out[n++] = syms[i];
            }
        }
        if (out == null) {
            return syms;
        }
        return n == out.length ? out : java.util.Arrays.copyOf(out, n);
    }

    private static long pair(int a, int b) {
        return ((long) a << 32) | (b & 0xFFFFFFFFL);
    }

    private static int left(long pair) {
        return (int) (pair >>> 32);
    }

    private static int right(long pair) {
        return (int) pair;
    }
}
