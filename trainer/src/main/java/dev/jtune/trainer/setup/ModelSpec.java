package dev.jtune.trainer.setup;

import dev.jtune.model.engine.Dtype;
import dev.jtune.trainer.dist.ProcessGroup;
import java.nio.file.Path;
import java.util.Objects;

/**
 * What {@link AssembledModel#load} builds: a Hugging Face checkpoint folder computed in one dtype, its frozen
 * projections dense or in NF4, with or without a LoRA adapter, and with the frozen base sharded over a group or not.
 *
 * @param modelDir the checkpoint folder (config.json, *.safetensors)
 * @param dtype the compute dtype; frozen weights are converted to it
 * @param base the frozen linear layers dense, in NF4 (QLoRA; or as stored in bitsandbytes' 4-bit layout), or in
 *     LLM.int8() ({@code load_in_8bit})
 * @param adapter the LoRA adapter, if any
 * @param shardBaseOver shard the frozen base weights of each decoder layer over this group (FSDP), or null
 * @param vocab grow the embedding and head to this vocabulary before loading (new tokens), or null; a saved adapter
 *     whose embed_tokens/lm_head copies have more rows grows the model to them in any case
 * @param fp32Weights hold every weight in fp32 and cast it to {@code dtype} where it is used (full fine-tuning with
 *     fp32 master weights under mixed precision: {@link dev.jtune.model.llama.LlamaModel#loadFp32Weights}); only for a
 *     dense base without adapter
 * @param reinitSeed {@code reinit_weights: true}: the weights are not read from the checkpoint but drawn as
 *     transformers' {@code _init_weights} draws a fresh model's ({@link dev.jtune.model.llama.RandomInit}, with the
 *     checkpoint's {@code initializer_range}), from this seed; empty: the checkpoint's weights
 */
public record ModelSpec(Path modelDir, Dtype dtype, Base base, AdapterSource adapter, ProcessGroup shardBaseOver,
        VocabGrowth vocab, boolean fp32Weights, java.util.OptionalLong reinitSeed) {
    /** How the frozen linear layers are held. */
    public enum Base {
        /** In the compute dtype. */
        DENSE,
        /** NF4 with double quantization ({@code load_in_4bit}, QLoRA). */
        NF4,
        /** bitsandbytes' LLM.int8() ({@code load_in_8bit}): int8 codes, row scales, outlier columns in 16-bit. */
        INT8;

        /** The base {@code load_in_4bit} / {@code load_in_8bit} ask for (both set is refused earlier). */
        public static Base of(boolean loadIn4bit, boolean loadIn8bit) {
            return loadIn4bit ? NF4 : loadIn8bit ? INT8 : DENSE;
        }
    }

    public ModelSpec {
        Objects.requireNonNull(modelDir, "modelDir");
        Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(base, "base");
        Objects.requireNonNull(adapter, "adapter");
        Objects.requireNonNull(reinitSeed, "reinitSeed");
        if (fp32Weights && (base != Base.DENSE || !(adapter instanceof AdapterSource.None))) {
            throw new IllegalArgumentException("fp32 master weights are for full fine-tuning of a dense model");
        }
    }

    /** The checkpoint's weights. */
    public ModelSpec(Path modelDir, Dtype dtype, Base base, AdapterSource adapter, ProcessGroup shardBaseOver,
            VocabGrowth vocab, boolean fp32Weights) {
        this(modelDir, dtype, base, adapter, shardBaseOver, vocab, fp32Weights, java.util.OptionalLong.empty());
    }

    /** Weights in the compute dtype. */
    public ModelSpec(Path modelDir, Dtype dtype, Base base, AdapterSource adapter, ProcessGroup shardBaseOver,
            VocabGrowth vocab) {
        this(modelDir, dtype, base, adapter, shardBaseOver, vocab, false);
    }

    /** Without vocabulary growth. */
    public ModelSpec(Path modelDir, Dtype dtype, Base base, AdapterSource adapter, ProcessGroup shardBaseOver) {
        this(modelDir, dtype, base, adapter, shardBaseOver, null);
    }

    /** A dense model without adapter or sharding. */
    public static ModelSpec of(Path modelDir, Dtype dtype) {
        return new ModelSpec(modelDir, dtype, Base.DENSE, AdapterSource.NONE, null);
    }

    /** Whether the frozen base is NF4. */
    public boolean nf4() {
        return base == Base.NF4;
    }

    public ModelSpec withAdapter(AdapterSource source) {
        return new ModelSpec(modelDir, dtype, base, source, shardBaseOver, vocab, fp32Weights, reinitSeed);
    }

    /** The same model with its vocabulary grown as {@code growth} says (null: not grown). */
    public ModelSpec withVocab(VocabGrowth growth) {
        return new ModelSpec(modelDir, dtype, base, adapter, shardBaseOver, growth, fp32Weights, reinitSeed);
    }

    /** The same model with fp32 (master) weights computing in {@link #dtype}: see {@code fp32Weights}. */
    public ModelSpec withFp32Weights() {
        return new ModelSpec(modelDir, dtype, base, adapter, shardBaseOver, vocab, true, reinitSeed);
    }

    /** {@code reinit_weights: true}: freshly initialised weights from {@code seed} instead of the checkpoint's. */
    public ModelSpec withReinit(long seed) {
        return new ModelSpec(modelDir, dtype, base, adapter, shardBaseOver, vocab, fp32Weights,
                java.util.OptionalLong.of(seed));
    }
}
