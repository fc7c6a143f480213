package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import dev.jtune.model.engine.Kernels;

/** One pre-norm decoder block: {@code x + attn(norm(x))}, then {@code h + mlp(norm(h))}. */
public final class DecoderLayer implements AutoCloseable {
    private final NDArray inputNorm;
    private final Attention attention;
    private final NDArray postAttentionNorm;
    private final Mlp mlp;
    private final double eps;

    public DecoderLayer(NDArray inputNorm, Attention attention, NDArray postAttentionNorm, Mlp mlp, double eps) {
        this.inputNorm = inputNorm;
        this.attention = attention;
        this.postAttentionNorm = postAttentionNorm;
        this.mlp = mlp;
        this.eps = eps;
    }

    /** [B,T,E] → [B,T,E]; see {@link Attention#forward}. */
    public NDArray forward(NDArray x, ForwardContext context) {
        Kernels k = Kernels.get();
        NDArray h = x.add(attention.forward(k.rmsNorm(x, inputNorm, eps), context));
        return h.add(mlp.forward(k.rmsNorm(h, postAttentionNorm, eps)));
    }

    /** {@link Linear#prepareBackward} for each of the layer's projections: call before the layer's backward. */
    public void prepareBackward() {
        for (Linear l : new Linear[] {attention.q(), attention.k(), attention.v(), attention.o(), mlp.gate(), mlp.up(),
                mlp.down()}) {
            l.prepareBackward();
        }
    }

    public Attention attention() {
        return attention;
    }

    public Mlp mlp() {
        return mlp;
    }

    public NDArray inputNorm() {
        return inputNorm;
    }

    public NDArray postAttentionNorm() {
        return postAttentionNorm;
    }

    @Override
    public void close() {
        inputNorm.close();
        attention.close();
        postAttentionNorm.close();
        mlp.close();
    }
}
