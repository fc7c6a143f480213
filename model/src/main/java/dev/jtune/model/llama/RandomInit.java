package dev.jtune.model.llama;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * transformers' initialisation of a fresh {@code LlamaForCausalLM}: every linear and the embedding drawn
 * from N(0, initializer_range²), the padding token's embedding row zero, RMSNorm weights one.
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

    public RandomInit(LlamaConfig config, long seed) {
        this.config = config;
        this.seed = seed;
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

    /** Every tensor of the checkpoint, in transformers' module order. */
    public List<Spec> specs() {
        LlamaConfig c = config;
        long e = c.hiddenSize();
        long q = (long) c.numAttentionHeads() * c.headDim();
        long kv = (long) c.numKeyValueHeads() * c.headDim();
        long ff = c.intermediateSize();
        List<Spec> out = new ArrayList<>();
        out.add(new Spec("model.embed_tokens.weight", new long[] {c.vocabSize(), e}));
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = "model.layers." + i + ".";
            out.add(new Spec(p + "self_attn.q_proj.weight", new long[] {q, e}));
            out.add(new Spec(p + "self_attn.k_proj.weight", new long[] {kv, e}));
            out.add(new Spec(p + "self_attn.v_proj.weight", new long[] {kv, e}));
            out.add(new Spec(p + "self_attn.o_proj.weight", new long[] {e, q}));
            out.add(new Spec(p + "mlp.gate_proj.weight", new long[] {ff, e}));
            out.add(new Spec(p + "mlp.up_proj.weight", new long[] {ff, e}));
            out.add(new Spec(p + "mlp.down_proj.weight", new long[] {e, ff}));
            out.add(new Spec(p + "input_layernorm.weight", new long[] {e}));
            out.add(new Spec(p + "post_attention_layernorm.weight", new long[] {e}));
        }
        out.add(new Spec("model.norm.weight", new long[] {e}));
        if (!c.tieWordEmbeddings()) {
            out.add(new Spec("lm_head.weight", new long[] {c.vocabSize(), e}));
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
            java.util.Arrays.fill(v, 1f);
            return v;
        }
        Random r = new Random(seed * 0x9E3779B97F4A7C15L + spec.name().hashCode());
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextGaussian() * INITIALIZER_RANGE);
        }
        Integer pad = config.padTokenId();
        if (spec.name().equals("model.embed_tokens.weight") && pad != null && pad >= 0 && pad < config.vocabSize()) {
            java.util.Arrays.fill(v, (int) (pad * spec.shape()[1]), (int) ((pad + 1) * spec.shape()[1]), 0f);
        }
        return v;
    }
}
