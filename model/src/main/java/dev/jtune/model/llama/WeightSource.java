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

    /** Tensors held in memory: {@code values} by name, each with its {@code shapes} entry. */
    static WeightSource of(java.util.Map<String, float[]> values, java.util.Map<String, long[]> shapes,
            String description) {
        return new WeightSource() {
            @Override
            public boolean contains(String name) {
                return values.containsKey(name);
            }

            @Override
            public long[] shape(String name) {
                return shapes.get(name).clone();
            }

            @Override
            public float[] floats(String name) {
                return values.get(name);
            }

            @Override
            public String describe() {
                return description;
            }
        };
    }
}
