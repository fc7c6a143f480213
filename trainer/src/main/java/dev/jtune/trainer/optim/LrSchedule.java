package dev.jtune.trainer.optim;

import java.util.Locale;

/**
 * Learning-rate multipliers of transformers' {@code get_scheduler}, as {@code LambdaLR} applies them: the
 * optimizer step with 0-based index {@code step} runs at {@code base_lr * factor(step)}.
 *
 * <ul>
 *   <li>{@link Linear}: {@code get_linear_schedule_with_warmup} — warmup from 0, then linear decay to 0 at
 *       {@code totalSteps}.</li>
 *   <li>{@link Cosine}: {@code get_cosine_schedule_with_warmup} with {@code num_cycles = 0.5}.</li>
 *   <li>{@link Constant}: {@code get_constant_schedule} — no warmup. Axolotl passes {@code lr_scheduler}
 *       straight to transformers' {@code lr_scheduler_type}, so {@code constant} ignores warmup there too.</li>
 *   <li>{@link ConstantWithWarmup}: {@code get_constant_schedule_with_warmup}.</li>
 * </ul>
 */
public sealed interface LrSchedule {
    /** The multiplier of the base learning rate at 0-based optimizer step {@code step}. */
    double factor(long step);

    /** The config name ({@code lr_scheduler}). */
    String label();

    record Linear(long warmupSteps, long totalSteps) implements LrSchedule {
        @Override
        public double factor(long step) {
            if (step < warmupSteps) {
                return (double) step / (double) Math.max(1, warmupSteps);
            }
            return Math.max(0.0, (double) (totalSteps - step) / (double) Math.max(1, totalSteps - warmupSteps));
        }

        @Override
        public String label() {
            return "linear";
        }
    }

    record Cosine(long warmupSteps, long totalSteps) implements LrSchedule {
        static final double NUM_CYCLES = 0.5;

        @Override
        public double factor(long step) {
            if (step < warmupSteps) {
                return (double) step / (double) Math.max(1, warmupSteps);
            }
            double progress = (double) (step - warmupSteps) / (double) Math.max(1, totalSteps - warmupSteps);
            return Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * NUM_CYCLES * 2.0 * progress)));
        }

        @Override
        public String label() {
            return "cosine";
        }
    }

    record Constant() implements LrSchedule {
        @Override
        public double factor(long step) {
            return 1.0;
        }

        @Override
        public String label() {
            return "constant";
        }
    }

    record ConstantWithWarmup(long warmupSteps) implements LrSchedule {
        @Override
        public double factor(long step) {
            if (step < warmupSteps) {
                return (double) step / (double) Math.max(1.0, warmupSteps);
            }
            return 1.0;
        }

        @Override
        public String label() {
            return "constant_with_warmup";
        }
    }

    /**
     * The schedule called {@code name} ({@code linear}, {@code cosine}, {@code constant},
     * {@code constant_with_warmup}).
     *
     * @throws IllegalArgumentException naming the supported values
     */
    static LrSchedule of(String name, long warmupSteps, long totalSteps) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "linear" -> new Linear(warmupSteps, totalSteps);
            case "cosine" -> new Cosine(warmupSteps, totalSteps);
            case "constant" -> new Constant();
            case "constant_with_warmup" -> new ConstantWithWarmup(warmupSteps);
            default -> throw new IllegalArgumentException("lr_scheduler: unsupported value '" + name
                    + "'; expected one of cosine, linear, constant, constant_with_warmup");
        };
    }

    /**
     * Axolotl's warmup rule ({@code HFCausalTrainerBuilder.build}): {@code warmup_steps} if set, else
     * {@code int(warmup_ratio * total)} (floored), else {@code min(int(0.03 * total), 100)}; a result of 1
     * becomes 2.
     *
     * @param warmupSteps negative when not set
     * @param warmupRatio NaN when not set
     */
    static long warmupSteps(long warmupSteps, double warmupRatio, long totalSteps) {
        long w;
        if (warmupSteps >= 0) {
            w = warmupSteps;
        } else if (!Double.isNaN(warmupRatio)) {
            w = Math.max((long) (warmupRatio * totalSteps), 0);
        } else {
            w = Math.min((long) (0.03 * totalSteps), 100);
        }
        return w == 1 ? 2 : w;
    }
}
