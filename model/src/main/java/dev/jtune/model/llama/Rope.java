package dev.jtune.model.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;

/**
 * Rotary position embedding tables, as transformers' LlamaRotaryEmbedding computes them: inverse
 * frequencies in fp32 (with linear or llama3 scaling), cos/sin per position id, cast to the compute dtype.
 */
public final class Rope implements AutoCloseable {
    private final NDArray invFreq;
    private final double attentionScaling;

    private Rope(NDArray invFreq, double attentionScaling) {
        this.invFreq = invFreq;
        this.attentionScaling = attentionScaling;
    }

    /** Builds the inverse frequencies for {@code config} in {@code manager}. */
    public static Rope of(LlamaConfig config, NDManager manager) {
        Kernels k = Kernels.get();
        NDArray inv = k.ropeInvFreq(manager, config.headDim(), config.ropeTheta());
        NDArray scaled = switch (config.ropeScaling()) {
            case RopeScaling.None n -> inv;
            case RopeScaling.Linear l -> inv.div(l.factor());
            case RopeScaling.Llama3 l -> k.ropeLlama3(inv, l.factor(), l.lowFreqFactor(), l.highFreqFactor(),
                    l.originalMaxPositionEmbeddings());
        };
        if (scaled != inv) {
            inv.close();
        }
        // Neither linear nor llama3 scaling changes the attention factor (transformers returns 1.0).
        return new Rope(scaled, 1.0);
    }

    /** The fp32 inverse frequencies [headDim/2]. */
    public NDArray invFreq() {
        return invFreq;
    }

    /** cos and sin [B,T,headDim] for {@code positionIds} [B,T], in {@code dtype}; they join positionIds' manager. */
    public NDList cosSin(NDArray positionIds, Dtype dtype) {
        return Kernels.get().ropeCosSin(positionIds, invFreq, attentionScaling, dtype);
    }

    @Override
    public void close() {
        invFreq.close();
    }
}
