package dev.jtune.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import dev.jtune.model.llama.Linear;

/**
 * A projection trained whole (PEFT's {@code modules_to_save}, e.g. {@code lm_head}): an fp32 trainable weight
 * [out, in]; the input is cast to fp32 and the output back to the input's dtype.
 */
public final class SavedModuleLinear implements Linear {
    private final NDArray weight;

    /** Takes ownership of {@code weight} [out, in] fp32, which becomes trainable. */
    public SavedModuleLinear(NDArray weight) {
        if (weight.getShape().dimension() != 2 || weight.getDataType() != DataType.FLOAT32) {
            throw new IllegalArgumentException("expected an fp32 [out, in] weight, got " + weight.getDataType() + " "
                    + weight.getShape());
        }
        this.weight = weight;
        weight.setRequiresGradient(true);
    }

    /** The trainable weight [out, in], fp32. */
    public NDArray weight() {
        return weight;
    }

    @Override
    public NDArray forward(NDArray x) {
        return LoraKernels.linearIn(x, weight);
    }

    /** {@inheritDoc} */
    @Override
    public void prepareBackward() {
        // The trainable weight lives as long as the projection: nothing to restore.
    }

    @Override
    public long inFeatures() {
        return weight.getShape().get(1);
    }

    @Override
    public long outFeatures() {
        return weight.getShape().get(0);
    }

    @Override
    public void close() {
        weight.close();
    }
}
