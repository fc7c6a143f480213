package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import java.util.List;

/**
 * Rotary position embedding tables, as transformers' rotary embeddings compute them: inverse frequencies in fp32
 * over the rotating features (linear, llama3 or LongRoPE scaling), cos/sin per position id times the attention
 * factor, cast to the compute dtype.
 */
public final class Rope implements AutoCloseable {
    private final NDArray invFreq;
    private final NDArray longInvFreq; // LongRoPE's, used when a pass reaches past originalMax; else null
    private final int originalMax;
    private final double attentionScaling;

    private Rope(NDArray invFreq, NDArray longInvFreq, int originalMax, double attentionScaling) {
        this.invFreq = invFreq;
        this.longInvFreq = longInvFreq;
        this.originalMax = originalMax;
        this.attentionScaling = attentionScaling;
    }

    /** The tables of {@code config}'s global rotary (every layer's, or Gemma 3's full-attention layers'). */
    public static Rope of(LlamaConfig config, NDManager manager) {
        Kernels k = Kernels.get();
        int dim = config.rotaryDim();
        if (config.ropeScaling() instanceof RopeScaling.LongRope l) {
            return new Rope(k.ropeInvFreqScaled(manager, dim, config.ropeTheta(), factors(l.shortFactor(), dim, "short")),
                    k.ropeInvFreqScaled(manager, dim, config.ropeTheta(), factors(l.longFactor(), dim, "long")),
                    l.originalMaxPositionEmbeddings(), l.attentionFactor());
        }
        NDArray inv = k.ropeInvFreq(manager, dim, config.ropeTheta());
        NDArray scaled = switch (config.ropeScaling()) {
            case RopeScaling.None n -> inv;
            case RopeScaling.Linear l -> inv.div(l.factor());
            case RopeScaling.Llama3 l -> k.ropeLlama3(inv, l.factor(), l.lowFreqFactor(), l.highFreqFactor(),
                    l.originalMaxPositionEmbeddings());
            case RopeScaling.LongRope l -> throw new AssertionError("handled above");
        };
        if (scaled != inv) {
            inv.close();
        }
        // Neither linear nor llama3 scaling changes the attention factor (transformers returns 1.0).
        return new Rope(scaled, null, 0, 1.0);
    }

    /** Default tables of base {@code theta} (Gemma 3's sliding layers: {@code rope_local_base_freq}, no scaling). */
    public static Rope plain(LlamaConfig config, double theta, NDManager manager) {
        return new Rope(Kernels.get().ropeInvFreq(manager, config.rotaryDim(), theta), null, 0, 1.0);
    }

    private static float[] factors(List<Double> values, int dim, String which) {
        if (values.size() != dim / 2) {
            throw new ConfigException("rope_scaling " + which + "_factor has " + values.size()
                    + " entries; the rotary dimension " + dim + " needs " + dim / 2);
        }
        float[] f = new float[values.size()];
        for (int i = 0; i < f.length; i++) {
            f[i] = values.get(i).floatValue();
        }
        return f;
    }

    /** The fp32 inverse frequencies [rotaryDim/2] (LongRoPE's short ones). */
    public NDArray invFreq() {
        return invFreq;
    }

    /**
     * cos and sin [B,T,rotaryDim] for {@code positionIds} [B,T], in {@code dtype}; they join positionIds' manager.
     * LongRoPE uses its long factors when the pass reaches beyond the original context (transformers decides per
     * forward from the largest position id).
     */
    public NDList cosSin(NDArray positionIds, Dtype dtype) {
        NDArray inv = invFreq;
        if (longInvFreq != null && positionIds.getShape().size() > 0) {
            try (NDArray max = positionIds.max()) {
                if (max.getLong() + 1 > originalMax) {
                    inv = longInvFreq;
                }
            }
        }
        return Kernels.get().ropeCosSin(positionIds, inv, attentionScaling, dtype);
    }

    @Override
    public void close() {
        invFreq.close();
        if (longInvFreq != null) {
            longInvFreq.close();
        }
    }
}
