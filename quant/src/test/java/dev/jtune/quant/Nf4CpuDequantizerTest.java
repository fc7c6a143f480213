package dev.jtune.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Kernels;
import dev.jtune.model.engine.Torch;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The CPU dequantizer writes, bit for bit, what the TorchScript kernel (itself checked against bitsandbytes) makes:
 * every stored dtype, into a buffer of that dtype or of fp32 (the stored value widened), with an odd element count
 * whose last block is short, and with enough blocks to split the work across threads.
 */
class Nf4CpuDequantizerTest {
    @ParameterizedTest
    @CsvSource({"BF16, BF16, 7, 37", "FP16, FP16, 7, 37", "FP32, FP32, 7, 37", "BF16, FP32, 7, 37", "FP16, FP32, 5, 13",
            "BF16, BF16, 1536, 1024", "FP32, FP32, 700, 1500",
            "BF16, BF16, 9, 9", "FP16, FP16, 3, 29"})
    void writesWhatTheKernelDequantizesTo(Dtype stored, Dtype buffer, int out, int in) {
        writes(stored, buffer, out, in, false);
        writes(stored, buffer, out, in, true);
    }

    /** The build runs the tests with jdk.incubator.vector (root pom's argLine), so the vector lookup is tested. */
    @org.junit.jupiter.api.Test
    void theVectorLookupIsInUseUnderTheBuild() {
        org.junit.jupiter.api.Assertions.assertTrue(Nf4CpuDequantizer.VECTOR,
                "jdk.incubator.vector missing or unusable: lanes " + Nf4VectorLookup.LANES);
    }

    private static void writes(Dtype stored, Dtype buffer, int out, int in, boolean vector) {
        Random r = new Random(out * 31L + in);
        float[] w = new float[out * in];
        for (int i = 0; i < w.length; i++) {
            w[i] = Nf4Quantizer.roundTo(stored, (float) (r.nextGaussian() * (i % 97 == 0 ? 1.0 : 0.05)));
        }
        Nf4Tensor q = Nf4Quantizer.quantize(w, new long[] {out, in}, stored);
        Kernels k = Kernels.get();
        try (NDManager m = Torch.newManager()) {
            Nf4Linear linear = new Nf4Linear(q, m);
            NDArray expected = k.cast(k.cast(linear.dequantize(), buffer), Dtype.FP32);
            NDArray anchor = k.cast(m.zeros(new Shape(1, in)), buffer);
            NDArray target = Nf4Kernels.get().buffer(anchor, new long[] {out, in});
            Nf4Linear.Weights weights = linear.weightsForTest();
            new Nf4CpuDequantizer(weights).into(target, buffer, weights, vector);
            float[] want = expected.toFloatArray();
            float[] got = k.cast(target, Dtype.FP32).toFloatArray();
            for (int i = 0; i < want.length; i++) { // NaN == NaN here (assertArrayEquals compares bits' meaning too)
                if (Float.floatToIntBits(want[i]) != Float.floatToIntBits(got[i])) {
                    throw new AssertionError(stored + " into " + buffer + (vector ? " (vector)" : " (scalar)") + ": element " + i + " is " + got[i]
                            + ", the kernel wrote " + want[i]);
                }
            }
        }
    }
}
