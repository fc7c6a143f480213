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
 * @param nf4 quantize the frozen linear layers to NF4 (QLoRA), or read them as stored in bitsandbytes' 4-bit layout
 * @param adapter the LoRA adapter, if any
 * @param shardBaseOver shard the frozen base weights of each decoder layer over this group (FSDP), or null
 * @param vocab grow the embedding and head to this vocabulary before loading (new tokens), or null; a saved adapter
 *     whose embed_tokens/lm_head copies have more rows grows the model to them in any case
 */
public record ModelSpec(Path modelDir, Dtype dtype, boolean nf4, AdapterSource adapter, ProcessGroup shardBaseOver,
        VocabGrowth vocab) {
    public ModelSpec {
        Objects.requireNonNull(modelDir, "modelDir");
        Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(adapter, "adapter");
    }

    /** Without vocabulary growth. */
    public ModelSpec(Path modelDir, Dtype dtype, boolean nf4, AdapterSource adapter, ProcessGroup shardBaseOver) {
        this(modelDir, dtype, nf4, adapter, shardBaseOver, null);
    }

    /** A dense model without adapter or sharding. */
    public static ModelSpec of(Path modelDir, Dtype dtype) {
        return new ModelSpec(modelDir, dtype, false, AdapterSource.NONE, null);
    }

    public ModelSpec withAdapter(AdapterSource source) {
        return new ModelSpec(modelDir, dtype, nf4, source, shardBaseOver, vocab);
    }

    /** The same model with its vocabulary grown as {@code growth} says (null: not grown). */
    public ModelSpec withVocab(VocabGrowth growth) {
        return new ModelSpec(modelDir, dtype, nf4, adapter, shardBaseOver, growth);
    }
}
