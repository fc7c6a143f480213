package dev.jtune.data.dataset;

import dev.jtune.data.config.DatasetConfig;
import dev.jtune.data.config.DatasetFormat;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.List;

/**
 * Turns one row into samples (token ids and labels) for one dataset {@code type:}: {@link AlpacaSamples},
 * {@link ChatSamples} ({@code sharegpt}, {@code chat_template}), {@link CompletionSamples},
 * {@link InputOutputSamples} ({@code input_output}), {@link UserDefinedSamples} (a user-defined format) or
 * {@link PreTokenizedSamples} (no {@code type:}: rows already tokenized). Builders are
 * immutable once made.
 */
public sealed interface SampleBuilder
        permits AlpacaSamples, ChatSamples, CompletionSamples, InputOutputSamples, PreTokenizedSamples, PretrainSamples,
        UserDefinedSamples {

    /**
     * The samples of {@code row}: one, or for {@code completion} text longer than {@code sequence_len} several.
     *
     * @throws DatasetException naming the row's file, line and field when the row does not fit the format
     */
    List<Sample> build(SourceRow row);

    /**
     * The builder for {@code ds}'s format.
     *
     * @param baseDir where a {@code chat_template_jinja} file path is resolved
     * @throws DatasetException when the chat template cannot be had
     */
    static SampleBuilder of(DatasetConfig ds, TrainConfig cfg, Tokenizer tokenizer, Path baseDir) {
        return switch (ds.format()) {
            case DatasetFormat.Alpaca a -> new AlpacaSamples(a, tokenizer, cfg.trainOnInputs());
            case DatasetFormat.Completion c -> new CompletionSamples(c, tokenizer, cfg.sequenceLen());
            case DatasetFormat.Pretrain p -> new PretrainSamples(p, tokenizer, cfg.sequenceLen());
            case DatasetFormat.Chat c -> new ChatSamples(c, ChatSamples.template(ds, cfg, tokenizer, baseDir), tokenizer,
                    cfg.trainOnInputs());
            case DatasetFormat.InputOutput io -> new InputOutputSamples(io, tokenizer);
            case DatasetFormat.UserDefined u -> new UserDefinedSamples(u, tokenizer, cfg.trainOnInputs());
            case DatasetFormat.PreTokenized t -> new PreTokenizedSamples(tokenizer);
        };
    }

    /** Labels equal to the ids (everything trained). */
    static Sample allTrained(int[] ids) {
        return new Sample(ids, ids.clone());
    }
}
