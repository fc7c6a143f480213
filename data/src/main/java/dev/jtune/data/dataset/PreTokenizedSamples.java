package dev.jtune.data.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jtune.data.tokenizer.Tokenizer;
import java.util.List;
import java.util.Objects;

/**
 * A {@code datasets:} entry without {@code type:}: rows already tokenized, as Axolotl loads them
 * ({@code utils/data/wrappers.py} at {@link dev.jtune.data.config.AxolotlKeys#COMMIT}: a dataset with
 * {@code input_ids}, {@code attention_mask} and {@code labels} columns is used as it is). Each row is
 * {@code {"input_ids": [...], "attention_mask": [...], "labels": [...]}}, the three of one length; a label is the
 * token's id (trained) or -100 (not). Axolotl has no default for any of the three: without them its loader finds no
 * prompt strategy, so a row lacking one is an error here too. Ids are not checked against anything but the
 * tokenizer's size; no special token is added.
 */
public final class PreTokenizedSamples implements SampleBuilder {
    private final Tokenizer tokenizer;

    public PreTokenizedSamples(Tokenizer tokenizer) {
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
    }

    @Override
    public List<Sample> build(SourceRow row) {
        JsonNode o = Fields.object(row);
        int[] ids = ints(row, o, "input_ids");
        int[] mask = ints(row, o, "attention_mask");
        int[] labels = ints(row, o, "labels");
        if (mask.length != ids.length || labels.length != ids.length) {
            throw row.error("input_ids has " + ids.length + " tokens, attention_mask " + mask.length + ", labels "
                    + labels.length + " (expected one length)");
        }
        int vocab = tokenizer.vocabSize();
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocab) {
                throw row.error("input_ids[" + i + "] is " + ids[i] + ", outside the tokenizer's " + vocab
                        + " tokens (0.." + (vocab - 1) + ")");
            }
            // Padding inside a row: jtune packs and pads rows itself, so a sample carries only real tokens.
            if (mask[i] != 1) {
                throw row.error("attention_mask[" + i + "] is " + mask[i] + " (expected 1: give each sample"
                        + " without padding; jtune pads batches itself)");
            }
            if (labels[i] != ids[i] && labels[i] != Sample.IGNORE_INDEX) {
                throw row.error("labels[" + i + "] is " + labels[i] + ", neither the token's id " + ids[i]
                        + " (trained) nor " + Sample.IGNORE_INDEX + " (not trained)");
            }
        }
        return List.of(new Sample(ids, labels));
    }

    private static int[] ints(SourceRow row, JsonNode o, String field) {
        JsonNode v = o.get(field);
        if (v == null || v.isNull() || v.isMissingNode()) {
            throw row.error("field '" + field + "' missing: a dataset without type: is read as pre-tokenized, each"
                    + " row with input_ids, attention_mask and labels (as Axolotl's loader); for raw rows give"
                    + " type: (alpaca, chat_template, completion, ...)");
        }
        if (!v.isArray()) {
            throw row.error("field '" + field + "' is " + Fields.kind(v) + " (expected an array of integers)");
        }
        int[] out = new int[v.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode x = v.get(i);
            if (!x.isIntegralNumber() || !x.canConvertToInt()) {
                throw row.error("field '" + field + "[" + i + "]' is " + Fields.kind(x) + " (expected an integer)");
            }
            out[i] = x.intValue();
        }
        return out;
    }
}
