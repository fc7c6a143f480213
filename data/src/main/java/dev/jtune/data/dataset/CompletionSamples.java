package dev.jtune.data.dataset;

import dev.jtune.data.config.DatasetFormat;
import dev.jtune.data.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * {@code type: completion}: the text tokenized with the tokenizer's special tokens (Llama: BOS in front) and
 * EOS appended (unless already last), as Axolotl's {@code completion}; every token trained. A text longer
 * than {@code sequence_len} tokens becomes consecutive chunks of {@code sequence_len} tokens (the last one
 * shorter), none dropped, as Axolotl's completion strategy slices it.
 */
public final class CompletionSamples implements SampleBuilder {
    private final DatasetFormat.Completion format;
    private final Tokenizer tokenizer;
    private final int sequenceLen;

    public CompletionSamples(DatasetFormat.Completion format, Tokenizer tokenizer, int sequenceLen) {
        this.format = Objects.requireNonNull(format, "format");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        if (sequenceLen <= 0) {
            throw new IllegalArgumentException("sequence_len must be positive, got " + sequenceLen);
        }
        this.sequenceLen = sequenceLen;
    }

    @Override
    public List<Sample> build(SourceRow row) {
        String text = Fields.string(row, Fields.object(row), format.field(), format.field());
        int[] ids = tokenizer.encode(text, true);
        if (tokenizer.eosId().isPresent() && (ids.length == 0 || ids[ids.length - 1] != tokenizer.eosId().getAsInt())) {
            ids = Arrays.copyOf(ids, ids.length + 1);
            ids[ids.length - 1] = tokenizer.eosId().getAsInt();
        }
        List<Sample> out = new ArrayList<>(ids.length / sequenceLen + 1);
        for (int from = 0; from < ids.length; from += sequenceLen) {
            out.add(SampleBuilder.allTrained(Arrays.copyOfRange(ids, from, Math.min(ids.length, from + sequenceLen))));
        }
        return out;
    }
}
