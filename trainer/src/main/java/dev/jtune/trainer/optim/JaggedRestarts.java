package dev.jtune.trainer.optim;

/**
 * Axolotl's {@code JaggedLRRestartScheduler} (utils/schedulers.py at the pinned commit), which wraps the run's
 * schedule whenever {@code jagged_restart_steps} is set (ReLoRA's restarts): the inner schedule's learning rate times
 * a scale that drops to {@code minLrScale} at every multiple of {@code restartSteps}, climbs back linearly over
 * {@code warmupSteps} and, before the next restart, falls linearly over {@code annealSteps}. The first
 * {@code restartSteps - annealSteps} steps are unscaled. Transcribed from {@code get_lr} with
 * {@code step = last_epoch}:
 * <pre>
 *   if step &lt; R - A: scale = 1
 *   else: p = step % R
 *         t = min(1, p / W)        if p &lt; W
 *             min(1, (R - p) / A)  if p &gt; R - A
 *             1                    otherwise
 *         scale = t * (1 - min_lr_scale) + min_lr_scale
 * </pre>
 *
 * <p>One step ahead: the wrapper's constructor (torch's {@code LRScheduler.__init__} with the inner schedule's
 * {@code last_epoch} 0) steps it once more, so the step after {@code k} optimizer steps runs with {@code last_epoch
 * = k + 1}, for the scale and for the inner schedule alike ({@link #lr}); the scale's low point falls on the last
 * step before each restart.
 *
 * @param restartSteps {@code jagged_restart_steps} (R)
 * @param warmupSteps {@code jagged_restart_warmup_steps}, Axolotl's default 10 when unset or 0 (W)
 * @param annealSteps {@code jagged_restart_anneal_steps}, Axolotl's default 1 when unset, 0 or false (A)
 * @param minLrScale {@code cosine_min_lr_ratio}, Axolotl's default 0.001 when unset or 0
 */
public record JaggedRestarts(long restartSteps, long warmupSteps, long annealSteps, double minLrScale) {
    public JaggedRestarts {
        if (restartSteps < 1) {
            throw new IllegalArgumentException("jagged_restart_steps must be at least 1, got " + restartSteps);
        }
        if (warmupSteps < 1) {
            throw new IllegalArgumentException("jagged_restart_warmup_steps must be at least 1, got " + warmupSteps);
        }
        if (annealSteps < 1) {
            throw new IllegalArgumentException("jagged_restart_anneal_steps must be at least 1, got " + annealSteps);
        }
    }

    /**
     * The learning rate of the step after {@code k} optimizer steps under {@code inner} (its factors on
     * {@code baseLr}): {@code baseLr * inner(k + 1) * scale(k + 1)}.
     */
    public double lr(double baseLr, LrSchedule inner, long k) {
        return baseLr * inner.factor(k + 1) * scale(k + 1);
    }

    /** {@code get_lr}'s factor on the inner schedule's learning rate at {@code last_epoch = step}. */
    public double scale(long step) {
        if (step < restartSteps - annealSteps) {
            return 1;
        }
        long p = step % restartSteps;
        double t;
        if (p < warmupSteps) {
            t = Math.min(1.0, (double) p / warmupSteps);
        } else if (p > restartSteps - annealSteps) {
            t = Math.min(1.0, (double) (restartSteps - p) / annealSteps);
        } else {
            t = 1;
        }
        return t * (1 - minLrScale) + minLrScale;
    }
}
