package dev.jtune.trainer.train;

import dev.jtune.data.config.TrainerSettings;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Axolotl's entropy-aware focal training ({@code use_eaft}, {@code eaft_alpha}, {@code eaft_k}; its
 * {@code monkeypatch/loss/eaft.py} at 067b021, passed to transformers' Trainer as {@code compute_loss_func}): each
 * trained token's NLL is weighted by {@code H^alpha}, H the entropy of the softmax over its top-{@code k} fp32 logits
 * (no gradient through the weight), and the weighted sum is divided by the trained tokens of the whole step across
 * ranks, the {@code num_items_in_batch} transformers passes (its {@code average_tokens_across_devices} default).
 * That is jtune's own normalisation, so only the summed NLL changes ({@code Kernels.eaftNllSum}).
 *
 * @param alpha {@code eaft_alpha}, Axolotl's default 1.0
 * @param k {@code eaft_k}, Axolotl's default 20 (capped at the vocabulary, as {@code min(k, vocab_size)})
 */
public record Eaft(double alpha, int k) {
    public Eaft {
        if (!(Double.isFinite(alpha))) {
            throw new IllegalArgumentException("eaft_alpha: expected a finite number, got " + alpha);
        }
        if (k < 1) {
            throw new IllegalArgumentException("eaft_k: expected a positive number of top logits, got " + k);
        }
    }

    /** {@code use_eaft: true} with its settings; empty without it. */
    public static Optional<Eaft> from(TrainerSettings s) {
        if (!s.bool("use_eaft").orElse(false)) {
            return Optional.empty();
        }
        return Optional.of(new Eaft(s.number("eaft_alpha").orElse(1.0), (int) s.integer("eaft_k").orElse(20)));
    }

    /**
     * What jtune refuses with {@code use_eaft}, each as {key, message}: held-out evaluation, since transformers
     * evaluates with the same {@code compute_loss_func} but without {@code num_items_in_batch}, so its eval loss is
     * the mean over eval batches of each batch's weighted token mean, a figure jtune's eval (summed NLL over all
     * eval tokens) does not produce; and settings out of range.
     *
     * @param heldOut whether the config names evaluation data ({@code TrainConfig.hasEvaluation})
     */
    public static List<String[]> refusals(TrainerSettings s, boolean heldOut) {
        List<String[]> out = new ArrayList<>();
        if (!s.bool("use_eaft").orElse(false)) {
            return out;
        }
        try {
            from(s);
        } catch (IllegalArgumentException e) {
            out.add(new String[] {e.getMessage().startsWith("eaft_k") ? "eaft_k" : "eaft_alpha", e.getMessage()});
        }
        if (heldOut) {
            out.add(new String[] {"use_eaft", "use_eaft: true with held-out data (val_set_size/test_datasets) is"
                    + " not supported: transformers evaluates EAFT as the mean over eval batches of each batch's"
                    + " entropy-weighted token mean, which jtune's eval loss (summed NLL over all eval tokens) does not"
                    + " report; set val_set_size: 0 and drop test_datasets, or drop use_eaft"});
        }
        return out;
    }
}
