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
        permits AlpacaSamples, ChatSamples, CompletionSamples, InputOutputSamples, MistralChatSamples,
        PreTokenizedSamples, PretrainSamples, UserDefinedSamples {

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
        if (usesMistralCommon(cfg)) {
            return mistralCommon(ds, cfg, tokenizer);
        }
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

    /** {@code tokenizer_use_mistral_common: true}. */
    static boolean usesMistralCommon(TrainConfig cfg) {
        return cfg.trainer().bool("tokenizer_use_mistral_common").orElse(false);
    }

    /**
     * Axolotl's mistral-common path: chat datasets only (its MistralStrategy), with the model folder's tekken.json;
     * the tokenizer jtune loaded must have tekken.json's vocabulary (it is the folder's tekken.json when there is no
     * tokenizer.json).
     */
    private static SampleBuilder mistralCommon(DatasetConfig ds, TrainConfig cfg, Tokenizer tokenizer) {
        if (!(ds.format() instanceof DatasetFormat.Chat c)) {
            throw new DatasetException(null, 0, "dataset " + ds.path() + ": tokenizer_use_mistral_common: true is"
                    + " implemented for type: chat_template datasets (Axolotl's MistralStrategy); this dataset's type"
                    + " would be tokenized by mistral-common's raw encode, which jtune does not do");
        }
        dev.jtune.data.template.MistralInstruct instruct;
        try {
            instruct = dev.jtune.data.template.MistralInstruct.load(tokenizer.directory());
        } catch (dev.jtune.data.tokenizer.TokenizerException e) {
            throw new DatasetException(null, 0, "tokenizer_use_mistral_common: " + e.getMessage(), e);
        }
        if (instruct.tekken().vocabSize() != tokenizer.vocabSize()) {
            throw new DatasetException(null, 0, "tokenizer_use_mistral_common: " + instruct.tekken().file() + " has "
                    + instruct.tekken().vocabSize() + " tokens but the folder's tokenizer.json " + tokenizer.vocabSize()
                    + "; they must be the same vocabulary");
        }
        if (cfg.chatTemplate().isPresent() || c.chatTemplate().isPresent() || cfg.chatTemplateJinja().isPresent()) {
            throw new DatasetException(null, 0, "dataset " + ds.path() + ": chat_template is not used with"
                    + " tokenizer_use_mistral_common: true (mistral-common encodes the chat itself, as in Axolotl);"
                    + " leave it out");
        }
        return new MistralChatSamples(c, new ChatSamples(c, // only its row reading is used: no template renders
                dev.jtune.data.template.ChatTemplates.byName("chatml", null), tokenizer, cfg.trainOnInputs()), instruct, cfg.trainOnInputs());
    }

    /** Labels equal to the ids (everything trained). */
    static Sample allTrained(int[] ids) {
        return new Sample(ids, ids.clone());
    }
}
