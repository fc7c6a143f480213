package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import dev.jtune.trainer.dist.ShardedWeights;
import dev.jtune.trainer.optim.ShardedAdamW;
import java.util.List;
import java.util.Locale;

/**
 * What {@link ForwardBackward} does around each decoder layer under FSDP: gather the layer's trainable chunks
 * before it runs and free them after, free its gathered frozen base weights, and hand its recomputed gradients to
 * the sharded optimizer.
 *
 * @param trainable the sharded optimizer holding the layers' trainable tensors, or null (only the base is sharded)
 * @param base the frozen base weights loaded through this factory, or null (only the trainable tensors are sharded)
 */
record FsdpLayers(ShardedAdamW trainable, ShardedWeights base) implements ForwardBackward.LayerHooks {
    /** The console line that says how a run of {@code world} ranks splits its work and memory. */
    static String describe(int world, int microBatchesPerStep, boolean fsdp, ShardedAdamW trainable,
            ShardedWeights base) {
        return String.format(Locale.ROOT, "distributed: %d ranks, %s, %d micro-batches per step%s%s", world,
                fsdp ? "FSDP (trainable tensors, gradients and optimizer state sharded)" : "data parallel",
                microBatchesPerStep, trainable != null ? String.format(Locale.ROOT,
                        ", trainable tensors held: %.2f of %.2f MiB per rank", trainable.heldBytes() / 1048576.0,
                        trainable.totalBytes() / 1048576.0) : "",
                base != null ? String.format(Locale.ROOT, ", base weights sharded: %.1f of %.1f MiB per rank",
                        base.shardBytes() / 1048576.0, base.totalBytes() / 1048576.0) : "");
    }

    @Override
    public void before(int layer) {
        if (trainable != null) {
            trainable.gather(layer);
        }
    }

    @Override
    public void after(int layer) {
        if (base != null) {
            base.release(layer);
        }
        if (trainable != null) {
            trainable.release(layer);
        }
    }

    @Override
    public List<NDArray> shardedParameters(int layer) {
        return trainable == null ? List.of() : trainable.layerParameters(layer);
    }

    @Override
    public void gradients(int layer, NDList grads) {
        trainable.addGradients(layer, grads);
    }
}
