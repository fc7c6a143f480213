package dev.jtune.model.generate;

import dev.jtune.data.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.function.Consumer;
import java.util.function.IntConsumer;

/**
 * Turns tokens arriving one by one into text printed as it comes, like transformers' {@code TextStreamer}:
 * all tokens so far are decoded (special tokens skipped) and only the new tail is emitted. Text that ends in an
 * incomplete UTF-8 sequence (a byte-level token holding half a character decodes to U+FFFD) is held back until
 * a later token completes it, so streamed chunks concatenate to exactly the final decoded text.
 */
public final class TextStream implements IntConsumer {
    private final Tokenizer tokenizer;
    private final Consumer<String> sink;
    private int[] ids = new int[16];
    private int size;
    private int emitted;

    public TextStream(Tokenizer tokenizer, Consumer<String> sink) {
        this.tokenizer = tokenizer;
        this.sink = sink;
    }

    @Override
    public void accept(int id) {
        if (size == ids.length) {
            ids = Arrays.copyOf(ids, size * 2);
        }
        ids[size++] = id;
        String text = tokenizer.decode(Arrays.copyOf(ids, size), true);
        if (!text.endsWith("\uFFFD") && text.length() > emitted) {
            sink.accept(text.substring(emitted));
            emitted = text.length();
        }
    }

    /** Emits whatever was held back (a trailing incomplete character at the very end). */
    public void finish() {
        String text = tokenizer.decode(Arrays.copyOf(ids, size), true);
        if (text.length() > emitted) {
            sink.accept(text.substring(emitted));
            emitted = text.length();
        }
    }
}
