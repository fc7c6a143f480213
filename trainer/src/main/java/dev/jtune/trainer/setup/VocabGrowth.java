package dev.jtune.trainer.setup;

import dev.jtune.model.llama.WeightSource;
import java.util.Random;

/**
 * The embedding and head grown to {@code rows} token rows before the model loads, as transformers'
 * {@code resize_token_embeddings(rows, mean_resizing=...)} grows them (transformers 5.18, {@code modeling_utils.py},
 * {@code _get_resized_embeddings} / {@code _get_resized_lm_head}): the old rows are kept, the new rows are
 *
 * <ul>
 *   <li>{@code meanResizing: false} (Axolotl's default, {@code mean_resizing_embeddings: false}, which Axolotl passes
 *       on as {@code mean_resizing=False}): drawn from N(0, initializer_range²), the model's {@code _init_weights}
 *       for a new {@code nn.Embedding} / {@code nn.Linear} (no padding row in the new module, so none is
 *       zeroed);</li>
 *   <li>{@code meanResizing: true} ({@code _init_added_embeddings_weights_with_mean}): drawn from
 *       N(μ, 1e-9·Σ), μ and Σ the mean and covariance (divided by the old row count) of the old rows in fp32; when
 *       1e-9·Σ is not positive definite (e.g. fewer old rows than the hidden size) every new row is μ itself.</li>
 * </ul>
 *
 * <p>The same rule for {@code model.embed_tokens.weight} and {@code lm_head.weight} (a Linear's weight is
 * {@code [vocab, hidden]} too), each with its own random stream. The values are not torch's random numbers: the
 * distribution is the same, the draws are Java's seeded {@link Random}, the same on every machine and rank.
 *
 * @param rows the grown vocabulary size
 * @param meanResizing transformers' {@code mean_resizing}
 * @param initializerRange config.json's {@code initializer_range} (transformers' default 0.02)
 * @param seed the run's seed
 */
public record VocabGrowth(int rows, boolean meanResizing, double initializerRange, long seed) {
    /** transformers' {@code epsilon} in {@code _init_added_embeddings_weights_with_mean}. */
    static final double MEAN_RESIZING_EPSILON = 1e-9;

    static final String EMBED = "model.embed_tokens.weight";
    static final String HEAD = "lm_head.weight";

    /** {@code source} with its embedding and head (where present) grown to {@link #rows} rows. */
    public WeightSource grow(WeightSource source) {
        return new WeightSource() {
            @Override
            public boolean contains(String name) {
                return source.contains(name);
            }

            @Override
            public long[] shape(String name) {
                long[] shape = source.shape(name);
                if (grows(name) && shape.length == 2 && shape[0] < rows) {
                    return new long[] {rows, shape[1]};
                }
                return shape;
            }

            @Override
            public float[] floats(String name) {
                float[] values = source.floats(name);
                long[] shape = source.shape(name);
                if (!grows(name) || shape.length != 2 || shape[0] >= rows) {
                    return values;
                }
                return grownRows(values, (int) shape[0], (int) shape[1], name);
            }

            @Override
            public String describe() {
                return source.describe() + " (vocabulary grown to " + rows + " rows)";
            }
        };
    }

    private static boolean grows(String name) {
        return name.equals(EMBED) || name.equals(HEAD);
    }

    /** {@code old} ({@code oldRows × cols}, row-major) followed by the new rows. */
    float[] grownRows(float[] old, int oldRows, int cols, String name) {
        if (oldRows >= rows) {
            throw new IllegalArgumentException(name + ": already " + oldRows + " rows, not fewer than " + rows);
        }
        float[] out = new float[Math.multiplyExact(rows, cols)];
        System.arraycopy(old, 0, out, 0, oldRows * cols);
        Random random = new Random(seed * 0x9E3779B97F4A7C15L + name.hashCode() + 0x5EED);
        int added = rows - oldRows;
        if (!meanResizing) {
            for (int i = oldRows * cols; i < out.length; i++) {
                out[i] = (float) (random.nextGaussian() * initializerRange);
            }
            return out;
        }
        float[] mean = mean(old, oldRows, cols);
        double[][] chol = cholesky(scaledCovariance(old, oldRows, cols, mean));
        for (int r = 0; r < added; r++) {
            int at = (oldRows + r) * cols;
            if (chol == null) {
                System.arraycopy(mean, 0, out, at, cols);
                continue;
            }
            double[] z = new double[cols];
            for (int j = 0; j < cols; j++) {
                z[j] = random.nextGaussian();
            }
            for (int i = 0; i < cols; i++) {
                double v = mean[i];
                for (int j = 0; j <= i; j++) {
                    v += chol[i][j] * z[j];
                }
                out[at + i] = (float) v;
            }
        }
        return out;
    }

    /** The fp32 mean of the rows (torch.mean over axis 0, here summed in double and rounded once). */
    static float[] mean(float[] w, int rows, int cols) {
        double[] sum = new double[cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                sum[c] += w[r * cols + c];
            }
        }
        float[] mean = new float[cols];
        for (int c = 0; c < cols; c++) {
            mean[c] = (float) (sum[c] / rows);
        }
        return mean;
    }

    /** 1e-9 · (W − μ)ᵀ(W − μ) / rows, the covariance transformers samples from. */
    static double[][] scaledCovariance(float[] w, int rows, int cols, float[] mean) {
        double[][] cov = new double[cols][cols];
        double[] centred = new double[cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                centred[c] = (float) (w[r * cols + c] - mean[c]);
            }
            for (int i = 0; i < cols; i++) {
                for (int j = 0; j <= i; j++) {
                    cov[i][j] += centred[i] * centred[j];
                }
            }
        }
        for (int i = 0; i < cols; i++) {
            for (int j = 0; j <= i; j++) {
                cov[i][j] = MEAN_RESIZING_EPSILON * cov[i][j] / rows;
                cov[j][i] = cov[i][j];
            }
        }
        return cov;
    }

    /**
     * The lower Cholesky factor, or null when the matrix is not positive definite (torch's
     * {@code constraints.positive_definite}: {@code cholesky_ex} fails). A pivot at or below a relative 1e-6 of the
     * largest diagonal counts as zero: a rank-deficient covariance (fewer rows than columns) is singular, whatever
     * rounding leaves in its last pivots.
     */
    static double[][] cholesky(double[][] a) {
        int n = a.length;
        double maxDiag = 0;
        for (int i = 0; i < n; i++) {
            maxDiag = Math.max(maxDiag, a[i][i]);
        }
        double[][] l = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double s = a[i][j];
                for (int k = 0; k < j; k++) {
                    s -= l[i][k] * l[j][k];
                }
                if (i == j) {
                    if (!(s > 1e-6 * maxDiag)) {
                        return null;
                    }
                    l[i][i] = Math.sqrt(s);
                } else {
                    l[i][j] = s / l[j][j];
                }
            }
        }
        return l;
    }
}
