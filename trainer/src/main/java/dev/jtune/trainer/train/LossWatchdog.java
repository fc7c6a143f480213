package dev.jtune.trainer.train;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * Axolotl's {@code LossWatchDogCallback} (utils/callbacks/__init__.py): at the end of every step, before that step's
 * own log line is written, it looks at the newest line of the log history; if that line has a training {@code loss}
 * above {@code loss_watchdog_threshold} the violations grow, and at {@code loss_watchdog_patience} (default 3)
 * training stops after the step; a loss at or below the threshold resets them; an evaluation line (no {@code loss})
 * changes nothing. So with {@code logging_steps: N} one high logged loss counts at each of the N steps that follow
 * it. The count is not checkpointed (the callback keeps no state across a resume), here neither.
 */
final class LossWatchdog {
    private final double threshold;
    private final long patience;
    private long violations;

    /** @param patience {@code loss_watchdog_patience}; 0 means Axolotl's default 3 ({@code or 3}) */
    LossWatchdog(double threshold, long patience) {
        this.threshold = threshold;
        this.patience = patience > 0 ? patience : 3;
    }

    /** At a step's end, with the newest log line (null: none yet): whether training should stop. */
    boolean stepEnded(JsonNode newest) {
        if (newest == null || !newest.has("loss")) return false;
        JsonNode loss = newest.get("loss");
        if (loss.isNumber() && loss.asDouble() > threshold) {
            violations++;
            return violations >= patience;
        }
        violations = 0; // Python: NaN > threshold is False, so a missing (null, NaN) loss resets as well
        return false;
    }

    long violations() {
        return violations;
    }
}
