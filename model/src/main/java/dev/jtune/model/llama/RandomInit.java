package dev.jtune.model.llama;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * transformers' initialisation of a fresh causal LM of any {@link Family}: every linear and the embedding drawn
 * from N(0, initializer_range²), the padding token's embedding row zero, biases zero, RMSNorm weights one (zero
 * for Gemma's, which scale by {@code 1 + weight}).
 *
 * <p>Each tensor has its own generator seeded from the run seed and the tensor's name, so tensors can be
 * produced one at a time (a large model never sits in memory whole) and the result is the same bit for
 * bit on every machine.
 */
public final class RandomInit {
    /** transformers' default {@code initializer_range}. */
    public static final double INITIALIZER_RANGE = 0.02;

    private final LlamaConfig config;
    private final long seed;
    private final double initializerRange;

    public RandomInit(LlamaConfig config, long seed) {
        this(config, seed, INITIALIZER_RANGE);
    }

    /** With the checkpoint's own {@code initializer_range} (config.json), as transformers' {@code _init_weights} reads it. */
    public RandomInit(LlamaConfig config, long seed, double initializerRange) {
        if (!(initializerRange > 0)) throw new IllegalArgumentException("initializer_range must be positive");
        this.config = config;
        this.seed = seed;
        this.initializerRange = initializerRange;
    }

    /**
     * These weights as a model's source, each tensor generated when the loader asks for it (no checkpoint file,
     * never the whole model in memory at once).
     */
    public WeightSource weights() {
        return weights(1);
    }

    /**
     * {@link #weights()} with every tensor but the RMSNorm weights multiplied by {@code gain} (in float), for
     * tests: N(0, 0.02²) weights give near-uniform logits, where a greedy choice hinges on rounding; a gain of
     * about 10 gives peaked attention and logit gaps well above it. A gain of 1 leaves the values as they are.
     */
    public WeightSource weights(double gain) {
        java.util.Map<String, Spec> byName = new java.util.LinkedHashMap<>();
        for (Spec s : specs()) {
            byName.put(s.name(), s);
        }
        float g = (float) gain;
        return new WeightSource() {
            @Override
            public boolean contains(String name) {
                return byName.containsKey(name);
            }

            @Override
            public long[] shape(String name) {
                return byName.get(name).shape().clone();
            }

            @Override
            public float[] floats(String name) {
                float[] v = values(byName.get(name));
                if (g != 1f && !isNorm(name)) {
                    for (int i = 0; i < v.length; i++) {
                        v[i] *= g;
                    }
                }
                return v;
            }

            @Override
            public String describe() {
                return "random init (seed " + seed + (g == 1f ? ")" : ", gain " + gain + ")");
            }
        };
    }

    private static boolean isNorm(String name) {
        return name.endsWith("norm.weight");
    }

    /** A tensor to create: its transformers name and shape. */
    public record Spec(String name, long[] shape) {
        public long numel() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    /** Every tensor of the checkpoint, in transformers' module order ({@link LlamaConfig#tensors()}). */
    public List<Spec> specs() {
        List<Spec> out = new ArrayList<>();
        for (TensorSpec t : config.tensors()) {
            out.add(new Spec(t.name(), t.shape()));
        }
        return out;
    }

    /** The values of one tensor, row-major. */
    public float[] values(Spec spec) {
        long n = spec.numel();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(spec.name() + " has " + n + " elements, more than one Java array holds");
        }
        float[] v = new float[(int) n];
        if (isNorm(spec.name())) {
            // Gemma's norms scale by (1 + weight): transformers initialises their weights to zero.
            java.util.Arrays.fill(v, config.family().gemma() ? 0f : 1f);
            return v;
        }
        if (spec.name().endsWith(".bias")) {
            return v; // transformers zeroes a fresh linear's bias
        }
        Random r = new Random(seed * 0x9E3779B97F4A7C15L + spec.name().hashCode());
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextGaussian() * initializerRange);
        }
        Integer pad = config.padTokenId();
        if (spec.name().endsWith("embed_tokens.weight") && pad != null && pad >= 0 && pad < config.vocabSize()) {
            java.util.Arrays.fill(v, (int) (pad * spec.shape()[1]), (int) ((pad + 1) * spec.shape()[1]), 0f);
        }
        return v;
    }
}
