package dev.jtune.model.engine;

import static dev.jtune.model.engine.KernelTestSupport.assertAllZero;
import static dev.jtune.model.engine.KernelTestSupport.assertClose;
import static dev.jtune.model.engine.KernelTestSupport.assertShape;
import static dev.jtune.model.engine.KernelTestSupport.checkForwardAndGradients;
import static dev.jtune.model.engine.KernelTestSupport.normal;
import static dev.jtune.model.engine.KernelTestSupport.runIn;
import static dev.jtune.model.engine.KernelTestSupport.valuesIn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.jtune.model.engine.KernelTestSupport.Arg;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link Kernels#tokenNll} and {@link Kernels#crossEntropySum}, with {@link Kernels#IGNORE_INDEX}. */
class KernelLossTest {
    private final Kernels k = Kernels.get();
    private static final long IGN = -100;

    /** -log softmax(logits[n])[labels[n]] (stable, in double), 0 where labels[n] == -100. */
    private static double[] nllRef(double[] logits, double[] labels, int v) {
        double[] out = new double[labels.length];
        for (int n = 0; n < labels.length; n++) {
            if (labels[n] == IGN) {
                continue;
            }
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < v; j++) {
                max = Math.max(max, logits[n * v + j]);
            }
            double z = 0;
            for (int j = 0; j < v; j++) {
                z += Math.exp(logits[n * v + j] - max);
            }
            out[n] = max + Math.log(z) - logits[n * v + (int) labels[n]];
        }
        return out;
    }

    private static double sum(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s;
    }

    private static final int N = 6;
    private static final int V = 7;
    private static final long[] LABELS = {3, IGN, 0, 6, IGN, 2};

    @Test
    void tokenNllMatchesReferenceWithGradients() {
        float[] logits = normal(new Random(91), N * V, 2);
        checkForwardAndGradients(in -> {
            NDArray out = k.tokenNll(in[0], in[1]);
            assertShape(out, N);
            return out;
        }, in -> nllRef(in[0], in[1], V), 1e-5, 1e-3, 92, Arg.grad("logits", logits, N, V),
                Arg.ids("labels", LABELS, N));
    }

    @Test
    void tokenNllAnalyticGradientAndIgnoredRows() {
        // d sum(nll) / d logits = softmax - onehot(label) on trained rows, exactly 0 on ignored rows.
        float[] logits = normal(new Random(93), N * V, 2);
        try (NDManager m = Torch.newManager()) {
            NDArray x = m.create(logits, new Shape(N, V));
            x.setRequiresGradient(true);
            try (GradientCollector gc = Torch.engine().newGradientCollector()) {
                NDArray nll = k.tokenNll(x, m.create(LABELS));
                float[] values = nll.toFloatArray();
                gc.backward(nll.sum());
                float[] g = x.getGradient().toFloatArray();
                double[] expected = new double[N * V];
                for (int n = 0; n < N; n++) {
                    if (LABELS[n] == IGN) {
                        assertEquals(0f, values[n], 0f, "ignored row " + n + " has a loss");
                        float[] row = new float[V];
                        System.arraycopy(g, n * V, row, 0, V);
                        assertAllZero("gradient of ignored row " + n, row);
                        continue;
                    }
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < V; j++) {
                        max = Math.max(max, logits[n * V + j]);
                    }
                    double z = 0;
                    for (int j = 0; j < V; j++) {
                        z += Math.exp(logits[n * V + j] - max);
                    }
                    for (int j = 0; j < V; j++) {
                        expected[n * V + j] = Math.exp(logits[n * V + j] - max) / z - (j == LABELS[n] ? 1 : 0);
                    }
                }
                assertClose("softmax - onehot", expected, g, 1e-6, 1e-5);
            }
        }
    }

    @Test
    void tokenNllIsStableForLargeLogits() {
        // Logits near +-1000: a naive exp overflows; the result must equal the shifted reference.
        Random r = new Random(94);
        float[] logits = normal(r, N * V, 3);
        for (int n = 0; n < N; n++) {
            float shift = n % 2 == 0 ? 1000f : -1000f;
            for (int j = 0; j < V; j++) {
                logits[n * V + j] += shift;
            }
        }
        try (NDManager m = Torch.newManager()) {
            float[] got = k.tokenNll(m.create(logits, new Shape(N, V)), m.create(LABELS)).toFloatArray();
            // fp32 logits near 1000 carry 6e-5 absolute error: compare at that resolution.
            assertClose("large logits", nllRef(KernelTestSupport.toDouble(logits), new double[] {3, IGN, 0, 6, IGN, 2},
                    V), got, 5e-4, 1e-5);
        }
    }

    @Test
    void tokenNllUpcastsBf16AndFp16LogitsToFp32() {
        Arg logits = Arg.fixed("logits", normal(new Random(95), N * V, 3), N, V);
        Arg labels = Arg.ids("labels", LABELS, N);
        for (Dtype dt : new Dtype[] {Dtype.BF16, Dtype.FP16}) {
            float[] got = runIn(dt, in -> {
                NDArray out = k.tokenNll(in[0], in[1]);
                assertEquals(Dtype.FP32, k.dtypeOf(out), "the loss is fp32 whatever the logits");
                return out;
            }, logits, labels);
            // The logits are rounded to dt, the loss is then computed in fp32: fp32 accuracy on rounded inputs.
            double[][] in = valuesIn(dt, logits, labels);
            assertClose(dt + " logits", nllRef(in[0], in[1], V), got, 1e-5, 1e-5);
        }
    }

    @Test
    void tokenNllOnBatchedLogits() {
        // [B,T,V] logits with [B,T] labels: the same per-token loss, shape [B,T].
        int b = 2;
        int t = 3;
        float[] logits = normal(new Random(96), N * V, 2);
        try (NDManager m = Torch.newManager()) {
            NDArray nll = k.tokenNll(m.create(logits, new Shape(b, t, V)), m.create(LABELS, new Shape(b, t)));
            assertShape(nll, b, t);
            assertClose("batched", nllRef(KernelTestSupport.toDouble(logits), new double[] {3, IGN, 0, 6, IGN, 2}, V),
                    nll.toFloatArray(), 1e-5, 1e-5);
        }
    }

    @Test
    void crossEntropySumMatchesReferenceWithGradients() {
        float[] logits = normal(new Random(97), N * V, 2);
        checkForwardAndGradients(in -> {
            NDList out = k.crossEntropySum(in[0], in[1]);
            assertEquals(2, out.size());
            assertShape(out.get(0), new long[0]);
            return out.get(0);
        }, in -> new double[] {sum(nllRef(in[0], in[1], V))}, 1e-5, 1e-3, 98, Arg.grad("logits", logits, N, V),
                Arg.ids("labels", LABELS, N));
    }

    @Test
    void crossEntropySumCountsTrainedTokens() {
        float[] logits = normal(new Random(99), N * V, 2);
        try (NDManager m = Torch.newManager()) {
            NDArray x = m.create(logits, new Shape(N, V));
            x.setRequiresGradient(true);
            try (GradientCollector gc = Torch.engine().newGradientCollector()) {
                NDList out = k.crossEntropySum(x, m.create(LABELS));
                NDArray count = out.get(1);
                assertEquals(DataType.FLOAT32, out.get(0).getDataType());
                assertEquals(DataType.INT64, count.getDataType());
                assertShape(count, new long[0]);
                assertEquals(4L, count.toLongArray()[0]);
                gc.backward(out.get(0));
                float[] g = x.getGradient().toFloatArray();
                for (int n = 0; n < N; n++) {
                    float[] row = new float[V];
                    System.arraycopy(g, n * V, row, 0, V);
                    if (LABELS[n] == IGN) {
                        assertAllZero("gradient of ignored row " + n, row);
                    } else {
                        double rowSum = 0;
                        for (float f : row) {
                            rowSum += f;
                        }
                        // softmax - onehot sums to 0 over the vocabulary, and is -1 + p at the label.
                        assertEquals(0, rowSum, 1e-6, "row " + n);
                        assertTrue(row[(int) LABELS[n]] < 0, "label logit gradient is negative");
                    }
                }
            }
            // More ignored labels: fewer counted tokens and the sum of the remaining ones.
            long[] labels2 = {IGN, IGN, 1, IGN, 5, IGN};
            NDList out2 = k.crossEntropySum(m.create(logits, new Shape(N, V)), m.create(labels2));
            assertEquals(2L, out2.get(1).toLongArray()[0]);
            double[] ref = nllRef(KernelTestSupport.toDouble(logits), new double[] {IGN, IGN, 1, IGN, 5, IGN}, V);
            assertClose("sum", new double[] {sum(ref)}, out2.get(0).toFloatArray(), 1e-5, 1e-5);
        }
    }

    @Test
    void crossEntropySumOfAllIgnoredIsZero() {
        float[] logits = normal(new Random(100), N * V, 2);
        long[] labels = new long[N];
        java.util.Arrays.fill(labels, Kernels.IGNORE_INDEX);
        try (NDManager m = Torch.newManager()) {
            NDArray x = m.create(logits, new Shape(N, V));
            x.setRequiresGradient(true);
            try (GradientCollector gc = Torch.engine().newGradientCollector()) {
                NDList out = k.crossEntropySum(x, m.create(labels));
                assertEquals(0f, out.get(0).toFloatArray()[0], 0f);
                assertEquals(0L, out.get(1).toLongArray()[0]);
                assertAllZero("token nll", k.tokenNll(x, m.create(labels)).toFloatArray());
                gc.backward(out.get(0));
                assertAllZero("gradient", x.getGradient().toFloatArray());
            }
        }
    }

    @Test
    void ignoreIndexIsMinus100() {
        assertEquals(-100L, Kernels.IGNORE_INDEX);
    }
}
