package dev.jtune.data.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jtune.data.config.DatasetFormat;
import dev.jtune.data.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.Objects;
import java.util.List;

/**
 * {@code type: input_output} (Axolotl's template-free format): a row is {@code {"segments": [{"text": ...,
 * "label": true|false}, ...]}}; each segment's text is tokenized on its own, without special tokens added (write
 * {@code <s>} or {@code <|begin_of_text|>} in the first segment where the model needs it; special-token text
 * becomes its token), the ids are concatenated, and a segment's tokens are trained where its label is true.
 */
public final class InputOutputSamples implements SampleBuilder {
    private final DatasetFormat.InputOutput format;
    private final Tokenizer tokenizer;

    public InputOutputSamples(DatasetFormat.InputOutput format, Tokenizer tokenizer) {
        this.format = Objects.requireNonNull(format, "format");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
    }

    @Override
    public List<Sample> build(SourceRow row) {
        JsonNode o = Fields.object(row);
        String field = format.fieldSegments();
        JsonNode segments = o.get(field);
        if (segments == null || !segments.isArray()) {
            throw row.error("field '" + field + "' is " + (segments == null ? "missing" : Fields.kind(segments))
                    + " (expected an array of {text, label})");
        }
        if (segments.isEmpty()) {
            throw row.error("field '" + field + "' holds no segments");
        }
        int[] ids = new int[0];
        int[] labels = new int[0];
        for (int i = 0; i < segments.size(); i++) {
            String at = field + "[" + i + "]";
            JsonNode s = segments.get(i);
            if (!s.isObject()) {
                throw row.error("field '" + at + "' is " + Fields.kind(s) + " (expected an object with 'text' and 'label')");
            }
            String text = Fields.string(row, s, "text", at + ".text");
            JsonNode label = s.get("label");
            if (label == null || !label.isBoolean()) {
                throw row.error("field '" + at + ".label' is " + (label == null ? "missing" : Fields.kind(label))
                        + " (expected true or false)");
            }
            int[] seg = tokenizer.encode(text, false);
            int from = ids.length;
            ids = Arrays.copyOf(ids, from + seg.length);
            labels = Arrays.copyOf(labels, from + seg.length);
            System.arraycopy(seg, 0, ids, from, seg.length);
            if (label.asBoolean()) {
                System.arraycopy(seg, 0, labels, from, seg.length);
            } else {
                Arrays.fill(labels, from, labels.length, Sample.IGNORE_INDEX);
            }
        }
        return List.of(new Sample(ids, labels));
    }
}
