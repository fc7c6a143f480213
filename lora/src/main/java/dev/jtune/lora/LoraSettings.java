package dev.jtune.lora;

import dev.jtune.data.config.ConfigException;
import dev.jtune.data.config.Suggest;
import dev.jtune.data.config.TrainerSettings;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * The adapter keys of a training config, checked: what PEFT's {@code LoraConfig} receives from Axolotl
 * ({@code axolotl/loaders/adapter.py}, {@code _build_peft_lora_config}).
 *
 * @param adapter {@code adapter}: lora or qlora (LoRA over an NF4 base)
 * @param r {@code lora_r}: the rank
 * @param alpha {@code lora_alpha}
 * @param dropout {@code lora_dropout}: dropout on the adapter's input while training; default 0.0
 * @param targetModules the modules wrapped, as PEFT's {@code target_modules}: {@code lora_target_modules}, plus
 *     every decoder projection when {@code lora_target_linear} is true; sorted, without duplicates
 * @param useRslora {@code peft_use_rslora}: scale by alpha/√r instead of alpha/r
 * @param modulesToSave {@code lora_modules_to_save}: whole modules trained and saved (embed_tokens, lm_head)
 * @param targetLinear {@code lora_target_linear}: every decoder projection of whatever family the model is (Llama's
 *     seven, Phi-3's fused qkv_proj and gate_up_proj) is a target, as Axolotl's {@code find_all_linear_names}; the
 *     adapter then names the ones the model has ({@link #forModules})
 * @param targetRegex {@code lora_target_modules} given as a string: a Python regular expression that PEFT
 *     ({@code check_target_module_exists}) matches against whole module names with {@code re.fullmatch}, translated
 *     by {@link PyRegex}; then {@code targetModules} is empty
 */
public record LoraSettings(Adapter adapter, int r, int alpha, double dropout, List<String> targetModules,
        boolean useRslora, List<String> modulesToSave, boolean targetLinear, Optional<String> targetRegex) {

    /** Settings with a list of targets. */
    public LoraSettings(Adapter adapter, int r, int alpha, double dropout, List<String> targetModules,
            boolean useRslora, List<String> modulesToSave, boolean targetLinear) {
        this(adapter, r, alpha, dropout, targetModules, useRslora, modulesToSave, targetLinear, Optional.empty());
    }

    /** Settings with an explicit list of targets. */
    public LoraSettings(Adapter adapter, int r, int alpha, double dropout, List<String> targetModules,
            boolean useRslora, List<String> modulesToSave) {
        this(adapter, r, alpha, dropout, targetModules, useRslora, modulesToSave, false);
    }

    /** The adapter kinds. */
    public enum Adapter {
        LORA,
        QLORA;

        /** As written in the config: lora, qlora. */
        public String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /**
     * What {@code lora_target_linear: true} selects in a Llama decoder: every linear layer but the output
     * head, as Axolotl's {@code find_all_linear_names} does.
     */
    public static final List<String> LINEAR_MODULES =
            List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    /** Phi-3's fused projections, which stand for q/k/v and gate/up in that family. */
    public static final List<String> FUSED_MODULES = List.of("qkv_proj", "gate_up_proj");

    /** Module names (last path component) a supported decoder has and LoRA can wrap. */
    public static final List<String> TARGETABLE = concat(concat(LINEAR_MODULES, FUSED_MODULES), List.of("lm_head"));

    /** Modules that {@code lora_modules_to_save} may name. */
    public static final List<String> SAVABLE = List.of("embed_tokens", "lm_head");

    public LoraSettings {
        Objects.requireNonNull(adapter, "adapter");
        if (r <= 0) {
            throw new IllegalArgumentException("lora_r must be positive, got " + r);
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("lora_dropout must be in [0, 1), got " + dropout);
        }
        targetModules = List.copyOf(new TreeSet<>(targetModules));
        targetRegex = targetRegex == null ? Optional.empty() : targetRegex;
        if (targetRegex.isPresent()) {
            if (!targetModules.isEmpty() || targetLinear) {
                throw new IllegalArgumentException("a target_modules regular expression stands alone");
            }
            PyRegex.compile(targetRegex.get()); // refuses what Java would read otherwise than Python
        } else if (targetModules.isEmpty()) {
            throw new IllegalArgumentException("no target modules");
        }
        modulesToSave = List.copyOf(new LinkedHashSet<>(modulesToSave));
    }

    /** PEFT's scaling: {@code alpha / r}, or {@code alpha / sqrt(r)} with rsLoRA. */
    public double scaling() {
        return useRslora ? alpha / Math.sqrt(r) : (double) alpha / r;
    }

    /**
     * Reads the adapter keys.
     *
     * @param source the config file, for messages
     * @return empty when no {@code adapter} is set (full fine-tuning)
     * @throws ConfigException naming the file and the key at fault; with several problems, one listing them all
     */
    public static Optional<LoraSettings> from(TrainerSettings s, Path source) {
        Optional<String> kind = s.string("adapter");
        boolean in4bit = s.bool("load_in_4bit").orElse(false);
        List<String> problems = new ArrayList<>(); // every problem, reported together
        boolean in8bit = s.bool("load_in_8bit").orElse(false);
        if (kind.isEmpty()) {
            for (String key : List.of("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules",
                    "lora_target_linear", "peft_use_rslora", "lora_modules_to_save", "lora_model_dir")) {
                if (s.has(key)) {
                    problems.add(key + " is set but adapter is not (set adapter: lora or adapter: qlora,"
                            + " or remove " + key + " for full fine-tuning)");
                }
            }
            if (in4bit || in8bit) {
                // Axolotl: "load_in_8bit and load_in_4bit are not supported without setting an adapter for training."
                problems.add((in4bit ? "load_in_4bit: true needs adapter: qlora" : "load_in_8bit: true needs"
                        + " adapter: lora") + "; full fine-tuning of a quantized model is not supported (as in Axolotl)");
            }
            throwIfAny(source, problems);
            return Optional.empty();
        }
        Adapter adapter = kind.get().equals("qlora") ? Adapter.QLORA : Adapter.LORA;
        if (adapter == Adapter.QLORA && in8bit) {
            problems.add("load_in_8bit: true with adapter: qlora: Axolotl refuses it (\"Can't load qlora in"
                    + " 8bit\"); use adapter: lora for an 8-bit (LLM.int8) base, or load_in_4bit: true for QLoRA");
        }
        if (adapter == Adapter.QLORA && !in4bit) {
            problems.add("adapter: qlora requires load_in_4bit: true (as in Axolotl)");
        }
        if (s.bool("lora_fan_in_fan_out").orElse(false)) {
            problems.add("lora_fan_in_fan_out: true is for Conv1D (GPT-2 style) weights; Llama's linear"
                    + " layers need false");
        }
        long r = s.integer("lora_r").orElse(-1);
        if (s.integer("lora_r").isEmpty()) {
            problems.add("adapter: " + adapter.label() + " needs lora_r (the adapter rank, e.g. lora_r: 16)");
        } else if (r <= 0 || r > Integer.MAX_VALUE) {
            problems.add("lora_r must be a positive integer, got " + r);
        }
        long alpha = s.integer("lora_alpha").orElse(-1);
        if (s.integer("lora_alpha").isEmpty()) {
            problems.add("adapter: " + adapter.label() + " needs lora_alpha (the scaling numerator, e.g. lora_alpha: 32)");
        } else if (alpha <= 0 || alpha > Integer.MAX_VALUE) {
            problems.add("lora_alpha must be a positive integer, got " + alpha);
        }
        double dropout = s.number("lora_dropout").orElse(0.0);
        if (!(dropout >= 0 && dropout < 1)) {
            problems.add("lora_dropout must be in [0, 1), got " + dropout);
        }
        Object given = s.value("lora_target_modules").orElse(List.of());
        if (given instanceof String regex) {
            // Axolotl turns a string into a one-name list when lora_target_linear is set: the regex then names no
            // module (PEFT matches list entries as name suffixes).
            if (s.bool("lora_target_linear").orElse(false)) {
                throw error(source, "lora_target_modules is a regular expression and lora_target_linear is true:"
                        + " Axolotl then lists the string as a module name, which matches nothing; give one of them");
            }
            try {
                PyRegex.compile(regex);
            } catch (IllegalArgumentException e) {
                throw error(source, "lora_target_modules: " + e.getMessage());
            }
            List<String> save = s.strings("lora_modules_to_save");
            for (String m : save) {
                if (!SAVABLE.contains(m)) {
                    throw error(source, "lora_modules_to_save: '" + m + "' is not supported"
                            + Suggest.didYouMean(m, SAVABLE) + " (expected names among " + SAVABLE + ")");
                }
            }
            return Optional.of(new LoraSettings(adapter, (int) r, (int) alpha, dropout, List.of(),
                    s.bool("peft_use_rslora").orElse(false), save, false, Optional.of(regex)));
        }
        List<String> targets = new ArrayList<>(s.strings("lora_target_modules"));
        for (int i = 0; i < targets.size(); i++) {
            String t = targets.get(i);
            String last = t.substring(t.lastIndexOf('.') + 1);
            if (!TARGETABLE.contains(last)) {
                problems.add("lora_target_modules" + (targets.size() > 1 ? "[" + i + "]" : "") + ": '" + t
                        + "' is not a linear layer of a supported model" + Suggest.didYouMean(last, TARGETABLE)
                        + " (expected names among " + TARGETABLE + ")");
            }
        }
        if (s.bool("lora_target_linear").orElse(false)) {
            targets.addAll(LINEAR_MODULES);
        }
        if (targets.isEmpty()) {
            problems.add("adapter: " + adapter.label() + " needs lora_target_modules (e.g. [q_proj, v_proj])"
                    + " or lora_target_linear: true");
        }
        List<String> save = s.strings("lora_modules_to_save");
        for (int i = 0; i < save.size(); i++) {
            String m = save.get(i);
            String at = "lora_modules_to_save" + (save.size() > 1 ? "[" + i + "]" : "");
            if (!SAVABLE.contains(m)) {
                problems.add(at + ": '" + m + "' is not supported" + Suggest.didYouMean(m, SAVABLE)
                        + " (expected names among " + SAVABLE + ")");
            } else if (targets.contains(m)) {
                problems.add(at + ": '" + m + "' is also a LoRA target; choose one");
            }
        }
        throwIfAny(source, problems);
        return Optional.of(new LoraSettings(adapter, (int) r, (int) alpha, dropout, targets,
                s.bool("peft_use_rslora").orElse(false), save, s.bool("lora_target_linear").orElse(false)));
    }

    /** @throws ConfigException naming the one problem, or listing them all */
    private static void throwIfAny(Path source, List<String> problems) {
        if (problems.size() == 1) throw error(source, problems.get(0));
        if (problems.size() > 1) {
            throw new ConfigException(source, problems.stream().map(p -> error(source, p)).toList());
        }
    }

    /**
     * What {@link LoraModel#attach} would refuse for a model, found from its config.json before any weight loads: a
     * listed target the architecture lacks (Llama's q_proj in Phi-3, whose q/k/v are one qkv_proj; lm_head when it is
     * the tied embedding), a module to save the model lacks or shares (tied embeddings). Each problem begins with the
     * key path at fault ({@code lora_target_modules[1]: ...}).
     *
     * @param linear the last path component of every linear layer LoRA can wrap in the model (lm_head included
     *     unless the embeddings are tied)
     * @param tiedEmbeddings config.json's {@code tie_word_embeddings}
     */
    public static List<String> problemsFor(TrainerSettings s, java.util.Collection<String> linear,
            boolean tiedEmbeddings) {
        List<String> problems = new ArrayList<>();
        List<String> targets = s.strings("lora_target_modules");
        for (int i = 0; i < targets.size(); i++) {
            String t = targets.get(i);
            String last = t.substring(t.lastIndexOf('.') + 1);
            if (!linear.contains(last)) {
                problems.add("lora_target_modules[" + i + "]: '" + t + "' matches no linear layer of this model"
                        + (tiedEmbeddings && last.equals("lm_head") ? " (lm_head is the tied embedding here)" : "")
                        + "; it has " + new TreeSet<>(linear));
            }
        }
        List<String> save = s.strings("lora_modules_to_save");
        for (int i = 0; i < save.size(); i++) {
            if (tiedEmbeddings) {
                problems.add("lora_modules_to_save[" + i + "]: '" + save.get(i) + "' is not supported for a model"
                        + " with tie_word_embeddings (the head shares the embedding matrix)");
            }
        }
        return problems;
    }

    /** Whether module {@code name} (e.g. {@code model.layers.0.self_attn.q_proj}) is a target, as PEFT matches. */
    public boolean targets(String name) {
        if (targetRegex.isPresent()) {
            // PEFT never wraps a modules_to_save module; and re.fullmatch is Matcher.matches.
            return !saves(name) && PyRegex.compile(targetRegex.get()).matcher(name).matches();
        }
        return matchesAny(name, targetModules) || (targetLinear && isDecoderProjection(name));
    }

    /** A decoder layer's projection of any supported family (not the head). */
    static boolean isDecoderProjection(String name) {
        String last = name.substring(name.lastIndexOf('.') + 1);
        return name.contains("layers.") && (LINEAR_MODULES.contains(last) || FUSED_MODULES.contains(last));
    }

    /**
     * Whether target {@code t} may match nothing: one that {@code lora_target_linear} implied for another family's
     * layout (Llama's q_proj in Phi-3, whose q/k/v are one qkv_proj).
     */
    boolean optionalTarget(String t) {
        return targetLinear && (LINEAR_MODULES.contains(t) || FUSED_MODULES.contains(t));
    }

    /**
     * These settings as PEFT's adapter_config records them for a model whose wrapped modules are {@code wrapped}:
     * with {@code lora_target_linear}, target_modules become the projection names the model has (Axolotl writes the
     * names it found), so that PEFT, which requires every listed name to exist, loads the adapter.
     */
    public LoraSettings forModules(java.util.Collection<String> wrapped) {
        if (!targetLinear) {
            return this;
        }
        Set<String> names = new TreeSet<>();
        for (String t : targetModules) {
            if (!optionalTarget(t)) {
                names.add(t);
            }
        }
        for (String w : wrapped) {
            names.add(w.substring(w.lastIndexOf('.') + 1));
        }
        return new LoraSettings(adapter, r, alpha, dropout, List.copyOf(names), useRslora, modulesToSave, false);
    }

    /** PEFT's {@code target_modules} as adapter_config.json records it: the regex string, or the list of names. */
    public Object peftTargetModules() {
        return targetRegex.<Object>map(x -> x).orElse(targetModules);
    }

    /** Whether {@code name} is listed in modules_to_save (matched as PEFT does, by whole trailing path). */
    public boolean saves(String name) {
        return matchesAny(name, modulesToSave);
    }

    /** PEFT's {@code check_target_module_exists} for a list: an exact match or a match on a whole dotted suffix. */
    static boolean matchesAny(String name, List<String> patterns) {
        for (String t : patterns) {
            if (name.equals(t) || name.endsWith("." + t)) {
                return true;
            }
        }
        return false;
    }

    private static ConfigException error(Path source, String problem) {
        return new ConfigException(source, 0, 0, problem);
    }

    private static List<String> concat(List<String> a, List<String> b) {
        Set<String> all = new LinkedHashSet<>(a);
        all.addAll(b);
        return List.copyOf(all);
    }
}
