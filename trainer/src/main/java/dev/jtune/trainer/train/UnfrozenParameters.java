package dev.jtune.trainer.train;

import ai.djl.ndarray.NDArray;
import dev.jtune.lora.PyRegex;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Axolotl's {@code unfrozen_parameters} as its {@code freeze_layers_except} (utils/freeze.py) reads them: every
 * parameter of the model Axolotl trains is frozen, then those whose name a pattern matches are unfrozen; a pattern
 * ending in {@code [start:end]} (or {@code [i]}, {@code [:end]}, {@code [start:]}) unfreezes only those rows (first
 * dimension) of what it matches: the other rows' gradients are zeroed (Axolotl's gradient hook), before clipping,
 * so weight decay still reaches them as it does in torch's AdamW.
 *
 * <p>A pattern is a Python regular expression in which every {@code .} not followed by {@code +} is a literal dot
 * ({@code re.sub(r"\.(?!\+)", "\\.", p)}), matched with {@code re.match}: from the start of the name, not to its
 * end. The names are those of {@code model.named_parameters()} in Axolotl: for full fine-tuning the transformers
 * names ({@code model.layers.0.mlp.up_proj.weight}, {@code lm_head.weight}; a tied head appears once, as the
 * embedding); under an adapter Axolotl freezes after PEFT wrapped the model, so the names are the PEFT model's
 * ({@code base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight},
 * {@code base_model.model.lm_head.modules_to_save.default.weight}, and the frozen base's
 * {@code ...q_proj.base_layer.weight}). A pattern written for the plain model ({@code ^model.language_model.*},
 * {@code ^lm_head.*}, as Axolotl's Gemma 3 QLoRA examples have) then matches nothing, and Axolotl freezes every
 * parameter, LoRA's included ("All parameters are frozen. Model will not be trained."): jtune refuses that run
 * rather than train nothing. A pattern that unfreezes a base weight under an adapter is refused too (jtune keeps the
 * base frozen: NF4 or int8 weights have no gradient).
 *
 * @param patterns the config's patterns, in order
 */
public record UnfrozenParameters(List<Layer> patterns) {

    /** One pattern: its name regex (after the dot rewrite) and its row range, if any ({@code end} -1: to the end). */
    public record Layer(String raw, Pattern regex, boolean ranged, long start, long end) {
        boolean matches(String name) {
            return regex.matcher(name).lookingAt(); // re.match: anchored at the start only
        }
    }

    /** The rows of one parameter whose gradients are zeroed: [start, end) pairs. */
    public record FrozenRows(List<long[]> ranges) {}

    private static final Pattern RANGE = Pattern.compile("^(.+)\\[([0-9]*)(?::([0-9]*))?\\]$");

    public UnfrozenParameters {
        patterns = List.copyOf(patterns);
    }

    /**
     * Parses the config's patterns as {@code LayerNamePattern} does.
     *
     * @throws IllegalArgumentException naming the key and the pattern at fault
     */
    public static UnfrozenParameters parse(List<String> raw) {
        List<Layer> layers = new ArrayList<>();
        for (String p : raw) {
            layers.add(layer(p));
        }
        return new UnfrozenParameters(layers);
    }

    private static Layer layer(String pattern) {
        Matcher m = RANGE.matcher(pattern);
        String name = pattern;
        boolean ranged = false;
        long start = 0;
        long end = -1;
        if (m.matches()) {
            name = m.group(1);
            ranged = true;
            String s = m.group(2);
            String e = m.group(3);
            if (e == null && !s.isEmpty()) {
                start = Long.parseLong(s);
                end = start + 1; // [i]: one row
            } else {
                start = s.isEmpty() ? 0 : Long.parseLong(s);
                end = e == null || e.isEmpty() ? -1 : Long.parseLong(e);
                if (end >= 0 && start >= end) {
                    throw new IllegalArgumentException("unfrozen_parameters: '" + pattern + "': the end of a range must"
                            + " be greater than its start");
                }
            }
        }
        Pattern regex;
        try {
            regex = PyRegex.compile(name.replaceAll("\\.(?!\\+)", "\\\\."));
        } catch (IllegalArgumentException ex) {
            throw new IllegalArgumentException("unfrozen_parameters: '" + pattern + "': " + ex.getMessage(), ex);
        }
        return new Layer(pattern, regex, ranged, start, end);
    }

    /**
     * Which of {@code candidates} (name as Axolotl sees it → first-dimension size) stay trainable, and the rows
     * frozen in each: the names that no pattern matches are absent.
     *
     * @throws IllegalArgumentException for a range outside a matched parameter (Axolotl's "invalid unfreeze range")
     */
    public Map<String, FrozenRows> select(Map<String, Long> candidates) {
        Map<String, FrozenRows> kept = new LinkedHashMap<>();
        for (var c : candidates.entrySet()) {
            boolean matched = false;
            List<long[]> unfrozen = new ArrayList<>();
            for (Layer l : patterns) {
                if (!l.matches(c.getKey())) continue;
                matched = true;
                if (l.ranged()) unfrozen.add(new long[] {l.start(), l.end()});
            }
            if (!matched) continue;
            kept.put(c.getKey(), new FrozenRows(invert(merge(unfrozen, c.getValue(), c.getKey()), c.getValue())));
        }
        return kept;
    }

    /** {@code _merge_ranges}: open ends closed at {@code size}, checked, sorted, overlapping ones joined. */
    static List<long[]> merge(List<long[]> ranges, long size, String name) {
        List<long[]> closed = new ArrayList<>();
        for (long[] r : ranges) {
            long end = r[1] < 0 ? size : r[1];
            if (r[0] < 0 || (end > size && size > 0) || r[0] >= end) {
                throw new IllegalArgumentException("unfrozen_parameters: invalid unfreeze range [" + r[0] + ":"
                        + (r[1] < 0 ? "" : r[1]) + "] for " + name + ", which has " + size + " rows");
            }
            closed.add(new long[] {r[0], end});
        }
        closed.sort(Comparator.<long[]>comparingLong(r -> r[0]).thenComparingLong(r -> r[1]));
        List<long[]> merged = new ArrayList<>();
        for (long[] r : closed) {
            if (!merged.isEmpty() && r[0] <= merged.getLast()[1]) {
                merged.getLast()[1] = Math.max(merged.getLast()[1], r[1]);
            } else {
                merged.add(r.clone());
            }
        }
        return merged;
    }

    /** {@code _invert_ranges} over merged ranges; none given (no range pattern matched): nothing frozen. */
    static List<long[]> invert(List<long[]> merged, long size) {
        List<long[]> frozen = new ArrayList<>();
        if (merged.isEmpty()) return frozen; // Axolotl registers no hook then: the whole tensor trains
        long current = 0;
        for (long[] r : merged) {
            if (r[0] > current) frozen.add(new long[] {current, r[0]});
            current = Math.max(current, r[1]);
        }
        if (current < size) frozen.add(new long[] {current, size});
        return frozen;
    }

    /**
     * {@code trainable} with only the matched parameters trainable.
     *
     * @param axolotlName the name Axolotl's {@code named_parameters} gives a trainable tensor of {@code trainable}
     * @param frozenBase the names (as Axolotl's) of the weights that stay frozen here whatever the patterns say
     *     (the base under an adapter); empty for full fine-tuning
     * @param adapter whether an adapter is trained (for the messages)
     * @throws IllegalArgumentException when a pattern unfreezes a base weight, or nothing is left to train
     */
    public TrainableModel apply(TrainableModel trainable, UnaryOperator<String> axolotlName, List<String> frozenBase,
            boolean adapter) {
        Map<String, String> byAxolotlName = new LinkedHashMap<>();
        Map<String, Long> sizes = new LinkedHashMap<>();
        for (var e : trainable.parameters().entrySet()) {
            String name = axolotlName.apply(e.getKey());
            byAxolotlName.put(name, e.getKey());
            sizes.put(name, e.getValue().getShape().get(0));
        }
        Map<String, FrozenRows> kept = choose(sizes, frozenBase, adapter);
        Map<String, NDArray> params = new LinkedHashMap<>();
        Map<String, List<long[]>> rows = new LinkedHashMap<>();
        kept.forEach((name, frozen) -> {
            String own = byAxolotlName.get(name);
            params.put(own, trainable.parameters().get(own));
            if (!frozen.ranges().isEmpty()) rows.put(own, frozen.ranges());
        });
        return new PartlyFrozen(trainable, java.util.Collections.unmodifiableMap(params), Map.copyOf(rows));
    }

    /**
     * Checks the patterns when the config loads, against the names Axolotl's {@code named_parameters} gives the model
     * that config.json describes (under an adapter: the PEFT model's, from the LoRA targets and saved modules), so
     * that {@code preprocess} refuses what {@link #apply} would refuse at {@code train}.
     *
     * @throws IllegalArgumentException as {@link #apply}
     */
    public void check(dev.jtune.model.llama.LlamaConfig model, java.util.Optional<dev.jtune.lora.LoraSettings> lora) {
        String prefix = dev.jtune.lora.PeftAdapter.PREFIX;
        Map<String, Long> trainable = new LinkedHashMap<>();
        List<String> base = new ArrayList<>();
        for (var t : model.tensors()) {
            String name = t.name();
            long rows = t.shape()[0];
            if (lora.isEmpty()) {
                trainable.put(name, rows);
                continue;
            }
            int dot = name.lastIndexOf('.');
            String module = name.substring(0, dot);
            String leaf = name.substring(dot + 1);
            var l = lora.get();
            boolean linear = t.role() == dev.jtune.model.llama.TensorSpec.Role.LINEAR
                    || t.role() == dev.jtune.model.llama.TensorSpec.Role.BIAS;
            if ((linear || t.role() == dev.jtune.model.llama.TensorSpec.Role.EMBEDDING) && l.saves(module)) {
                if (leaf.equals("weight")) trainable.put(prefix + module + ".modules_to_save.default.weight", rows);
                base.add(prefix + module + ".original_module." + leaf);
            } else if (linear && l.targets(module)) {
                if (leaf.equals("weight")) {
                    trainable.put(prefix + module + ".lora_A.default.weight", (long) l.r());
                    trainable.put(prefix + module + ".lora_B.default.weight", rows);
                }
                base.add(prefix + module + ".base_layer." + leaf);
            } else {
                base.add(prefix + name);
            }
        }
        choose(trainable, base, lora.isPresent());
    }

    /** The kept parameters among {@code sizes}, after refusing a base weight unfrozen or nothing left to train. */
    private Map<String, FrozenRows> choose(Map<String, Long> sizes, List<String> frozenBase, boolean adapter) {
        for (String base : frozenBase) {
            for (Layer l : patterns) {
                if (l.matches(base)) {
                    throw new IllegalArgumentException("unfrozen_parameters: '" + l.raw() + "' unfreezes the base weight "
                            + base + "; under an adapter jtune keeps the base frozen (train it without adapter:, or"
                            + " name only the adapter's tensors, e.g. '.+lora_')");
                }
            }
        }
        Map<String, FrozenRows> kept = select(sizes);
        if (kept.isEmpty()) {
            String example = sizes.keySet().stream().findFirst().orElse("");
            throw new IllegalArgumentException("unfrozen_parameters: " + patterns.stream().map(Layer::raw).toList()
                    + " match no trainable parameter" + (adapter ? "; Axolotl matches them against the PEFT model's"
                    + " names (" + example + ", ...), so it would freeze every parameter, LoRA's included, warn 'All"
                    + " parameters are frozen. Model will not be trained.' and save the untrained adapter; jtune does"
                    + " not run a training that trains nothing: drop unfrozen_parameters (the adapter trains, the base"
                    + " stays frozen) or name the adapter's tensors" : "; the model's parameters are named like "
                    + example + "; jtune does not run a training that trains nothing"));
        }
        return kept;
    }

    /**
     * {@code trainable} with the tensors that {@code frozen} names left out of training (no gradient, no optimizer
     * state, no weight decay: a parameter whose {@code grad} stays None in torch), saved as before.
     */
    public static TrainableModel freeze(TrainableModel trainable, java.util.function.Predicate<String> frozen) {
        Map<String, NDArray> params = new LinkedHashMap<>();
        trainable.parameters().forEach((name, t) -> {
            if (!frozen.test(name)) {
                params.put(name, t);
            }
        });
        return new PartlyFrozen(trainable, java.util.Collections.unmodifiableMap(params), Map.of());
    }

    /** A trainable model of which only some tensors (or rows) train; it saves everything as the whole one does. */
    record PartlyFrozen(TrainableModel whole, Map<String, NDArray> parameters, Map<String, List<long[]>> frozenRows)
            implements TrainableModel {
        @Override
        public dev.jtune.model.llama.LlamaModel model() {
            return whole.model();
        }

        @Override
        public void saveWeights(Path dir) throws java.io.IOException {
            whole.saveWeights(dir);
        }

        @Override
        public boolean decays(String name) {
            return whole.decays(name);
        }

        @Override
        public void setTraining(boolean training) {
            whole.setTraining(training);
        }

        @Override
        public void stepBegins(long globalStep) {
            whole.stepBegins(globalStep);
        }

        @Override
        public void stepEnds(long globalStep) {
            whole.stepEnds(globalStep);
        }
    }
}
