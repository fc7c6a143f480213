package dev.jtune.data.config;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A dataset entry's {@code split:} as Hugging Face datasets reads it ({@code ReadInstruction.from_spec} in
 * datasets 5.0.1's {@code arrow_reader.py}, which Axolotl's {@code load_dataset(..., split=...)} reaches):
 * instructions joined by {@code +}, each a split name with an optional slice {@code [from:to]} of row counts or
 * percents ({@code train[:20%]}, {@code train[10:100]}, {@code train[-10%:]}) and, for percents, an optional
 * rounding {@code (closest)} (the default) or {@code (pct1_dropremainder)}. The rows read are those of each
 * instruction in turn, in the order given.
 *
 * @param instructions at least one
 */
public record SplitSpec(List<Instruction> instructions) {
    public SplitSpec {
        instructions = List.copyOf(instructions);
    }

    /** How a percent boundary becomes a row index. */
    public enum Rounding {
        /** {@code int(round(boundary * n / 100.0))}: Python's round, half to even. */
        CLOSEST("closest"),
        /** {@code boundary * trunc(n / 100.0)}: whole 1% blocks; refused for fewer than 100 rows. */
        PCT1_DROPREMAINDER("pct1_dropremainder");

        private final String name;

        Rounding(String name) {
            this.name = name;
        }
    }

    /**
     * One instruction.
     *
     * @param split the split's name
     * @param from the slice's start, or empty for the beginning; negative counts from the end
     * @param to the slice's end (excluded), or empty for the end; negative counts from the end
     * @param percent whether the boundaries are percents (either written with {@code %} makes both percents, as in
     *     datasets)
     * @param rounding for percents; empty for row counts
     */
    public record Instruction(String split, Optional<Long> from, Optional<Long> to, boolean percent,
            Optional<Rounding> rounding) {

        /** Whether this reads a part of the split rather than all of it. */
        public boolean sliced() {
            return from.isPresent() || to.isPresent();
        }

        /**
         * The rows {@code [start, end)} of a split of {@code n} rows this instruction reads: {@code _rel_to_abs_instr}.
         * A start at or past the end reads nothing.
         *
         * @throws IllegalArgumentException for {@code pct1_dropremainder} on fewer than 100 rows, as datasets
         */
        public long[] rows(long n) {
            long start;
            long end;
            if (percent) {
                start = from.map(b -> percentToRow(b, n)).orElse(0L);
                end = to.map(b -> percentToRow(b, n)).orElse(n);
            } else {
                start = from.orElse(0L);
                end = to.orElse(n);
            }
            if (start < 0) start = Math.max(n + start, 0);
            if (end < 0) end = Math.max(n + end, 0);
            start = Math.min(start, n);
            end = Math.min(end, n);
            return new long[] {start, Math.max(start, end)};
        }

        private long percentToRow(long boundary, long n) {
            if (rounding.orElseThrow() == Rounding.CLOSEST) {
                return (long) Math.rint(boundary * n / 100.0); // Python's round(): half to even, as rint
            }
            if (n < 100) {
                throw new IllegalArgumentException("split " + split + ": pct1_dropremainder rounding on a split of"
                        + " fewer than 100 rows (" + n + ") always reads nothing (datasets refuses it too)");
            }
            return boundary * (long) (n / 100.0);
        }
    }

    // datasets' _SUB_SPEC_RE, with its split name rule (naming._split_re: \w+(\.\w+)*, Unicode-aware in Python).
    private static final Pattern SUB_SPEC = Pattern.compile(
            "(?<split>\\w+(?:\\.\\w+)*)(?:\\[(?:(?<from>-?[\\d_]+)(?<fromPct>%)?)?:(?:(?<to>-?[\\d_]+)(?<toPct>%)?)?\\])?"
                    + "(?:\\((?<rounding>[^)]*)\\))?", Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern ADDITION_SEP = Pattern.compile("\\s*\\+\\s*");
    // Python's int() on the digits datasets' pattern lets through: single underscores between digits only.
    private static final Pattern PY_INT = Pattern.compile("-?\\d+(?:_\\d+)*");

    /** The split {@code train}: every row. */
    public static final SplitSpec TRAIN = parse("train");

    /**
     * Parses a spec as datasets does.
     *
     * @throws IllegalArgumentException saying what is wrong, in datasets' terms
     */
    public static SplitSpec parse(String spec) {
        List<Instruction> out = new ArrayList<>();
        for (String sub : ADDITION_SEP.split(spec, -1)) {
            Matcher m = SUB_SPEC.matcher(sub);
            if (!m.matches()) {
                throw new IllegalArgumentException("unrecognized split '" + sub + "': expected a split name with an"
                        + " optional slice, e.g. train, train[:20%], train[10:100], train[-10%:], joined by +");
            }
            boolean percent = m.group("fromPct") != null || m.group("toPct") != null;
            Optional<Long> from = boundary(sub, m.group("from"));
            Optional<Long> to = boundary(sub, m.group("to"));
            Optional<Rounding> rounding = Optional.empty();
            String r = m.group("rounding");
            if (r != null) {
                rounding = Optional.of(switch (r) {
                    case "closest" -> Rounding.CLOSEST;
                    case "pct1_dropremainder" -> Rounding.PCT1_DROPREMAINDER;
                    default -> throw new IllegalArgumentException("split '" + sub + "': rounding must be closest or"
                            + " pct1_dropremainder, got '" + r + "'");
                });
                if (!percent) {
                    throw new IllegalArgumentException("split '" + sub + "': a rounding applies only to percent"
                            + " slices (datasets forbids it on row counts)");
                }
            }
            if (percent) {
                for (Optional<Long> b : List.of(from, to)) {
                    if (b.isPresent() && Math.abs(b.get()) > 100) {
                        throw new IllegalArgumentException("split '" + sub + "': percent boundaries must be within"
                                + " -100 and 100, got " + b.get());
                    }
                }
                rounding = Optional.of(rounding.orElse(Rounding.CLOSEST));
            }
            Instruction instruction = new Instruction(m.group("split"), from, to, percent, rounding);
            if (!out.isEmpty() && out.get(0).percent() && percent && !out.get(0).rounding().equals(rounding)) {
                throw new IllegalArgumentException("split '" + spec + "': percent slices joined by + must use the"
                        + " same rounding (datasets forbids mixing them)");
            }
            out.add(instruction);
        }
        return new SplitSpec(out);
    }

    private static Optional<Long> boundary(String sub, String digits) {
        // datasets: int(group) if group else None; "" cannot match [\d_]+, so only None is absent.
        if (digits == null) return Optional.empty();
        if (!PY_INT.matcher(digits).matches()) {
            throw new IllegalArgumentException("split '" + sub + "': '" + digits + "' is not a whole number");
        }
        try {
            return Optional.of(Long.parseLong(digits.replace("_", "")));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("split '" + sub + "': '" + digits + "' is out of range", e);
        }
    }

    /** Whether some instruction reads part of its split (the rows must then be counted first). */
    public boolean sliced() {
        return instructions.stream().anyMatch(Instruction::sliced);
    }

    /** The split names, in order. */
    public List<String> splits() {
        return instructions.stream().map(Instruction::split).toList();
    }
}
