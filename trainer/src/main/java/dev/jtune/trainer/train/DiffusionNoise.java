package dev.jtune.trainer.train;

import dev.jtune.data.dataset.Batch;
import dev.jtune.data.dataset.Sample;
import java.util.Set;

/**
 * One micro-batch after Axolotl's diffusion forward process ({@code DiffusionTrainer._forward_process} at 067b021):
 * row b gets {@code p = (1 - eps) * t[b] + eps} (fp32, 0 on padding), and token s is masked where
 * {@code u[b,s] < p}, it is not padding, not the tokenizer's bos/eos/pad, and its label is trained
 * ({@code labels != -100}: only the response in SFT, every real token in pretraining rows). Masked tokens are
 * replaced by the mask token.
 *
 * @param noisy the input ids with masked tokens replaced [rows * length]
 * @param masked which tokens were masked
 * @param pMask each token's masking probability (fp32; 0 on padding)
 * @param answerLengths per row, the tokens whose label is trained (Axolotl's {@code answer_lengths}, the
 *     loss's per-row denominator)
 */
public record DiffusionNoise(int[] noisy, boolean[] masked, float[] pMask, float[] answerLengths) {

    /**
     * @param t the rows' timesteps, {@code u} the tokens' uniforms (see {@link DiffusionDraw})
     * @param specialIds bos, eos and pad ids of the tokenizer: never masked
     */
    public static DiffusionNoise of(Batch b, double eps, int maskTokenId, Set<Integer> specialIds, float[] t,
            float[] u) {
        int rows = b.rows();
        int len = b.length();
        int n = rows * len;
        int[] noisy = b.inputIds().clone();
        boolean[] masked = new boolean[n];
        float[] p = new float[n];
        float[] answers = new float[rows];
        // torch computes (1 - eps) * t + eps in fp32, each scalar rounded to fp32 first.
        float scale = (float) (1 - eps);
        float shift = (float) eps;
        for (int r = 0; r < rows; r++) {
            float pr = scale * t[r] + shift;
            for (int i = 0; i < len; i++) {
                int at = r * len + i;
                boolean valid = b.attentionMask()[at] != 0;
                boolean answer = b.labels()[at] != Sample.IGNORE_INDEX;
                p[at] = valid ? pr : 0f;
                if (answer) answers[r]++;
                masked[at] = u[at] < p[at] && valid && answer && !specialIds.contains(b.inputIds()[at]);
                if (masked[at]) noisy[at] = maskTokenId;
            }
        }
        return new DiffusionNoise(noisy, masked, p, answers);
    }

    /** How many tokens were masked. */
    public int maskedCount() {
        int c = 0;
        for (boolean m : masked) if (m) c++;
        return c;
    }
}
