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
 *   <li>{@link CosineMinLr}: Axolotl's {@code get_cosine_schedule_with_min_lr} ({@code cosine_min_lr_ratio}).</li>
 *   <li>{@link CosineDecayConstant}: Axolotl's {@code get_cosine_schedule_with_warmup_decay_constant}
 *       ({@code cosine_min_lr_ratio} with {@code cosine_constant_lr_ratio}).</li>
 * </ul>
 * Both of Axolotl's are in its {@code src/axolotl/utils/schedulers.py} at the pinned commit
 * ({@code dev.jtune.data.config.AxolotlKeys#COMMIT}).
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
     * Cosine from the peak down to {@code minLrRatio * lr} at {@code totalSteps} (no clamp at 0: the ratio is
     * the floor): {@code _get_cosine_schedule_with_min_lr_lambda}.
     */
    record CosineMinLr(long warmupSteps, long totalSteps, double minLrRatio) implements LrSchedule {
        @Override
        public double factor(long step) {
            if (step < warmupSteps) {
                return (double) step / (double) Math.max(1, warmupSteps);
            }
            double progress = (double) (step - warmupSteps) / (double) Math.max(1, totalSteps - warmupSteps);
            double scaling = 0.5 * (1.0 + Math.cos(Math.PI * progress));
            return (1 - minLrRatio) * scaling + minLrRatio;
        }

        @Override
        public String label() {
            return "cosine";
        }
    }

    /**
     * Cosine down to {@code minLrRatio * lr} at step {@code int(totalSteps * constantLrRatio)}, then constant
     * there (the "re-warming" schedule of arXiv 2308.04014):
     * {@code _get_cosine_schedule_with_warmup_decay_constant_lr_lambda} with {@code num_cycles = 0.5}.
     */
    record CosineDecayConstant(long warmupSteps, long totalSteps, double minLrRatio, double constantLrRatio)
            implements LrSchedule {
        @Override
        public double factor(long step) {
            if (step < warmupSteps) {
                return (double) step / (double) Math.max(1, warmupSteps);
            }
            long constantSteps = (long) (totalSteps * constantLrRatio); // Python's int(): truncation
            long current = Math.min(step, constantSteps);
            double progress = (double) (current - warmupSteps) / (double) Math.max(1, constantSteps - warmupSteps);
            return Math.max(0, (1 - minLrRatio) * 0.5 * (1.0 + Math.cos(Math.PI * Cosine.NUM_CYCLES * 2.0 * progress)))
                    + minLrRatio;
        }

        @Override
        public String label() {
            return "cosine";
        }
    }

    /**
     * Axolotl's {@code cosine_min_lr_ratio} and {@code cosine_constant_lr_ratio} (NaN when not set). As in its
     * {@code SchedulerMixin.create_scheduler}, they act only with {@code lr_scheduler: cosine}, and only when
     * truthy: a ratio of 0 is the plain cosine schedule.
     */
    record CosineRatios(double minLrRatio, double constantLrRatio) {
        public static final CosineRatios NONE = new CosineRatios(Double.NaN, Double.NaN);

        public CosineRatios {
            checkRatio("cosine_min_lr_ratio", minLrRatio);
            checkRatio("cosine_constant_lr_ratio", constantLrRatio);
        }

        private static void checkRatio(String key, double ratio) {
            if (!Double.isNaN(ratio) && !(ratio >= 0 && ratio <= 1)) {
                throw new IllegalArgumentException(key + " must be between 0.0 and 1.0, got " + ratio);
            }
        }

        boolean hasMin() {
            return !Double.isNaN(minLrRatio) && minLrRatio != 0;
        }

        boolean hasConstant() {
            return !Double.isNaN(constantLrRatio) && constantLrRatio != 0;
        }
    }

    /**
     * The schedule called {@code name} ({@code linear}, {@code cosine}, {@code constant},
     * {@code constant_with_warmup}).
     *
     * @throws IllegalArgumentException naming the supported values
     */
    static LrSchedule of(String name, long warmupSteps, long totalSteps) {
        return of(name, warmupSteps, totalSteps, CosineRatios.NONE);
    }

    /**
     * The schedule called {@code name}, with Axolotl's cosine ratios: with {@code cosine}, a truthy
     * {@code cosine_min_lr_ratio} picks {@link CosineMinLr}, or with a truthy {@code cosine_constant_lr_ratio}
     * too {@link CosineDecayConstant} (Axolotl's order of checks); other schedules ignore them, as Axolotl does.
     */
    static LrSchedule of(String name, long warmupSteps, long totalSteps, CosineRatios ratios) {
        if (name.toLowerCase(Locale.ROOT).equals("cosine") && ratios.hasMin()) {
            return ratios.hasConstant()
                    ? new CosineDecayConstant(warmupSteps, totalSteps, ratios.minLrRatio(), ratios.constantLrRatio())
                    : new CosineMinLr(warmupSteps, totalSteps, ratios.minLrRatio());
        }
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
