package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.safetensors.HalfFloats;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The decoder of every supported {@link Family} ({@code LlamaForCausalLM} and its relatives): token embedding,
 * decoder layers, final RMSNorm and the language-model head, computing in one {@link Dtype}.
 *
 * <p>This class holds the one decoder stack ({@link #decode}) that training (plain, recomputed, FSDP),
 * evaluation, scoring and cached generation all run: {@link #embed} (with the cast to the compute dtype), every
 * layer in order under a {@link LayerPolicy}, and the KV cache's advance; then {@link #finalNorm} and
 * {@link #logits}. The pieces are public so that the trainer can put its loss between the norm and the head
 * and recompute one layer ({@link #layer}) in backward.
 *
 * <p>Forward passes attach every intermediate to the manager of the {@code inputIds} they are given, so a
 * caller scopes a step's memory by creating its inputs in a step manager and closing it afterwards.
 */
public final class LlamaModel implements AutoCloseable {
    private final LlamaConfig config;
    private final Dtype dtype;
    private NDArray embedTokens; // replaceable once by a trainable copy, see replaceEmbedTokens
    private boolean castEmbeddings; // the embedding's dtype differs from the compute dtype
    private Dtype normCast; // the final norm's fp32 (master) weight is cast to this at each use; null: none
    private final List<DecoderLayer> layers;
    private final NDArray norm;
    private final Linear lmHead;
    private final Rope rope;
    private final Rope localRope; // Gemma 3's sliding layers' own base, else null
    private final NDManager manager;

    private LlamaModel(LlamaConfig config, Dtype dtype, NDArray embedTokens, List<DecoderLayer> layers, NDArray norm,
            Linear lmHead, Rope rope, Rope localRope, NDManager manager) {
        this.config = config;
        this.dtype = dtype;
        this.embedTokens = embedTokens;
        this.layers = List.copyOf(layers);
        this.norm = norm;
        this.lmHead = lmHead;
        this.rope = rope;
        this.localRope = localRope;
        this.manager = manager;
    }

    /** Builds a projection from the weights under a name prefix; lets adapters and quantization plug in. */
    @FunctionalInterface
    public interface LinearFactory {
        /**
         * @param name the module name without {@code .weight}, e.g. {@code model.layers.0.self_attn.q_proj}
         * @param weight the dense weight [out, in] in the compute dtype; the factory owns it
         */
        Linear create(String name, NDArray weight);

        /**
         * A projection built from a stored form of the weight (e.g. a checkpoint's NF4 tensors), so that the dense
         * weight is never read; or null, the default, to receive the dense weight through {@link #create}.
         *
         * @param out expected output features (the config's)
         * @param in expected input features
         * @param manager the model's manager: the projection's memory belongs under it
         */
        default Linear createStored(String name, long out, long in, NDManager manager) {
            return null;
        }

        /**
         * A projection built from the weight's values as read from the checkpoint, without a dense tensor in native
         * memory (NF4 quantizes them straight away: loading a 7B model never holds more than one weight's floats);
         * or null, the default, to receive the dense weight through {@link #create}.
         *
         * @param values supplies the weight [out, in] row-major, rounded to {@code dtype}; call it at most once
         * @param dtype the compute dtype the weight would have had
         * @param manager the model's manager: the projection's memory belongs under it
         */
        default Linear createFromValues(String name, long out, long in, java.util.function.Supplier<float[]> values,
                Dtype dtype, NDManager manager) {
            return null;
        }
    }

    /** Loads every weight of {@code config} from {@code source} into dense projections. */
    public static LlamaModel load(LlamaConfig config, WeightSource source, Dtype dtype, NDManager parent) {
        return load(config, source, dtype, parent, (name, weight) -> new DenseLinear(weight));
    }

    /**
     * Loads every weight of {@code config} from {@code source}, converting to {@code dtype}.
     *
     * @param parent the model's memory lives in a sub-manager of this, freed by {@link #close()}
     */
    public static LlamaModel load(LlamaConfig config, WeightSource source, Dtype dtype, NDManager parent,
            LinearFactory linears) {
        return load(config, source, dtype, dtype, parent, linears);
    }

    /**
     * Loads every weight of {@code config} in fp32 into dense projections, for a model that computes in
     * {@code compute}: each weight is cast to {@code compute} where it is used (projections, norms, biases, the
     * embedding's rows), so that the fp32 tensors are the leaves autograd reaches — a trainer's fp32 master weights
     * under mixed precision, as FSDP's {@code MixedPrecision(param_dtype=compute)} computes from an fp32 model.
     */
    public static LlamaModel loadFp32Weights(LlamaConfig config, WeightSource source, Dtype compute,
            NDManager parent) {
        Dtype castTo = compute == Dtype.FP32 ? null : compute;
        return load(config, source, Dtype.FP32, compute, parent, (name, weight) -> new DenseLinear(weight, castTo));
    }

    private static LlamaModel load(LlamaConfig config, WeightSource source, Dtype dtype, Dtype compute,
            NDManager parent, LinearFactory linears) {
        NDManager m = parent.newSubManager();
        Dtype castTo = dtype == compute ? null : compute;
        try {
            var loader = new Loader(config, source, dtype, castTo, m, linears);
            Family family = config.family();
            String prefix = config.architecture().textPrefix();
            NDArray embed = loader.tensor(prefix + "embed_tokens.weight", config.vocabSize(), config.hiddenSize());
            List<DecoderLayer> layers = new ArrayList<>();
            int e = config.hiddenSize();
            int qOut = config.numAttentionHeads() * config.headDim();
            int kvOut = config.numKeyValueHeads() * config.headDim();
            int ff = config.intermediateSize();
            boolean qkvBias = config.architecture().qkvBias();
            for (int i = 0; i < config.numHiddenLayers(); i++) {
                String p = prefix + "layers." + i + ".";
                String a = p + "self_attn.";
                boolean fused = family.fusedProjections();
                Attention attention = new Attention(config, i, new Attention.Parts(
                        fused ? null : loader.linear(a + "q_proj", qOut, e),
                        fused ? null : loader.linear(a + "k_proj", kvOut, e),
                        fused ? null : loader.linear(a + "v_proj", kvOut, e),
                        fused ? loader.linear(a + "qkv_proj", qOut + 2 * kvOut, e) : null,
                        loader.linear(a + "o_proj", e, qOut),
                        qkvBias ? loader.tensor(a + "q_proj.bias", qOut) : null,
                        qkvBias ? loader.tensor(a + "k_proj.bias", kvOut) : null,
                        qkvBias ? loader.tensor(a + "v_proj.bias", kvOut) : null,
                        config.architecture().outputBias() ? loader.tensor(a + "o_proj.bias", e) : null,
                        family.qkNorm() ? loader.norm(a + "q_norm.weight", config.headDim()) : null,
                        family.qkNorm() ? loader.norm(a + "k_norm.weight", config.headDim()) : null), castTo);
                Mlp mlp = fused
                        ? new Mlp(null, null, loader.linear(p + "mlp.gate_up_proj", 2 * ff, e),
                                loader.linear(p + "mlp.down_proj", e, ff), false)
                        : new Mlp(loader.linear(p + "mlp.gate_proj", ff, e), loader.linear(p + "mlp.up_proj", ff, e),
                                null, loader.linear(p + "mlp.down_proj", e, ff), family.gemma());
                layers.add(new DecoderLayer(
                        loader.norm(p + "input_layernorm.weight", e),
                        attention,
                        loader.norm(p + "post_attention_layernorm.weight", e),
                        family.gemma() ? loader.norm(p + "pre_feedforward_layernorm.weight", e) : null,
                        family.gemma() ? loader.norm(p + "post_feedforward_layernorm.weight", e) : null,
                        mlp));
            }
            NDArray norm = loader.tensor(prefix + "norm.weight", e);
            // Tied models reuse the embedding matrix as the head, whatever the file holds under lm_head.
            Linear head = config.tieWordEmbeddings()
                    ? new DenseLinear(embed, castTo)
                    : loader.linear("lm_head", config.vocabSize(), e);
            Rope rope = Rope.of(config, m);
            Rope localRope = config.architecture().localRopeTheta() > 0
                    ? Rope.plain(config, config.architecture().localRopeTheta(), m) : null;
            LlamaModel model = new LlamaModel(config, compute, embed, layers, norm, head, rope, localRope, m);
            model.castEmbeddings = castTo != null;
            model.normCast = castTo;
            return model;
        } catch (RuntimeException ex) {
            m.close();
            throw ex;
        }
    }

    /** Reads tensors by name, checks their shapes against the config, converts them to the compute dtype. */
    private record Loader(LlamaConfig config, WeightSource source, Dtype dtype, Dtype castTo, NDManager manager,
            LinearFactory factory) {
        NDArray tensor(String name, long... expected) {
            String stored = stored(name);
            long[] shape = checkShape(stored, expected);
            NDArray fp32 = manager.create(source.floats(stored), new Shape(shape));
            if (dtype == Dtype.FP32) {
                return fp32;
            }
            NDArray cast = Kernels.get().cast(fp32, dtype);
            fp32.close();
            return cast;
        }

        private long[] checkShape(String stored, long... expected) {
            long[] shape = source.shape(stored);
            if (!Arrays.equals(shape, expected)) {
                throw new ConfigException(source.describe() + ": tensor " + stored + " has shape "
                        + Arrays.toString(shape) + ", config.json implies " + Arrays.toString(expected));
            }
            return shape;
        }

        /**
         * The name a tensor has in the file: its module name, or in an older multimodal Gemma 3 file the same
         * tensor under {@code language_model.model.} / {@code language_model.lm_head} (transformers renames on load).
         */
        String stored(String name) {
            if (source.contains(name)) {
                return name;
            }
            String legacy = name.startsWith("model.language_model.")
                    ? "language_model.model." + name.substring("model.language_model.".length())
                    : name.startsWith("lm_head.") && config.architecture().textPrefix().equals("model.language_model.")
                            ? "language_model." + name : null;
            if (legacy != null && source.contains(legacy)) {
                return legacy;
            }
            throw new ConfigException(source.describe() + ": missing tensor " + name);
        }

        RmsNorm norm(String name, long size) {
            return new RmsNorm(tensor(name, size), config.rmsNormEps(), config.family().gemma(), castTo);
        }

        Linear linear(String name, long out, long in) {
            Linear stored = factory.createStored(name, out, in, manager);
            if (stored != null) {
                return stored;
            }
            String weight = stored(name + ".weight");
            checkShape(weight, out, in);
            Linear direct = factory.createFromValues(name, out, in, () -> rounded(source.floats(weight)), dtype,
                    manager);
            if (direct != null) {
                return direct;
            }
            return factory.create(name, tensor(name + ".weight", out, in));
        }

        /** The values as the compute dtype holds them: round to nearest even, as the cast kernel does. */
        private float[] rounded(float[] v) {
            switch (dtype) {
                case FP32 -> { }
                case BF16 -> {
                    // A bf16 checkpoint's values are bf16 already (their low 16 bits are zero): nothing to round.
                    int low = 0;
                    for (float f : v) {
                        low |= Float.floatToRawIntBits(f) & 0xFFFF;
                    }
                    for (int i = 0; low != 0 && i < v.length; i++) {
                        v[i] = HalfFloats.bfloat16ToFloat(HalfFloats.floatToBFloat16(v[i]));
                    }
                }
                case FP16 -> {
                    for (int i = 0; i < v.length; i++) {
                        v[i] = Float.float16ToFloat(Float.floatToFloat16(v[i]));
                    }
                }
            }
            return v;
        }
    }

    /**
     * Logits [B,T,vocab] in the compute dtype.
     *
     * @param inputIds token ids [B,T], int64
     * @param positionIds [B,T] int64; per-sample positions restart at 0 in packed rows
     * @param segmentIds [B,T] int64 sample ids that isolate packed samples, or null for plain causal attention
     */
    public NDArray forward(NDArray inputIds, NDArray positionIds, NDArray segmentIds) {
        return logits(hidden(inputIds, positionIds, segmentIds));
    }

    /** The final normalised hidden states [B,T,E], before the head. */
    public NDArray hidden(NDArray inputIds, NDArray positionIds, NDArray segmentIds) {
        return finalNorm(decode(inputIds, context(positionIds, segmentIds, null), LayerPolicy.DIRECT));
    }

    /** The rotary tables of {@code positionIds} and how attention sees other tokens, for one pass. */
    public ForwardContext context(NDArray positionIds, NDArray segmentIds, KvCache cache) {
        NDList cosSin = rope.cosSin(positionIds, dtype);
        NDList local = localRope == null ? cosSin : localRope.cosSin(positionIds, dtype);
        return new ForwardContext(cosSin.get(0), cosSin.get(1), local.get(0), local.get(1), segmentIds, cache);
    }

    /**
     * The decoder stack: embedding, then every layer in order, each run through {@code policy}; the hidden states
     * [B,T,E] after the last layer, before the final norm. With a cache in {@code context}, the cache has grown by
     * these T tokens when it returns.
     */
    public NDArray decode(NDArray inputIds, ForwardContext context, LayerPolicy policy) {
        NDArray x = embed(inputIds);
        for (int i = 0; i < layers.size(); i++) {
            DecoderLayer layer = layers.get(i);
            x = policy.run(i, x, in -> layer.forward(in, context));
        }
        if (context.cache() != null) {
            context.cache().advance(inputIds.getShape().get(1));
        }
        return x;
    }

    /** Token embeddings [B,T,E] of ids [B,T], in the compute dtype whatever the embedding matrix's dtype. */
    public NDArray embed(NDArray inputIds) {
        Kernels k = Kernels.get();
        // Gemma scales by √hidden, rounded to the embedding's dtype as its ScaledWordEmbedding does.
        NDArray x = config.family().gemma()
                ? k.embeddingScaled(inputIds, embedTokens, Math.sqrt(config.hiddenSize()))
                : k.embedding(inputIds, embedTokens);
        return castEmbeddings ? k.cast(x, dtype) : x;
    }

    /** Decoder layer {@code index} alone, as {@link #decode} runs it: what gradient checkpointing recomputes. */
    public NDArray layer(int index, NDArray x, ForwardContext context) {
        return layers.get(index).forward(x, context);
    }

    /** The final RMSNorm. */
    public NDArray finalNorm(NDArray x) {
        return new RmsNorm(norm, config.rmsNormEps(), config.family().gemma(), normCast).forward(x);
    }

    /** The language-model head: logits [..., vocab] of normalised hidden states, in the compute dtype. */
    public NDArray logits(NDArray normalised) {
        NDArray logits = lmHead.forward(normalised);
        double cap = config.architecture().finalLogitSoftcapping();
        return cap > 0 ? Kernels.get().softcap(logits, cap) : logits;
    }

    /** Position ids 0..T-1 for every row of a [B,T] batch, in {@code ids}' manager. */
    public static NDArray defaultPositions(NDArray ids) {
        return positionsAfter(ids, 0);
    }

    /** Positions {@code past .. past+T-1} for every row of ids [B,T], in ids' manager. */
    public static NDArray positionsAfter(NDArray ids, long past) {
        long b = ids.getShape().get(0);
        long t = ids.getShape().get(1);
        return ids.getManager().arange((int) past, (int) (past + t), 1, ai.djl.ndarray.types.DataType.INT64)
                .reshape(1, t)
                .repeat(0, b);
    }

    public LlamaConfig config() {
        return config;
    }

    public Dtype dtype() {
        return dtype;
    }

    public List<DecoderLayer> layers() {
        return layers;
    }

    public NDArray embedTokens() {
        return embedTokens;
    }

    /**
     * Replaces the token embedding matrix with {@code weight} [vocab, hidden], e.g. a trainable fp32 copy for
     * PEFT's {@code modules_to_save: [embed_tokens]}. Lookups from a weight in another dtype are cast to the
     * compute dtype. The model takes ownership of {@code weight} and frees the matrix it replaces.
     *
     * @throws IllegalStateException for a model with tied embeddings, whose head shares the matrix
     * @throws IllegalArgumentException if the shape is not the config's [vocab_size, hidden_size]
     */
    public void replaceEmbedTokens(NDArray weight) {
        if (config.tieWordEmbeddings()) {
            throw new IllegalStateException("the embedding of a model with tie_word_embeddings is shared with the"
                    + " head and cannot be replaced alone");
        }
        if (!weight.getShape().equals(embedTokens.getShape())) {
            throw new IllegalArgumentException("embedding shape " + weight.getShape() + ", expected "
                    + embedTokens.getShape());
        }
        weight.attach(manager);
        embedTokens.close();
        embedTokens = weight;
        castEmbeddings = Kernels.get().dtypeOf(weight) != dtype;
    }

    public NDArray norm() {
        return norm;
    }

    /** Every projection by its module name ({@code model.layers.0.self_attn.q_proj}, {@code lm_head} if untied). */
    public java.util.Map<String, Linear> linears() {
        var m = new java.util.LinkedHashMap<String, Linear>();
        String prefix = config.architecture().textPrefix();
        for (int i = 0; i < layers.size(); i++) {
            String p = prefix + "layers." + i + ".";
            layers.get(i).linears().forEach((n, l) -> m.put(p + n, l));
        }
        if (!config.tieWordEmbeddings()) {
            m.put("lm_head", lmHead);
        }
        return m;
    }

    /**
     * Every tensor that is not a projection's weight, by its checkpoint name: the embedding, norms, biases. With
     * {@link #linears()} that is the whole model.
     */
    public java.util.Map<String, NDArray> tensors() {
        var m = new java.util.LinkedHashMap<String, NDArray>();
        String prefix = config.architecture().textPrefix();
        m.put(prefix + "embed_tokens.weight", embedTokens);
        for (int i = 0; i < layers.size(); i++) {
            String p = prefix + "layers." + i + ".";
            layers.get(i).tensors().forEach((n, t) -> m.put(p + n, t));
        }
        m.put(prefix + "norm.weight", norm);
        return m;
    }

    public Linear lmHead() {
        return lmHead;
    }

    @Override
    public void close() {
        manager.close();
    }
}
