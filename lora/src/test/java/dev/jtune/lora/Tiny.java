package dev.jtune.lora;

import dev.jtune.model.engine.Dtype;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.RandomInit;
import dev.jtune.model.llama.RopeScaling;
import dev.jtune.model.llama.WeightSource;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Test helpers: a very small Llama, its random weights as a WeightSource, seeded values. */
final class Tiny {
    private Tiny() {}

    static LlamaConfig config(boolean tied) {
        return new LlamaConfig("llama", 48, 16, 24, 2, 2, 1, 8, 64, 1e-5, 10000.0, new RopeScaling.None(), tied,
                Dtype.FP32, 0, List.of(1), 2, 0);
    }

    /** Every tensor of a random checkpoint, by name, with its shape. */
    static Map<String, float[]> weights(LlamaConfig c, long seed, Map<String, long[]> shapes) {
        RandomInit init = new RandomInit(c, seed);
        Map<String, float[]> w = new LinkedHashMap<>();
        for (RandomInit.Spec s : init.specs()) {
            w.put(s.name(), init.values(s));
            shapes.put(s.name(), s.shape());
        }
        return w;
    }

    static WeightSource source(Map<String, float[]> w, Map<String, long[]> shapes) {
        return WeightSource.of(w, shapes, "test weights");
    }

    static WeightSource randomSource(LlamaConfig c, long seed) {
        Map<String, long[]> shapes = new HashMap<>();
        return source(weights(c, seed, shapes), shapes);
    }

    static float[] gaussian(Random r, int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextGaussian() * std);
        }
        return v;
    }

    /** y[n,out] = x[n,in] · W[out,in]ᵀ in double. */
    static double[] linear(double[] x, float[] w, int n, int in, int out) {
        double[] y = new double[n * out];
        for (int i = 0; i < n; i++) {
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int k = 0; k < in; k++) {
                    s += x[i * in + k] * w[o * in + k];
                }
                y[i * out + o] = s;
            }
        }
        return y;
    }

    static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    static double maxAbsDiff(double[] a, float[] b) {
        if (a.length != b.length) {
            throw new AssertionError("lengths " + a.length + " vs " + b.length);
        }
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }
}
