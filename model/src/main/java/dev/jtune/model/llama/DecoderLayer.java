package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One pre-norm decoder block: {@code h = x + attn(norm(x))}, then {@code h + mlp(norm(h))}. Gemma's "sandwich"
 * form also normalises each block's output: {@code h = x + postAttnNorm(attn(inputNorm(x)))}, then
 * {@code h + postFfNorm(mlp(preFfNorm(h)))}.
 */
public final class DecoderLayer implements AutoCloseable {
    private final RmsNorm inputNorm;
    private final Attention attention;
    private final RmsNorm postAttentionNorm;
    private final RmsNorm preFeedforwardNorm; // Gemma only, else null
    private final RmsNorm postFeedforwardNorm; // Gemma only, else null
    private final Mlp mlp;

    /** A Llama block: the norms' weights scale in the input dtype. */
    public DecoderLayer(NDArray inputNorm, Attention attention, NDArray postAttentionNorm, Mlp mlp, double eps) {
        this(new RmsNorm(inputNorm, eps, false), attention, new RmsNorm(postAttentionNorm, eps, false), null, null, mlp);
    }

    /** @param preFeedforwardNorm Gemma's pre-MLP norm (with postFeedforwardNorm), or null for the Llama form */
    public DecoderLayer(RmsNorm inputNorm, Attention attention, RmsNorm postAttentionNorm, RmsNorm preFeedforwardNorm,
            RmsNorm postFeedforwardNorm, Mlp mlp) {
        this.inputNorm = inputNorm;
        this.attention = attention;
        this.postAttentionNorm = postAttentionNorm;
        this.preFeedforwardNorm = preFeedforwardNorm;
        this.postFeedforwardNorm = postFeedforwardNorm;
        this.mlp = mlp;
    }

    /** [B,T,E] → [B,T,E]; see {@link Attention#forward}. */
    public NDArray forward(NDArray x, ForwardContext context) {
        NDArray attended = attention.forward(inputNorm.forward(x), context);
        if (preFeedforwardNorm == null) {
            NDArray h = x.add(attended);
            return h.add(mlp.forward(postAttentionNorm.forward(h)));
        }
        NDArray h = x.add(postAttentionNorm.forward(attended));
        return h.add(postFeedforwardNorm.forward(mlp.forward(preFeedforwardNorm.forward(h))));
    }

    /** {@link Linear#prepareBackward} for each of the layer's projections: call before the layer's backward. */
    public void prepareBackward() {
        linears().values().forEach(Linear::prepareBackward);
    }

    /** Every projection by its name under the layer ({@code self_attn.q_proj}, {@code mlp.down_proj}, ...). */
    public Map<String, Linear> linears() {
        Map<String, Linear> m = new LinkedHashMap<>();
        attention.linears().forEach((n, l) -> m.put("self_attn." + n, l));
        mlp.linears().forEach((n, l) -> m.put("mlp." + n, l));
        return m;
    }

    /** Every other tensor (norms, biases) by its name under the layer ({@code input_layernorm.weight}, ...). */
    public Map<String, NDArray> tensors() {
        Map<String, NDArray> m = new LinkedHashMap<>();
        attention.tensors().forEach((n, t) -> m.put("self_attn." + n, t));
        m.put("input_layernorm.weight", inputNorm.weight());
        m.put("post_attention_layernorm.weight", postAttentionNorm.weight());
        if (preFeedforwardNorm != null) {
            m.put("pre_feedforward_layernorm.weight", preFeedforwardNorm.weight());
            m.put("post_feedforward_layernorm.weight", postFeedforwardNorm.weight());
        }
        return m;
    }

    public Attention attention() {
        return attention;
    }

    public Mlp mlp() {
        return mlp;
    }

    public NDArray inputNorm() {
        return inputNorm.weight();
    }

    public NDArray postAttentionNorm() {
        return postAttentionNorm.weight();
    }

    @Override
    public void close() {
        attention.close();
        mlp.close();
        inputNorm.close();
        postAttentionNorm.close();
        if (preFeedforwardNorm != null) {
            preFeedforwardNorm.close();
            postFeedforwardNorm.close();
        }
    }
}
