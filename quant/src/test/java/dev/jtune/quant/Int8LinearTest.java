package dev.jtune.quant;

import static dev.jtune.quant.Nf4QuantizerTest.assertBits;
import static dev.jtune.quant.Nf4SharedBufferTest.assertClose;
import static dev.jtune.quant.Nf4SharedBufferTest.inputGradient;
import static dev.jtune.quant.Nf4SharedBufferTest.maxAbs;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Autograd;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.Linear;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.testkit.TinyLlama;
import java.util.Random;
import org.junit.jupiter.api.Test;

class Int8LinearTest {
    private static float[] gaussian(Random r, int n, double scale, Dtype dtype) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = Int8Quantizer.round((float) (r.nextGaussian() * scale), dtype);
        }
        return x;
    }

    private static float[] fp32(NDArray a) {
        try (NDArray f = Kernels.get().cast(a, Dtype.FP32)) {
            return f.toFloatArray();
        }
    }

    @Test
    void storesOneByteAWeightPlusFourBytesARow() {
        Random r = new Random(1);
        int out = 256;
        int in = 512;
        try (NDManager m = Torch.newManager();
                Int8Linear lin = new Int8Linear(Int8Quantizer.quantize(gaussian(r, out * in, 0.02, Dtype.BF16),
                        new long[] {out, in}), m, null, "p", 6.0)) {
            double perParam = (double) lin.nativeBytes() / (out * in);
            assertEquals(1 + 4.0 / in, perParam, 1e-12);
            // bf16 holds 2 bytes a weight, NF4 ≈ 0.516.
            System.out.printf("int8 base: %.5f bytes per frozen parameter (in_features %d)%n", perParam, in);
            assertEquals(Int8Quantizer.quantize(gaussian(new Random(1), out * in, 0.02, Dtype.BF16),
                    new long[] {out, in}), lin.quantized(), "reads back");
        }
    }

    @Test
    void forwardWithAndWithoutAutogradGivesTheSameValuesAndDiffersFromTheDenseProduct() {
        Random r = new Random(2);
        int out = 48;
        int in = 96;
        float[] w = gaussian(r, out * in, 0.05, Dtype.BF16);
        float[] xv = gaussian(r, 2 * 5 * in, 1, Dtype.BF16);
        xv[7] = 9.5f; // an outlier column
        try (NDManager m = Torch.newManager();
                Int8Linear lin = new Int8Linear(Int8Quantizer.quantize(w, new long[] {out, in}), m,
                        new Nf4Linear.SharedBuffers(), "model.layers.0.mlp.up_proj", 6.0);
                NDManager step = m.newSubManager()) {
            NDArray x = Kernels.get().cast(step.create(xv, new Shape(2, 5, in)), Dtype.BF16);
            float[] plain = fp32(lin.forward(x));
            x.setRequiresGradient(true);
            float[] withGrad = fp32(Autograd.withGrad(() -> lin.forward(x)));
            assertBits("same values with autograd", plain, withGrad);
            assertBits("the Java reference", Int8Reference.forward(xv, 10, lin.quantized(), 6.0, Dtype.BF16), plain);
            NDArray wd = Kernels.get().cast(step.create(w, new Shape(out, in)), Dtype.BF16);
            float[] dense = fp32(new DenseLinear(wd).forward(x.stopGradient()));
            int differ = 0;
            for (int i = 0; i < dense.length; i++) {
                differ += dense[i] != plain[i] ? 1 : 0;
                assertEquals(dense[i], plain[i], 0.05 * (1 + Math.abs(dense[i])), "close to the dense product");
            }
            assertTrue(differ > dense.length / 4, "the int8 product is not the dense one: " + differ);
        }
    }

    @Test
    void thresholdZeroHasNoOutlierColumns() {
        Random r = new Random(3);
        float[] w = gaussian(r, 8 * 16, 0.1, Dtype.FP16);
        float[] xv = gaussian(r, 3 * 16, 1, Dtype.FP16);
        xv[2] = 20f;
        Int8Tensor q = Int8Quantizer.quantize(w, new long[] {8, 16});
        try (NDManager m = Torch.newManager(); Int8Linear lin = new Int8Linear(q, m, null, "p", 0.0)) {
            NDArray x = Kernels.get().cast(m.create(xv, new Shape(3, 16)), Dtype.FP16);
            assertBits("threshold 0", Int8Reference.forward(xv, 3, q, 0.0, Dtype.FP16), fp32(lin.forward(x)));
        }
        assertThrows(IllegalArgumentException.class, () -> new Int8Linear(q, null, null, "p", -1));
    }

    @Test
    void factoryQuantizesEveryLinearButTheHead() {
        Random r = new Random(4);
        try (NDManager m = Torch.newManager()) {
            var factory = Int8.linearFactory();
            NDArray w = Kernels.get().cast(m.create(gaussian(r, 8 * 64, 0.1, Dtype.BF16), new Shape(8, 64)),
                    Dtype.BF16);
            try (Linear lin = factory.create("model.layers.0.mlp.up_proj", w)) {
                assertInstanceOf(Int8Linear.class, lin);
            }
            NDArray head = m.create(gaussian(r, 8 * 64, 0.1, Dtype.FP32), new Shape(8, 64));
            try (Linear lin = factory.create("lm_head", head)) {
                assertInstanceOf(DenseLinear.class, lin);
            }
            assertEquals(null, factory.createFromValues("lm_head", 8, 64, () -> new float[8 * 64], Dtype.BF16, m));
            float[] huge = new float[8 * 64];
            huge[5] = 1e6f; // not finite in fp16
            var e = assertThrows(IllegalArgumentException.class,
                    () -> factory.createFromValues("model.layers.2.self_attn.o_proj", 8, 64, () -> huge, Dtype.FP32, m));
            assertTrue(e.getMessage().startsWith("model.layers.2.self_attn.o_proj: weight row 0 column 5"), e.getMessage());
        }
    }

    @Test
    void layerByLayerBackwardThroughSharedBuffersEqualsOwnWeights() {
        LlamaConfig config = TinyLlama.preset();
        try (NDManager m = Torch.newManager();
                LlamaModel own = LlamaModel.load(config, TinyLlama.weights(config, 5), Dtype.FP32, m,
                        Int8.linearFactory(Nf4::isBaseLinear, 6.0, null));
                LlamaModel shared = LlamaModel.load(config, TinyLlama.weights(config, 5), Dtype.FP32, m,
                        Int8.linearFactory())) {
            float[] whole = inputGradient(own, m, false);
            float[] expected = inputGradient(own, m, true);
            assertClose(whole, expected, 1e-5);
            assertArrayEquals(expected, inputGradient(shared, m, true), "refilled shared buffers, bit for bit");
            float[] stale = inputGradient(shared, m, false);
            double worst = 0;
            for (int i = 0; i < whole.length; i++) worst = Math.max(worst, Math.abs(stale[i] - whole[i]));
            assertTrue(worst > 1e-2 * maxAbs(whole), "without the refill the gradient is wrong: " + worst);
        }
    }
}
