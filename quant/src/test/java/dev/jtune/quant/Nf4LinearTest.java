package dev.jtune.quant;

import static dev.jtune.quant.Nf4QuantizerTest.assertBits;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.DenseLinear;
import dev.jtune.model.llama.Linear;
import java.util.Random;
import org.junit.jupiter.api.Test;

class Nf4LinearTest {
    private static float[] gaussian(Random r, int n, double scale, Dtype dtype) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = Nf4Quantizer.roundTo(dtype, (float) (r.nextGaussian() * scale));
        }
        return x;
    }

    private static float[] toFp32(NDArray a) {
        try (NDArray f = Kernels.get().cast(a, Dtype.FP32)) {
            return f.toFloatArray();
        }
    }

    @Test
    void libtorchDequantizationEqualsJavaBitForBit() {
        Random r = new Random(5);
        long[][] shapes = {{16, 64}, {7, 9}, {3, 100}, {130, 131}, {1, 64 * 300 + 10}};
        try (NDManager m = Torch.newManager()) {
            for (long[] shape : shapes) {
                for (Dtype d : Dtype.values()) {
                    int n = (int) (shape[0] * shape[1]);
                    Nf4Tensor q = Nf4Quantizer.quantize(gaussian(r, n, 0.05, d), shape, d);
                    try (Nf4Linear lin = new Nf4Linear(q, m); NDArray w = lin.dequantize()) {
                        assertEquals(d, Kernels.get().dtypeOf(w));
                        assertEquals(new Shape(shape), w.getShape());
                        assertBits(java.util.Arrays.toString(shape) + " " + d, Nf4Quantizer.dequantize(q), toFp32(w));
                        assertEquals(q, lin.quantized(), "native copy reads back identical");
                    }
                }
            }
        }
    }

    @Test
    void nativeMemoryIsAtMost053BytesPerParameter() {
        Random r = new Random(6);
        long[] shape = {256, 512};
        try (NDManager m = Torch.newManager()) {
            Nf4Tensor q = Nf4Quantizer.quantize(gaussian(r, 256 * 512, 0.02, Dtype.BF16), shape, Dtype.BF16);
            try (Nf4Linear lin = new Nf4Linear(q, m)) {
                double perParam = (double) lin.nativeBytes() / (256 * 512);
                // 0.5 (codes) + 1/64 (absmax codes) + 4/16384 (fp32 nested scale per 256 blocks)
                // + (4 + 64 + 1024) / 131072 (offset and the two maps, per layer).
                double expected = 0.5 + 1.0 / 64 + 4.0 / 16384 + (4 + 64 + 1024) / (256.0 * 512);
                assertEquals(expected, perParam, 1e-12);
                assertTrue(perParam <= 0.53, "bytes per parameter " + perParam);
                assertEquals(q.byteSize(), lin.nativeBytes());
            }
        }
    }

    @Test
    void forwardAndInputGradientMatchDenseLinearWithTheDequantizedWeight() {
        Random r = new Random(8);
        int out = 24;
        int in = 80;
        try (NDManager m = Torch.newManager()) {
            Nf4Tensor q = Nf4Quantizer.quantize(gaussian(r, out * in, 0.1, Dtype.FP32), new long[] {out, in},
                    Dtype.FP32);
            float[] xv = gaussian(r, 2 * 3 * in, 1, Dtype.FP32);
            float[] gv = gaussian(r, 2 * 3 * out, 1, Dtype.FP32); // upstream gradient, so every output matters
            try (Nf4Linear nf4 = new Nf4Linear(q, m);
                    DenseLinear dense = new DenseLinear(m.create(Nf4Quantizer.dequantize(q), new Shape(out, in)))) {
                float[][] y = new float[2][];
                float[][] dx = new float[2][];
                Linear[] layers = {nf4, dense};
                for (int k = 0; k < 2; k++) {
                    try (NDManager step = m.newSubManager()) {
                        NDArray x = step.create(xv, new Shape(2, 3, in));
                        x.setRequiresGradient(true);
                        NDArray g = step.create(gv, new Shape(2, 3, out));
                        try (GradientCollector gc = Torch.engine().newGradientCollector()) {
                            NDArray yk = layers[k].forward(x);
                            gc.backward(yk.mul(g).sum());
                            y[k] = yk.toFloatArray();
                            dx[k] = x.getGradient().toFloatArray();
                        }
                    }
                }
                assertBits("forward", y[1], y[0]);
                assertBits("input gradient", dx[1], dx[0]);
                // And the closed form: dL/dx = g W, W the dequantized weight.
                float[] w = Nf4Quantizer.dequantize(q);
                for (int row = 0; row < 6; row++) {
                    for (int j = 0; j < in; j++) {
                        double s = 0;
                        for (int o = 0; o < out; o++) {
                            s += (double) gv[row * out + o] * w[o * in + j];
                        }
                        assertEquals(s, dx[0][row * in + j], 1e-5 * (1 + Math.abs(s)), "dx[" + row + "," + j + "]");
                    }
                }
            }
        }
    }

    @Test
    void bf16InputGetsBf16Output() {
        Random r = new Random(9);
        try (NDManager m = Torch.newManager()) {
            Nf4Tensor q = Nf4Quantizer.quantize(gaussian(r, 32 * 64, 0.1, Dtype.BF16), new long[] {32, 64}, Dtype.BF16);
            try (Nf4Linear lin = new Nf4Linear(q, m); NDManager step = m.newSubManager()) {
                NDArray x = Kernels.get().cast(step.create(gaussian(r, 5 * 64, 1, Dtype.BF16), new Shape(5, 64)),
                        Dtype.BF16);
                NDArray y = lin.forward(x);
                assertEquals(Dtype.BF16, Kernels.get().dtypeOf(y));
                assertEquals(new Shape(5, 32), y.getShape());
            }
        }
    }

    @Test
    void linearFactoryQuantizesBaseLinearsAndClosesTheDenseWeight() {
        Random r = new Random(10);
        try (NDManager m = Torch.newManager()) {
            var factory = Nf4.linearFactory();
            float[] wv = gaussian(r, 8 * 64, 0.1, Dtype.BF16);
            NDArray w = Kernels.get().cast(m.create(wv, new Shape(8, 64)), Dtype.BF16);
            try (Linear lin = factory.create("model.layers.0.mlp.up_proj", w)) {
                Nf4Linear nf4 = assertInstanceOf(Nf4Linear.class, lin);
                assertTrue(w.isReleased(), "the dense weight is closed once quantized");
                assertEquals(Dtype.BF16, nf4.dtype());
                assertEquals(Nf4Quantizer.quantize(wv, new long[] {8, 64}, Dtype.BF16), nf4.quantized());
            }
            NDArray head = m.create(wv, new Shape(8, 64));
            try (Linear lin = factory.create("lm_head", head)) {
                assertInstanceOf(DenseLinear.class, lin);
            }
            assertTrue(!Nf4.isBaseLinear("lm_head") && Nf4.isBaseLinear("model.layers.3.self_attn.o_proj"));
        }
    }
}
