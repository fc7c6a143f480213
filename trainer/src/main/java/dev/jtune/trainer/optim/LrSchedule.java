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
 *   <li>{@link CosineWithMinLr}: {@code get_cosine_with_min_lr_schedule_with_warmup}
 *       ({@code lr_scheduler: cosine_with_min_lr}, or cosine with another {@code num_cycles}).</li>
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
     * What else shapes the schedule (NaN when not set): Axolotl's {@code cosine_min_lr_ratio} and
     * {@code cosine_constant_lr_ratio}, which, as in its {@code SchedulerMixin.create_scheduler}, act only with
     * {@code lr_scheduler: cosine} and only when truthy (a ratio of 0 is the plain cosine schedule); and
     * {@code lr_scheduler_kwargs}, which transformers' {@code get_scheduler} passes to the schedule's function:
     * {@code num_cycles} (cosine, cosine_with_min_lr), {@code min_lr} or {@code min_lr_rate} (cosine_with_min_lr).
     */
    record Extras(double cosineMinLrRatio, double cosineConstantLrRatio, double numCycles, double minLr,
            double minLrRate) {
        public static final Extras NONE = new Extras(Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);

        public Extras {
            checkRatio("cosine_min_lr_ratio", cosineMinLrRatio);
            checkRatio("cosine_constant_lr_ratio", cosineConstantLrRatio);
            if (!Double.isNaN(minLr) && !Double.isNaN(minLrRate)) {
                throw new IllegalArgumentException("lr_scheduler_kwargs: only one of min_lr or min_lr_rate should be set"
                        + " (transformers refuses both)");
            }
        }

        /** Axolotl's two ratios alone. */
        public static Extras ratios(double cosineMinLrRatio, double cosineConstantLrRatio) {
            return new Extras(cosineMinLrRatio, cosineConstantLrRatio, Double.NaN, Double.NaN, Double.NaN);
        }

        private static void checkRatio(String key, double ratio) {
            if (!Double.isNaN(ratio) && !(ratio >= 0 && ratio <= 1)) {
                throw new IllegalArgumentException(key + " must be between 0.0 and 1.0, got " + ratio);
            }
        }

        boolean hasMin() {
            return !Double.isNaN(cosineMinLrRatio) && cosineMinLrRatio != 0;
        }

        boolean hasConstant() {
            return !Double.isNaN(cosineConstantLrRatio) && cosineConstantLrRatio != 0;
        }

        double cycles() {
            return Double.isNaN(numCycles) ? Cosine.NUM_CYCLES : numCycles;
        }
    }

    /**
     * transformers' {@code get_cosine_with_min_lr_schedule_with_warmup} (and {@code get_cosine_schedule_with_warmup}
     * with another {@code num_cycles}: rate 0): {@code max(0, cos_factor * (1 - rate) + rate)}.
     */
    record CosineWithMinLr(long warmupSteps, long totalSteps, double numCycles, double minLrRate, String label)
            implements LrSchedule {
        @Override
        public double factor(long step) {
            if (step < warmupSteps) {
                return (double) step / (double) Math.max(1, warmupSteps);
            }
            double progress = (double) (step - warmupSteps) / (double) Math.max(1, totalSteps - warmupSteps);
            double factor = 0.5 * (1.0 + Math.cos(Math.PI * numCycles * 2.0 * progress));
            return Math.max(0, factor * (1 - minLrRate) + minLrRate);
        }
    }

    /**
     * The schedule called {@code name} ({@code linear}, {@code cosine}, {@code constant},
     * {@code constant_with_warmup}).
     *
     * @throws IllegalArgumentException naming the supported values
     */
    static LrSchedule of(String name, long warmupSteps, long totalSteps) {
        return of(name, warmupSteps, totalSteps, Extras.NONE, Double.NaN);
    }

    /**
     * The schedule called {@code name} with its {@link Extras}: with {@code cosine}, a truthy
     * {@code cosine_min_lr_ratio} picks {@link CosineMinLr}, or with a truthy {@code cosine_constant_lr_ratio}
     * too {@link CosineDecayConstant} (Axolotl's order of checks; its schedulers then take no kwargs); other
     * schedules ignore the ratios, as Axolotl does. {@code cosine_with_min_lr} needs {@code min_lr} or
     * {@code min_lr_rate}.
     *
     * @param baseLr the learning rate, for {@code min_lr} (transformers divides by the optimizer's lr)
     */
    static LrSchedule of(String name, long warmupSteps, long totalSteps, Extras extras, double baseLr) {
        String lower = name.toLowerCase(Locale.ROOT);
        boolean minKwargs = !Double.isNaN(extras.minLr()) || !Double.isNaN(extras.minLrRate());
        if (minKwargs && !lower.equals("cosine_with_min_lr")) {
            throw new IllegalArgumentException("lr_scheduler_kwargs: min_lr / min_lr_rate apply to lr_scheduler:"
                    + " cosine_with_min_lr, not " + name + " (transformers would fail on them)");
        }
        if (!Double.isNaN(extras.numCycles()) && !lower.equals("cosine") && !lower.equals("cosine_with_min_lr")) {
            throw new IllegalArgumentException("lr_scheduler_kwargs: num_cycles applies to cosine schedules, not "
                    + name);
        }
        if (lower.equals("cosine") && extras.hasMin()) {
            return extras.hasConstant()
                    ? new CosineDecayConstant(warmupSteps, totalSteps, extras.cosineMinLrRatio(),
                            extras.cosineConstantLrRatio())
                    : new CosineMinLr(warmupSteps, totalSteps, extras.cosineMinLrRatio());
        }
        return switch (lower) {
            case "linear" -> new Linear(warmupSteps, totalSteps);
            case "cosine" -> Double.isNaN(extras.numCycles()) ? new Cosine(warmupSteps, totalSteps)
                    : new CosineWithMinLr(warmupSteps, totalSteps, extras.numCycles(), 0, "cosine");
            case "cosine_with_min_lr" -> {
                if (!Double.isNaN(extras.minLr()) && baseLr == 0) {
                    throw new IllegalArgumentException("lr_scheduler_kwargs: min_lr is a fraction of learning_rate, which"
                            + " is 0 (transformers divides by it); give min_lr_rate");
                }
                double rate = !Double.isNaN(extras.minLrRate()) ? extras.minLrRate() : extras.minLr() / baseLr;
                if (!minKwargs) {
                    // validation without a run's kwargs (the name alone) passes; a run must give one
                    if (!Double.isNaN(baseLr)) {
                        throw new IllegalArgumentException("lr_scheduler: cosine_with_min_lr needs lr_scheduler_kwargs"
                                + " with min_lr or min_lr_rate (as transformers)");
                    }
                    rate = 0;
                }
                yield new CosineWithMinLr(warmupSteps, totalSteps, extras.cycles(), rate, "cosine_with_min_lr");
            }
            case "constant" -> new Constant();
            case "constant_with_warmup" -> new ConstantWithWarmup(warmupSteps);
            default -> throw new IllegalArgumentException("lr_scheduler: unsupported value '" + name
                    + "'; expected one of cosine, linear, constant, constant_with_warmup, cosine_with_min_lr");
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
