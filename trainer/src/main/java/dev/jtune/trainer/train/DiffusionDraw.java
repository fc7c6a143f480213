package dev.jtune.trainer.train;

import java.util.SplittableRandom;

/**
 * The two random draws of Axolotl's diffusion forward process, per micro-batch: a timestep {@code t[b]} per row and a
 * uniform {@code u[b,s]} per token, each in [0, 1) (Axolotl: {@code torch.rand(batch_size)}, then
 * {@code torch.rand((batch_size, seq_len))}, from torch's global generator). Injectable, so that a test can replay a
 * reference's draws exactly.
 *
 * <p>jtune's stream is not torch's: {@link #seeded} draws from a {@link SplittableRandom} keyed by the run's seed,
 * the optimizer step and the micro-batch (evaluation: the bitwise complement of the step), each value a float with 24 random
 * mantissa bits as {@code torch.rand} makes them. The same config gives the same masks on every run and every
 * process count, but not the masks torch would draw.
 */
@FunctionalInterface
public interface DiffusionDraw {
    /**
     * Fills {@code t} (one value per row) and then {@code u} (row-major, one value per token), in that order.
     *
     * @param step 0-based optimizer step; {@code ~step} (negative) for an evaluation after {@code step} steps
     * @param micro the micro-batch's index within the step (the eval batch's index in evaluation)
     */
    void fill(long step, int micro, float[] t, float[] u);

    /** The default draw: a stream per (seed, step, micro-batch). */
    static DiffusionDraw seeded(long seed) {
        return (step, micro, t, u) -> {
            SplittableRandom r = new SplittableRandom(ForwardBackward.mix(seed ^ 0x6469666675736E6CL, step, micro, 0));
            for (int i = 0; i < t.length; i++) t[i] = uniform(r);
            for (int i = 0; i < u.length; i++) u[i] = uniform(r);
        };
    }

    /** A float in [0, 1) from 24 random bits, as torch.rand's float32 values are made. */
    private static float uniform(SplittableRandom r) {
        return (r.nextInt() >>> 8) * 0x1.0p-24f;
    }
}
