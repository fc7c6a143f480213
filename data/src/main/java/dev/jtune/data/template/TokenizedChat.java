package dev.jtune.data.template;

import dev.jtune.data.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.TreeSet;

/**
 * A tokenized {@link RenderedChat}: the token ids, and per token the index of the message (turn) it belongs
 * to and whether it is trained on.
 *
 * <p>The text is tokenized as transformers' {@code apply_chat_template(..., tokenize=True)} does: once, with
 * {@code add_special_tokens=False}, so special tokens the template writes ({@code <s>}, {@code <|im_start|>})
 * become their ids (the tokenizers library matches added tokens in the text) and no second BOS is added.
 *
 * <p>Token boundaries: for each character boundary {@code b} of the chat (turn starts, trained-part starts and
 * ends), the tokens before it are the longest common prefix of the tokenization of {@code text[0, b)} and
 * that of the whole text. So a token that straddles a boundary, or whose tokenization depends on text past it
 * (a merge across it, a pre-tokenizer look-ahead), belongs to the segment after the boundary: to the trained
 * part at an assistant's start, to what follows at its end. Character offsets are not used: with
 * SentencePiece- and byte-level BPE, offsets are trimmed and do not tile the text.
 */
public record TokenizedChat(int[] inputIds, int[] turnIndex, boolean[] trainable) {
    /** The label of tokens that are not trained on (PyTorch's cross-entropy {@code ignore_index}). */
    public static final int IGNORE_INDEX = -100;

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

    /** Tokenizes {@code chat} with {@code tokenizer}; see the class comment for the rules. */
    public static TokenizedChat of(Tokenizer tokenizer, RenderedChat chat) {
        Objects.requireNonNull(tokenizer, "tokenizer");
        String text = chat.text();
        int[] ids = tokenizer.encode(text, false);
        TreeSet<Integer> boundarySet = new TreeSet<>();
        for (RenderedChat.Turn t : chat.turns()) {
            boundarySet.add(t.start());
            boundarySet.add(t.trainStart());
            boundarySet.add(t.trainEnd());
        }
        boundarySet.remove(0);
        boundarySet.remove(text.length());
        List<Integer> boundaries = new ArrayList<>(boundarySet);
        List<String> prefixes = new ArrayList<>(boundaries.size());
        for (int b : boundaries) {
            prefixes.add(text.substring(0, b));
        }
        List<int[]> encoded = prefixes.isEmpty() ? List.of() : tokenizer.encodeBatch(prefixes, false);
        // tokenAt(b): number of tokens before character boundary b; nondecreasing in b.
        java.util.Map<Integer, Integer> tokenAt = new java.util.HashMap<>();
        tokenAt.put(0, 0);
        tokenAt.put(text.length(), ids.length);
        int last = 0;
        for (int k = 0; k < boundaries.size(); k++) {
            int[] p = encoded.get(k);
            int common = 0;
            int max = Math.min(p.length, ids.length);
            while (common < max && p[common] == ids[common]) {
                common++;
            }
            last = Math.max(last, common);
            tokenAt.put(boundaries.get(k), last);
        }
        int[] turnIndex = new int[ids.length];
        boolean[] trainable = new boolean[ids.length];
        Arrays.fill(turnIndex, -1);
        for (RenderedChat.Turn t : chat.turns()) {
            int from = tokenAt.get(t.start());
            int to = tokenAt.get(t.end());
            for (int i = from; i < to; i++) {
                turnIndex[i] = t.index();
            }
            int trainFrom = tokenAt.get(t.trainStart());
            int trainTo = tokenAt.get(t.trainEnd());
            for (int i = trainFrom; i < trainTo; i++) {
                trainable[i] = true;
            }
        }
        return new TokenizedChat(ids, turnIndex, trainable);
    }
}
