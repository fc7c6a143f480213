package dev.jtune.trainer.setup;

import ai.djl.ndarray.NDManager;
import dev.jtune.lora.LoraModel;
import dev.jtune.lora.PeftAdapter;
import dev.jtune.model.hf.HfCheckpoint;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.llama.WeightSource;
import dev.jtune.quant.Int8;
import dev.jtune.quant.Nf4;
import dev.jtune.trainer.dist.ShardedWeights;
import java.util.Optional;

/**
 * A model ready to run, assembled the one way every verb assembles it: open the checkpoint, choose the frozen
 * projections (dense, NF4 or LLM.int8; dense and NF4 sharded per decoder layer for FSDP), wrap the targets in a LoRA adapter (fresh or
 * loaded), load, attach. {@code train}, {@code inference} and {@code score} call {@link #load}.
 *
 * @param checkpoint the open checkpoint (its config, its tokenizer-free metadata)
 * @param model the decoder
 * @param lora the adapter, if any (its tensors live in the model's memory)
 * @param baseShards the sharded frozen base, when the spec asked for it
 */
public record AssembledModel(HfCheckpoint checkpoint, LlamaModel model, Optional<LoraModel> lora,
        Optional<ShardedWeights> baseShards) implements AutoCloseable {

    /**
     * Loads {@code spec} into a sub-manager of {@code manager}.
     *
     * @throws dev.jtune.lora.AdapterException if the adapter does not fit the model
     */
    public static AssembledModel load(ModelSpec spec, NDManager manager) {
        LlamaModel.LinearFactory base = switch (spec.base()) {
            case DENSE -> LoraModel.dense();
            case NF4 -> Nf4.linearFactory();
            case INT8 -> Int8.linearFactory();
        };
        ShardedWeights shards = null;
        if (spec.shardBaseOver() != null) {
            if (spec.base() == ModelSpec.Base.INT8) {
                // TrainCommand refuses fsdp with load_in_8bit first, naming the config; this guards other callers.
                throw new IllegalArgumentException("an 8-bit (LLM.int8) base is not sharded: FSDP shards dense or NF4"
                        + " bases only");
            }
            shards = spec.nf4() ? ShardedWeights.nf4(spec.shardBaseOver(), base)
                    : new ShardedWeights(spec.shardBaseOver(), base);
            base = shards;
        }
        PeftAdapter saved = spec.adapter() instanceof AdapterSource.Saved s ? PeftAdapter.load(s.dir()) : null;
        LoraModel lora = switch (spec.adapter()) {
            case AdapterSource.None n -> null;
            case AdapterSource.Fresh f -> LoraModel.fresh(f.settings(), f.seed(), base);
            case AdapterSource.Saved s -> LoraModel.fromAdapter(saved, base);
        };
        HfCheckpoint checkpoint = HfCheckpoint.open(spec.modelDir());
        LlamaModel model = null;
        try {
            LlamaConfig config = checkpoint.config();
            WeightSource weights = spec.reinitSeed().isPresent()
                    ? new dev.jtune.model.llama.RandomInit(config, spec.reinitSeed().getAsLong(),
                            VocabSettings.initializerRange(spec.modelDir())).weights()
                    : checkpoint;
            // The vocabulary grows for new tokens, or to the rows of a saved adapter's embed_tokens/lm_head copies
            // (an adapter trained with added tokens: PEFT loads it after resize_token_embeddings as well).
            int rows = Math.max(spec.vocab() == null ? 0 : spec.vocab().rows(), savedRows(saved));
            if (rows > config.vocabSize()) {
                VocabGrowth growth = spec.vocab() != null
                        ? new VocabGrowth(rows, spec.vocab().meanResizing(), spec.vocab().initializerRange(),
                                spec.vocab().seed())
                        : new VocabGrowth(rows, false, VocabSettings.initializerRange(spec.modelDir()), 0);
                weights = growth.grow(weights);
                config = config.withVocabSize(rows);
            }
            model = spec.fp32Weights() ? LlamaModel.loadFp32Weights(config, weights, spec.dtype(), manager)
                    : LlamaModel.load(config, weights, spec.dtype(), manager, lora != null ? lora : base);
            if (lora != null) {
                lora.attach(model);
            }
            // Loading leaves its per-tensor float[]s (up to ~1 GB of Java heap at 7B) and freed native copies: a full
            // collection lets G1 give the heap back, malloc_trim the C heap; the step's peak is then the model's own.
            System.gc();
            dev.jtune.model.engine.Torch.releaseFreeMemory();
            return new AssembledModel(checkpoint, model, Optional.ofNullable(lora), Optional.ofNullable(shards));
        } catch (RuntimeException e) {
            if (model != null) {
                model.close();
            }
            checkpoint.close();
            throw e;
        }
    }

    /** The most rows of a saved adapter's embed_tokens or lm_head copy (0 when it has none). */
    private static int savedRows(PeftAdapter adapter) {
        if (adapter == null) {
            return 0;
        }
        int rows = 0;
        for (String module : java.util.List.of("model.embed_tokens", "lm_head")) {
            PeftAdapter.Tensor t = adapter.tensors().get(PeftAdapter.savedKey(module));
            if (t != null && t.shape().length == 2) {
                rows = Math.max(rows, Math.toIntExact(t.shape()[0]));
            }
        }
        return rows;
    }

    /** The model's vocabulary size as loaded (grown when new tokens or a grown adapter asked for it). */
    public int vocabSize() {
        return model.config().vocabSize();
    }

    @Override
    public void close() {
        model.close();
        checkpoint.close();
    }
}
