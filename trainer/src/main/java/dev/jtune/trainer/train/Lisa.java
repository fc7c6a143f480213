package dev.jtune.trainer.train;

import dev.jtune.data.config.TrainerSettings;
import java.util.Arrays;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Axolotl's LISA ({@code lisa_n_layers}, {@code lisa_step_interval}, {@code lisa_layers_attribute}; its
 * utils/callbacks/lisa.py at the pinned commit, after LMFlow): full fine-tuning in which only {@code nLayers} of the
 * decoder layers ({@code model.layers}) train at a time. Everything outside the decoder layers (embeddings, final
 * norm, lm_head) trains at every step. At the beginning of a step whose {@code global_step} (steps done so far) is a
 * multiple of {@code stepInterval}, and also at {@code global_step == 1} (the callback's own condition, so the second
 * step draws again), every layer is frozen and {@code nLayers} distinct layers are drawn uniformly and unfrozen.
 *
 * <p>A frozen layer's parameters have no gradient (transformers' {@code zero_grad} sets them to None and
 * {@code requires_grad=False} keeps them so): torch's AdamW skips them entirely (no weight decay, no moment decay,
 * their step count stays), {@code clip_grad_norm_} leaves them out of the norm, and their AdamW state is kept for
 * when they are drawn again. jtune does the same through {@link dev.jtune.trainer.optim.Optimizer#freeze}. (jtune
 * still computes the frozen layers' gradients and discards them: the same numbers, not LISA's memory saving.)
 *
 * <p>The draw: Axolotl calls {@code np.random.choice(range(L), n, replace=False)} on numpy's global generator, which
 * transformers seeds with {@code seed} and saves in checkpoints; what else consumed that stream before depends on the
 * process. jtune draws with its own generator seeded by {@code (seed, the step of the draw)}: the same distribution
 * (n distinct layers, uniformly), reproducible, and a resumed run draws what the uninterrupted one did.
 *
 * @param nLayers layers trainable at a time, at least 1
 * @param stepInterval steps between draws, at least 1
 */
public record Lisa(int nLayers, int stepInterval) {
    /** Axolotl's default and the only attribute path of jtune's models: {@code model.layers}. */
    public static final String LAYERS_ATTRIBUTE = "model.layers";

    private static final Pattern LAYER = Pattern.compile("^model\\.layers\\.(\\d+)\\.");

    public Lisa {
        if (nLayers < 1) throw new IllegalArgumentException("lisa_n_layers must be at least 1, got " + nLayers);
        if (stepInterval < 1) {
            throw new IllegalArgumentException("lisa_step_interval must be at least 1, got " + stepInterval);
        }
    }

    /**
     * LISA as Axolotl's builder turns it on: both {@code lisa_n_layers} and {@code lisa_step_interval} set (non-zero);
     * empty otherwise. Values only; {@link #refusals} checks the combinations.
     */
    public static Optional<Lisa> from(TrainerSettings s) {
        long n = s.integer("lisa_n_layers").orElse(0);
        long interval = s.integer("lisa_step_interval").orElse(0);
        if (n == 0 || interval == 0) {
            return Optional.empty();
        }
        return Optional.of(new Lisa(Math.toIntExact(n), Math.toIntExact(interval)));
    }

    /**
     * What jtune refuses of the LISA keys, or empty: one of the two counts without the other (Axolotl then silently
     * runs plain full fine-tuning), another layers attribute, and LISA with an adapter (Axolotl's callback finds no
     * {@code model.layers} under a PEFT model), with unfrozen_parameters, or with sharded training (fsdp, deepspeed:
     * jtune's sharded optimizer does not skip layers).
     */
    public static Optional<Refusal> refusals(TrainerSettings s) {
        boolean n = s.integer("lisa_n_layers").orElse(0) != 0;
        boolean interval = s.integer("lisa_step_interval").orElse(0) != 0;
        String attribute = s.string("lisa_layers_attribute").orElse(LAYERS_ATTRIBUTE);
        if (!attribute.equals(LAYERS_ATTRIBUTE)) {
            return Refusal.of("lisa_layers_attribute", "lisa_layers_attribute: " + attribute + " is not supported: jtune's decoder layers are "
                    + LAYERS_ATTRIBUTE + " (Axolotl's default)");
        }
        if (n != interval) {
            return Refusal.of(n ? "lisa_n_layers" : "lisa_step_interval", (n ? "lisa_n_layers without lisa_step_interval" : "lisa_step_interval without lisa_n_layers")
                    + " is not supported: Axolotl turns LISA on only with both (and otherwise trains every layer"
                    + " without a word); set both, or neither");
        }
        if (!n) {
            return Optional.empty();
        }
        if (s.string("adapter").isPresent()) {
            return Refusal.of("lisa_n_layers", "lisa_n_layers with adapter: " + s.string("adapter").get() + " is not supported: LISA"
                    + " trains whole decoder layers (full fine-tuning); Axolotl's callback finds no model.layers under"
                    + " a PEFT model; remove adapter, or the lisa_* keys");
        }
        if (s.has("unfrozen_parameters")) {
            return Refusal.of("lisa_n_layers", "lisa_n_layers with unfrozen_parameters is not supported: LISA re-enables whole layers"
                    + " at each draw, overriding the selection; use one of them");
        }
        if (s.has("fsdp") || s.has("fsdp_config") || s.has("deepspeed")) {
            return Refusal.of("lisa_n_layers", "lisa_n_layers with " + (s.has("deepspeed") ? "deepspeed" : "fsdp") + " is not"
                    + " supported: jtune's sharded optimizer updates every layer's shard; train LISA data parallel"
                    + " (without fsdp/deepspeed)");
        }
        return Optional.empty();
    }

    /** A refused combination: the key to point at and the message. */
    public record Refusal(String key, String message) {
        static Optional<Refusal> of(String key, String message) {
            return Optional.of(new Refusal(key, message));
        }
    }

    /** Whether the callback draws at the beginning of the step after {@code globalStep} steps. */
    public boolean drawsAt(long globalStep) {
        return globalStep % stepInterval == 0 || globalStep == 1;
    }

    /** The {@code global_step} of the draw in effect during the step after {@code globalStep} steps. */
    public long lastDraw(long globalStep) {
        long m = globalStep - globalStep % stepInterval;
        return m == 0 && globalStep >= 1 ? 1 : m;
    }

    /**
     * The layers trainable after the draw at {@code drawStep}: {@code nLayers} distinct indices of {@code 0..total-1},
     * in draw order (a partial Fisher-Yates shuffle seeded by {@code (seed, drawStep)}).
     *
     * @throws IllegalArgumentException when {@code nLayers > total} (numpy refuses that sample too)
     */
    public int[] draw(long seed, long drawStep, int total) {
        if (nLayers > total) {
            throw new IllegalArgumentException("lisa_n_layers: " + nLayers + " is more than the model's " + total
                    + " decoder layers");
        }
        SplittableRandom random = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + drawStep);
        int[] pool = new int[total];
        for (int i = 0; i < total; i++) pool[i] = i;
        for (int i = 0; i < nLayers; i++) {
            int j = i + random.nextInt(total - i);
            int t = pool[i];
            pool[i] = pool[j];
            pool[j] = t;
        }
        return Arrays.copyOf(pool, nLayers);
    }

    /** The decoder layer a parameter name belongs to ({@code model.layers.<i>.}), or -1. */
    public static int layerOf(String name) {
        Matcher m = LAYER.matcher(name);
        return m.find() ? Integer.parseInt(m.group(1)) : -1;
    }
}
