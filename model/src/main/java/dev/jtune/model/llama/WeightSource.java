package dev.jtune.model.llama;

/**
 * Named tensors by their transformers names ({@code model.layers.0.self_attn.q_proj.weight}), as floats.
 * A safetensors checkpoint is one; tests supply arrays directly.
 */
public interface WeightSource {
    /** Whether a tensor of this name exists. */
    boolean contains(String name);

    /** The tensor's shape. */
    long[] shape(String name);

    /** The tensor's values, row-major, converted to float exactly from F32, F16 or BF16. */
    float[] floats(String name);

    /** Where the weights come from, for error messages. */
    String describe();
}
