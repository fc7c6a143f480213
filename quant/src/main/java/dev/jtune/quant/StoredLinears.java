package dev.jtune.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.LlamaModel.LinearFactory;
import java.util.Set;

/**
 * The linear factory of a checkpoint stored quantized ({@link Nf4Checkpoint}, {@link Int8Checkpoint}): its quantized
 * modules get a layer over the stored tensors, the others {@link DenseLinear}s. Through {@link LinearFactory#create}
 * (a wrapping factory, e.g. LoRA) a quantized module's dense weight is closed and the stored tensor used all the same.
 * One {@link Nf4Linear.SharedBuffers} serves the factory's model.
 */
final class StoredLinears {
    /** A quantized module's layer over its stored tensors, [out, in] as config.json implies. */
    @FunctionalInterface
    interface Stored {
        Linear create(String name, long out, long in, NDManager manager, Nf4Linear.SharedBuffers shared);
    }

    private StoredLinears() {}

    static LinearFactory factory(Set<String> quantized, Stored stored) {
        Nf4Linear.SharedBuffers shared = new Nf4Linear.SharedBuffers();
        return new LinearFactory() {
            @Override
            public Linear create(String name, NDArray weight) {
                if (!quantized.contains(name)) {
                    return new DenseLinear(weight);
                }
                NDManager parent = weight.getManager();
                long[] shape = weight.getShape().getShape();
                weight.close();
                return stored.create(name, shape[0], shape[1], parent, shared);
            }

            @Override
            public Linear createStored(String name, long out, long in, NDManager manager) {
                return quantized.contains(name) ? stored.create(name, out, in, manager, shared) : null;
            }
        };
    }
}
