package dev.jtune.trainer.optim;

/**
 * Dynamic loss scaling for fp16, as {@code torch.amp.GradScaler} with its defaults: the loss is multiplied by
 * {@link #scale()} before backward, the gradients are multiplied by {@code 1/scale} before clipping; a step
 * whose gradients hold inf or NaN is skipped and the scale halves; after {@code growthInterval} good steps in
 * a row it doubles.
 */
public final class GradScaler {
    public static final double INIT_SCALE = 65536.0;
    public static final double GROWTH_FACTOR = 2.0;
    public static final double BACKOFF_FACTOR = 0.5;
    public static final int GROWTH_INTERVAL = 2000;

    private final double growthFactor;
    private final double backoffFactor;
    private final int growthInterval;
    private double scale;
    private int growthTracker;
    private long skipped;

    public GradScaler() {
        this(INIT_SCALE, GROWTH_FACTOR, BACKOFF_FACTOR, GROWTH_INTERVAL);
    }

    public GradScaler(double initScale, double growthFactor, double backoffFactor, int growthInterval) {
        if (!(initScale > 0) || !(growthFactor > 1) || !(backoffFactor > 0 && backoffFactor < 1) || growthInterval < 1) {
            throw new IllegalArgumentException("bad GradScaler parameters");
        }
        this.scale = initScale;
        this.growthFactor = growthFactor;
        this.backoffFactor = backoffFactor;
        this.growthInterval = growthInterval;
    }

    /** The factor the loss is multiplied by (a float32 value in torch; powers of two here). */
    public double scale() {
        return scale;
    }

    /** {@code 1/scale} as torch computes it: {@code scale.double().reciprocal().float()}. */
    public double inverseScale() {
        return (float) (1.0 / scale);
    }

    /**
     * {@code GradScaler.update}: after a skipped step (gradients not finite) the scale backs off and the
     * streak restarts; otherwise the streak grows and the scale grows at {@code growthInterval}.
     */
    public void update(boolean foundInf) {
        if (foundInf) {
            scale = (float) (scale * backoffFactor);
            growthTracker = 0;
            skipped++;
        } else {
            growthTracker++;
            if (growthTracker == growthInterval) {
                scale = (float) (scale * growthFactor);
                growthTracker = 0;
            }
        }
    }

    public int growthTracker() {
        return growthTracker;
    }

    /** Steps skipped so far because of inf/NaN gradients. */
    public long skipped() {
        return skipped;
    }

    /** Restores state saved from {@link #scale()}, {@link #growthTracker()}, {@link #skipped()}. */
    public void restore(double scale, int growthTracker, long skipped) {
        this.scale = scale;
        this.growthTracker = growthTracker;
        this.skipped = skipped;
    }
}
