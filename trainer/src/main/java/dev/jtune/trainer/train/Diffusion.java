package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.jtune.data.dataset.Batch;
import dev.jtune.model.engine.KernelLibrary;
import java.util.Set;

/**
 * Axolotl's diffusion language-model objective ({@code plugins: [axolotl.integrations.diffusion.DiffusionPlugin]},
 * its {@code DiffusionTrainer.compute_loss} at 067b021, after LLaDA) in place of next-token prediction: each row is
 * noised by {@link DiffusionNoise} (a per-row masking probability, masked tokens replaced by the mask token), the
 * model reads the noisy row with bidirectional attention within each sample, and the loss is, per row, the
 * cross-entropy of the masked tokens (each divided by its masking probability with {@code importance_weighting}) over
 * the row's trained tokens, averaged over the rows of the micro-batch ({@code diffusion.torchscript.py}).
 *
 * <p>As transformers' Trainer runs Axolotl's trainer (the model's forward takes no {@code num_items_in_batch}, so
 * {@code model_accepts_loss_kwargs} is False): each micro-batch's loss is divided by the step's micro-batch count
 * before backward, and the logged loss is the mean of the micro-batches' losses. The model is called with input ids
 * and the 4D mask only, so positions run 0..T-1 across a packed row (RoPE is relative, and no token sees another
 * sample, so this matches per-sample positions up to rounding). Evaluation runs the same objective with its own draws;
 * its loss is the mean over eval rows of their batch's loss (transformers repeats each batch's loss batch-size times).
 *
 * @param eps {@code diffusion.eps}: the least masking probability
 * @param importanceWeighting {@code diffusion.importance_weighting}
 * @param maskTokenId the resolved mask token (see {@code DiffusionSettings})
 * @param specialIds the tokenizer's bos, eos and pad ids: never masked
 * @param draw the random draws (see {@link DiffusionDraw} for how jtune's stream differs from torch's)
 */
public record Diffusion(double eps, boolean importanceWeighting, int maskTokenId, Set<Integer> specialIds,
        DiffusionDraw draw) {
    private static final KernelLibrary LIBRARY = new KernelLibrary(Diffusion.class, "DiffusionOps",
            "diffusion.torchscript.py");

    public Diffusion {
        if (!(eps >= 0 && eps <= 1)) {
            throw new IllegalArgumentException("diffusion.eps: expected a number in [0, 1], got " + eps);
        }
        if (maskTokenId < 0) {
            throw new IllegalArgumentException("diffusion mask token id must not be negative, got " + maskTokenId);
        }
        specialIds = Set.copyOf(specialIds);
    }

    /** The same objective with other draws (a test replaying a reference's). */
    public Diffusion withDraw(DiffusionDraw d) {
        return new Diffusion(eps, importanceWeighting, maskTokenId, specialIds, d);
    }

    /** The forward process of one micro-batch, with the draws of (step, micro). */
    public DiffusionNoise noise(Batch b, long step, int micro) {
        float[] t = new float[b.rows()];
        float[] u = new float[b.rows() * b.length()];
        draw.fill(step, micro, t, u);
        return DiffusionNoise.of(b, eps, maskTokenId, specialIds, t, u);
    }

    /**
     * The micro-batch's loss (fp32 scalar, in the logits' graph) and its masked-token count.
     *
     * @param logits [B,T,V] of the noisy rows
     */
    public NDList loss(NDArray logits, Batch b, DiffusionNoise noise) {
        NDManager m = logits.getManager();
        Shape shape = new Shape(b.rows(), b.length());
        long[] targets = new long[b.inputIds().length];
        for (int i = 0; i < targets.length; i++) targets[i] = b.inputIds()[i];
        NDArray target = m.create(targets, shape);
        NDArray masked = m.create(noise.masked(), shape);
        NDArray p = m.create(noise.pMask(), shape);
        NDArray answers = m.create(noise.answerLengths());
        return LIBRARY.ops().callAll("diffusion_loss", logits, target, masked, p, answers, importanceWeighting);
    }
}
