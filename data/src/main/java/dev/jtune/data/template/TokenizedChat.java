package dev.jtune.data.template;

import dev.jtune.data.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;
import java.util.function.Function;

/**
 * A tokenized {@link RenderedChat}: the token ids, and per token the index of the message (turn) it belongs
 * to and whether it is trained on. Which characters of each turn are trained is chosen by the caller
 * ({@link #of(Tokenizer, RenderedChat, Function)}); by default ({@link #ASSISTANT_CONTENT_AND_MARKER})
 * an assistant's content and end marker.
 *
 * <p>The text is tokenized as transformers' {@code apply_chat_template(..., tokenize=True)} does: once, with
 * {@code add_special_tokens=False}, so special tokens the template writes ({@code <s>}, {@code <|im_start|>})
 * become their ids (the tokenizers library matches added tokens in the text) and no second BOS is added.
 *
 * <p>Token boundaries: for each character boundary {@code b} of the chat (turn starts, trained-span starts and
 * ends), the tokens before it are the longest common prefix of the tokenization of {@code text[0, b)} and
 * that of the whole text. The rule for a token that straddles a boundary (a merge across it, or a
 * pre-tokenizer look-ahead that changes its tokenization):
 * <ul>
 *   <li>it belongs to the later turn, except where the earlier turn's trained part ends right at the boundary:
 *       then it stays with that turn;
 *   <li>it is trained if it overlaps the trained characters: a token straddling the start of an assistant's
 *       content (SentencePiece's {@code ▁Hello} after {@code [/INST]}) and one straddling the end of its end
 *       marker ({@code >\n} when {@code <|im_end|>} is not a special token) are both trained, so the model
 *       learns the whole marker. Trained tokens always lie in the turn whose span they overlap.
 * </ul>
 * Where special tokens sit at the boundaries (every published template with its own tokenizer) nothing
 * straddles and the trained tokens decode to exactly the trained text. Character offsets are not used: with
 * SentencePiece and byte-level BPE they are trimmed and do not tile the text.
 */
public record TokenizedChat(int[] inputIds, int[] turnIndex, boolean[] trainable) {
    /** The label of tokens that are not trained on (PyTorch's cross-entropy {@code ignore_index}). */
    public static final int IGNORE_INDEX = -100;

    /** Trains an assistant's content and end marker, nothing of other roles. */
    public static final Function<RenderedChat.Turn, RenderedChat.Span> ASSISTANT_CONTENT_AND_MARKER =
            t -> t.span(t.isAssistant(), t.isAssistant());

    public TokenizedChat {
        Objects.requireNonNull(inputIds, "inputIds");
        if (turnIndex.length != inputIds.length || trainable.length != inputIds.length) {
            throw new IllegalArgumentException("inputIds, turnIndex and trainable must have the same length");
        }
        inputIds = inputIds.clone();
        turnIndex = turnIndex.clone();
        trainable = trainable.clone();
    }

    public int size() {
        return inputIds.length;
    }

    @Override
    public int[] inputIds() {
        return inputIds.clone();
    }

    @Override
    public int[] turnIndex() {
        return turnIndex.clone();
    }

    @Override
    public boolean[] trainable() {
        return trainable.clone();
    }

    /** The ids, with {@link #IGNORE_INDEX} where the token is not trained on. */
    public int[] labels() {
        int[] labels = new int[inputIds.length];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = trainable[i] ? inputIds[i] : IGNORE_INDEX;
        }
        return labels;
    }

    /** The ids of the tokens of turn {@code turn}, in order; with {@code trainedOnly} only the trained ones. */
    public int[] idsOfTurn(int turn, boolean trainedOnly) {
        return java.util.stream.IntStream.range(0, inputIds.length)
                .filter(i -> turnIndex[i] == turn && (!trainedOnly || trainable[i]))
                .map(i -> inputIds[i])
                .toArray();
    }

    /** {@link #of(Tokenizer, RenderedChat, Function)} training {@link #ASSISTANT_CONTENT_AND_MARKER}. */
    public static TokenizedChat of(Tokenizer tokenizer, RenderedChat chat) {
        return of(tokenizer, chat, ASSISTANT_CONTENT_AND_MARKER);
    }

    /**
     * Tokenizes {@code chat} with {@code tokenizer}, training per turn the characters {@code trained} gives
     * (a span within the turn, usually {@link RenderedChat.Turn#span}); see the class comment for the rules.
     */
    public static TokenizedChat of(Tokenizer tokenizer, RenderedChat chat,
            Function<RenderedChat.Turn, RenderedChat.Span> trained) {
        return ofSpans(tokenizer, chat, t -> {
            RenderedChat.Span span = trained.apply(t);
            return span.isEmpty() ? List.of() : List.of(span);
        });
    }

    /**
     * As {@link #of(Tokenizer, RenderedChat, Function)} with any number of trained spans per turn (a content and
     * a marker that are not adjacent, see {@link RenderedChat.Turn#trained}), in order, within the turn.
     */
    public static TokenizedChat ofSpans(Tokenizer tokenizer, RenderedChat chat,
            Function<RenderedChat.Turn, List<RenderedChat.Span>> trained) {
        Objects.requireNonNull(tokenizer, "tokenizer");
        String text = chat.text();
        Tokenizer.Encoded encoded = tokenizer.encodeWithOffsets(text, false);
        int[] ids = encoded.ids();
        List<RenderedChat.Turn> turns = chat.turns();
        int n = turns.size();
        List<List<RenderedChat.Span>> spans = new ArrayList<>(n);
        TreeSet<Integer> boundarySet = new TreeSet<>();
        for (RenderedChat.Turn t : turns) {
            List<RenderedChat.Span> list = List.copyOf(trained.apply(t));
            for (RenderedChat.Span span : list) {
                if (span.start() < t.start() || span.end() > t.end()) {
                    throw new IllegalArgumentException("trained span " + span + " is not within turn " + t);
                }
                if (!span.isEmpty()) { // an empty span's ends are never looked up
                    boundarySet.add(span.start());
                    boundarySet.add(span.end());
                }
            }
            spans.add(list.stream().filter(sp -> !sp.isEmpty()).toList());
            boundarySet.add(t.start());
        }
        boundarySet.remove(0);
        boundarySet.remove(text.length());
        List<Integer> boundaries = new ArrayList<>(boundarySet);
        // floor(b): tokens before character boundary b (a straddling token excluded); ceil(b): tokens that
        // start before b (a straddling token included). Both nondecreasing in b.
        Map<Integer, Integer> floor = new HashMap<>();
        Map<Integer, Integer> ceil = new HashMap<>();
        floor.put(0, 0);
        ceil.put(0, 0);
        floor.put(text.length(), ids.length);
        ceil.put(text.length(), ids.length);
        int[][] offsets = offsets(encoded, text);
        if (offsets != null) {
            // from the tokens' character spans: one encoding for the whole chat
            int f = 0;
            int c = 0;
            for (int b : boundaries) {
                while (f < ids.length && offsets[1][f] <= b) {
                    f++;
                }
                while (c < ids.length && offsets[0][c] < b) {
                    c++;
                }
                floor.put(b, f);
                ceil.put(b, Math.max(c, f));
            }
        } else {
            prefixBoundaries(tokenizer, text, ids, boundaries, floor, ceil);
        }
        int[] first = new int[n + 1]; // first token of each turn; first[n] = ids.length
        first[n] = ids.length;
        for (int t = n - 1; t >= 1; t--) {
            int b = turns.get(t).start();
            List<RenderedChat.Span> before = spans.get(t - 1);
            boolean trainedUpToHere = !before.isEmpty() && before.get(before.size() - 1).end() == b;
            first[t] = Math.min(first[t + 1], trainedUpToHere ? ceil.get(b) : floor.get(b));
        }
        int[] turnIndex = new int[ids.length];
        boolean[] trainable = new boolean[ids.length];
        Arrays.fill(turnIndex, -1);
        for (int t = 0; t < n; t++) {
            for (int i = first[t]; i < first[t + 1]; i++) {
                turnIndex[i] = t;
            }
            for (RenderedChat.Span span : spans.get(t)) {
                int from = Math.max(first[t], floor.get(span.start()));
                int to = Math.min(first[t + 1], ceil.get(span.end()));
                for (int i = from; i < to; i++) {
                    trainable[i] = true;
                }
            }
        }
        return new TokenizedChat(ids, turnIndex, trainable);
    }

    /**
     * The tokens' {start, end} in Java char indices (the library counts code points), or null when they are
     * not usable (missing, or not in order): then the boundaries come from prefix encodings.
     */
    private static int[][] offsets(Tokenizer.Encoded e, String text) {
        int n = e.ids().length;
        int cps = text.codePointCount(0, text.length());
        int[] charAt = null;
        if (cps != text.length()) {
            charAt = new int[cps + 1];
            int cp = 0;
            for (int i = 0; i < text.length(); i += Character.charCount(text.codePointAt(i))) {
                charAt[cp++] = i;
            }
            charAt[cps] = text.length();
        }
        int[] starts = new int[n];
        int[] ends = new int[n];
        int prevStart = 0;
        for (int i = 0; i < n; i++) {
            int s = e.starts()[i];
            int t = e.ends()[i];
            if (s < 0 || t < s || t > cps || s < prevStart) {
                return null;
            }
            prevStart = s;
            starts[i] = charAt == null ? s : charAt[s];
            ends[i] = charAt == null ? t : charAt[t];
        }
        return new int[][] {starts, ends};
    }

    /** floor/ceil from the common prefix of each prefix's encoding with the whole text's. */
    private static void prefixBoundaries(Tokenizer tokenizer, String text, int[] ids, List<Integer> boundaries,
            Map<Integer, Integer> floor, Map<Integer, Integer> ceil) {
        List<String> prefixes = new ArrayList<>(boundaries.size());
        for (int b : boundaries) {
            prefixes.add(text.substring(0, b));
        }
        List<int[]> encoded = prefixes.isEmpty() ? List.of() : tokenizer.encodeBatch(prefixes, false);
        int lastFloor = 0;
        int lastCeil = 0;
        for (int k = 0; k < boundaries.size(); k++) {
            int[] p = encoded.get(k);
            int common = 0;
            int max = Math.min(p.length, ids.length);
            while (common < max && p[common] == ids[common]) {
                common++;
            }
            lastFloor = Math.max(lastFloor, common);
            lastCeil = Math.max(lastCeil, Math.min(ids.length, p.length > common ? common + 1 : common));
            lastCeil = Math.max(lastCeil, lastFloor);
            floor.put(boundaries.get(k), lastFloor);
            ceil.put(boundaries.get(k), lastCeil);
        }
    }
}
