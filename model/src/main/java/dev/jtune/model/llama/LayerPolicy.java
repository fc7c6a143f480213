package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import java.util.function.UnaryOperator;

/**
 * How {@link LlamaModel#decode} runs each decoder layer. The model owns the stack (embedding, layers in order,
 * the cache's advance); a policy only wraps one layer's call — which is where training puts its memory policy:
 * no autograd and a scoped manager (evaluation, the forward of gradient checkpointing), recording layer inputs
 * for the recompute, seeding dropout per layer, gathering and freeing FSDP shards.
 */
@FunctionalInterface
public interface LayerPolicy {
    /** Calls the layer as it is: inference, scoring, a plain autograd forward. */
    LayerPolicy DIRECT = (index, x, layer) -> layer.apply(x);

    /**
     * Runs layer {@code index} on {@code x}.
     *
     * @param layer the layer's forward with this pass's {@link ForwardContext}; call it once
     * @return the layer's output, the next layer's input
     */
    NDArray run(int index, NDArray x, UnaryOperator<NDArray> layer);
}
