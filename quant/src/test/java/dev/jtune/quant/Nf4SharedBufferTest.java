package dev.jtune.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.ForwardContext;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.testkit.TinyLlama;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * NF4 projections that dequantize into one buffer per projection role, shared by every layer: the gradient that
 * reaches the input through a layer-by-layer backward with {@code prepareBackward} equals, bit for bit, the one of
 * projections that each keep their own dequantized weight (and the one-graph backward to rounding); without the
 * refill it would not.
 */
class Nf4SharedBufferTest {
    private static final int VOCAB = TinyLlama.VOCAB;

    static float[] inputGradient(LlamaModel model, NDManager m, boolean layerByLayer) {
        return Autograd.withGrad(() -> {
            try (NDManager s = m.newSubManager()) {
                Random r = new Random(3);
                long[] ids = new long[2 * 9];
                for (int i = 0; i < ids.length; i++) ids[i] = 1 + r.nextInt(VOCAB - 1);
                NDArray idArray = s.create(ids).reshape(2, 9);
                ForwardContext ctx = model.context(LlamaModel.defaultPositions(idArray), null, null);
                NDArray x0 = model.embed(idArray).stopGradient();
                x0.setRequiresGradient(true);
                List<NDArray> starts = new ArrayList<>();
                List<NDArray> ends = new ArrayList<>();
                NDArray h = x0;
                for (int i = 0; i < model.layers().size(); i++) {
                    NDArray xi = h;
                    if (layerByLayer) {
                        xi = h.stopGradient();
                        xi.setRequiresGradient(true);
                    }
                    starts.add(xi);
                    h = model.layer(i, xi, ctx);
                    ends.add(h);
                }
                float[] weights = new float[(int) h.getShape().size()];
                for (int i = 0; i < weights.length; i++) weights[i] = (float) r.nextGaussian();
                NDArray loss = h.mul(s.create(weights, h.getShape())).sum();
                if (!layerByLayer) {
                    Autograd.backward(loss);
                    return Autograd.gradient(x0).toFloatArray();
                }
                NDArray upstream = null;
                for (int i = ends.size() - 1; i >= 0; i--) {
                    model.layers().get(i).prepareBackward();
                    if (upstream == null) {
                        Autograd.backward(loss);
                    } else {
                        Autograd.backward(ends.get(i), upstream);
                    }
                    upstream = Autograd.gradient(starts.get(i));
                }
                return upstream.toFloatArray();
            }
        });
    }

    @Test
    void layerByLayerBackwardThroughSharedBuffersEqualsOwnWeights() {
        LlamaConfig config = TinyLlama.preset();
        try (NDManager m = Torch.newManager();
                LlamaModel own = LlamaModel.load(config, TinyLlama.weights(config, 5), Dtype.FP32, m,
                        Nf4.linearFactory(Nf4::isBaseLinear, null));
                LlamaModel shared = LlamaModel.load(config, TinyLlama.weights(config, 5), Dtype.FP32, m,
                        Nf4.linearFactory())) {
            float[] whole = inputGradient(own, m, false);
            float[] expected = inputGradient(own, m, true);
            // Backward layer by layer sums a layer input's gradient contributions in another order: last bits only.
            assertClose(whole, expected, 1e-5);
            assertArrayEquals(expected, inputGradient(shared, m, true), "refilled shared buffers, bit for bit");
            // One graph over every layer reads, in each layer's backward, the last layer's weights: the refill is
            // what makes sharing correct.
            float[] stale = inputGradient(shared, m, false);
            double worst = 0;
            for (int i = 0; i < whole.length; i++) worst = Math.max(worst, Math.abs(stale[i] - whole[i]));
            assertTrue(worst > 1e-2 * maxAbs(whole), "without the refill the gradient is wrong: " + worst);
        }
    }

    static double maxAbs(float[] a) {
        double m = 0;
        for (float v : a) m = Math.max(m, Math.abs(v));
        return m;
    }

    static void assertClose(float[] a, float[] b, double rel) {
        double scale = maxAbs(a);
        for (int i = 0; i < a.length; i++) {
            assertEquals(a[i], b[i], rel * scale, "[" + i + "]");
        }
    }

    @Test
    void everyLayerSharesOneSlotPerProjectionRole() {
        Nf4Linear.SharedBuffers buffers = new Nf4Linear.SharedBuffers();
        assertSame(buffers.slot("model.layers.0.self_attn.q_proj"), buffers.slot("model.layers.7.self_attn.q_proj"));
        assertFalse(buffers.slot("model.layers.0.self_attn.q_proj") == buffers.slot("model.layers.0.self_attn.o_proj"));
    }
}
