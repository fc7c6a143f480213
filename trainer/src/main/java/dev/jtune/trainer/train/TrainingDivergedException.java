package dev.jtune.trainer.train;

/** The loss or the gradients became NaN or infinite in fp32/bf16: the run stopped before updating weights. */
public final class TrainingDivergedException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final long step;

    public TrainingDivergedException(long step, String message) {
        super(message);
        this.step = step;
    }

    /** The 1-based optimizer step whose loss or gradients were not finite. */
    public long step() {
        return step;
    }
}
