package dev.jtune.data.dataset;

import dev.jtune.data.config.DatasetFormat;
import dev.jtune.data.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * {@code pretraining_dataset} entries of {@code type: pretrain}: Axolotl's PretrainTokenizationStrategy
 * (prompt_strategies/pretrain.py at {@link dev.jtune.data.config.AxolotlKeys#COMMIT}). The text is tokenized with
 * the tokenizer's special tokens, truncated to {@code sequence_len - 1} tokens with the overflow kept as further
 * windows that overlap the previous one by {@code min(256, (sequence_len - 1) / 2)} tokens (transformers'
 * {@code return_overflowing_tokens} with {@code stride}, done by the same tokenizers library:
 * {@link Tokenizer#encodeWindows}); EOS is appended to every window and every token is trained.
 */
public final class PretrainSamples implements SampleBuilder {
    private final DatasetFormat.Pretrain format;
    private final Tokenizer tokenizer;
    private final int sequenceLen;
    private final int eos;

    public PretrainSamples(DatasetFormat.Pretrain format, Tokenizer tokenizer, int sequenceLen) {
        this.format = Objects.requireNonNull(format, "format");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        if (sequenceLen < 4) {
            throw new IllegalArgumentException("pretraining windows need sequence_len >= 4, got " + sequenceLen);
        }
        this.sequenceLen = sequenceLen;
        this.eos = tokenizer.eosId().orElseThrow(() -> new IllegalArgumentException(tokenizer.directory()
                + ": the tokenizer has no EOS token, which Axolotl's pretraining windows end with; give"
                + " special_tokens: {eos_token: ...}"));
    }

    /** The overlap of consecutive windows, as Axolotl computes it. */
    public static int stride(int sequenceLen) {
        return Math.min(256, (sequenceLen - 1) / 2);
    }

    @Override
    public List<Sample> build(SourceRow row) {
        String text = Fields.string(row, Fields.object(row), format.textColumn(), format.textColumn());
        List<int[]> windows = tokenizer.encodeWindows(text, sequenceLen - 1, stride(sequenceLen));
        List<Sample> out = new ArrayList<>(windows.size());
        for (int[] w : windows) {
            int[] ids = Arrays.copyOf(w, w.length + 1);
            ids[w.length] = eos;
            out.add(SampleBuilder.allTrained(ids));
        }
        return out;
    }
}
