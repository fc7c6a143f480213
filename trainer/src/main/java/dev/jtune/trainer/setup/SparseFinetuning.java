package dev.jtune.trainer.setup;

import dev.jtune.data.config.Suggest;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.config.TrainerSettings;
import dev.jtune.lora.PyRegex;
import dev.jtune.model.llama.LlamaConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.error.YAMLException;

/**
 * Axolotl's LLMCompressor plugin ({@code plugins: [axolotl.integrations.llm_compressor.LLMCompressorPlugin]} with an
 * {@code llmcompressor:} block): sparse fine-tuning of an already sparsified model, its zeros kept through training.
 *
 * <p>Read as Axolotl 067b021 ({@code src/axolotl/integrations/llm_compressor/}: {@code args.py}
 * {@code CompressionArgs}: {@code recipe}, {@code save_compressed} default false) hands it to llm-compressor (its pin:
 * {@code llmcompressor>=0.10.0}; followed at tag 0.10.0, commit bdb65473ba21ca6aaaf726ffe66c695f5608c953): the recipe
 * is a mapping, or a path to a YAML/JSON file, or YAML text ({@code Recipe.create_instance}), whose
 * {@code <name>_stage:} mappings hold {@code <group>_modifiers:} mappings of modifier type to arguments
 * ({@code Recipe.from_dict}). jtune runs {@code ConstantPruningModifier} ({@code modifiers/pruning/constant/base.py});
 * any other modifier is refused by name.
 *
 * <p>ConstantPruningModifier: its {@code targets} ({@code re:}-prefixed Python regexes, {@code re.match}: anchored at
 * the start only, or exact names) select parameters by their {@code named_parameters} names
 * ({@code utils/pytorch/module.py} {@code match_layers_params}); at the start ({@code start: 0}: when the session
 * initializes, Axolotl's {@code on_train_begin}) each selected weight gets the mask {@code |w| > 1e-8}
 * ({@code _epsilon = 10e-9}, compared in the weight's dtype), and after every optimizer step
 * ({@code OPTIM_POST_STEP}, Axolotl's {@code on_step_end}) the layer's weight is multiplied by it. Gradients are not
 * masked ({@code use_hooks} is off), so AdamW's moments of masked entries still move; only the weights stay zero.
 *
 * @param targets the union of every ConstantPruningModifier's targets, as written
 * @param saveCompressed {@code save_compressed}
 * @param modifiers how many ConstantPruningModifiers the recipe holds
 */
public record SparseFinetuning(List<String> targets, boolean saveCompressed, int modifiers) {
    /** The plugin's dotted name, as Axolotl's configs write it. */
    public static final String PLUGIN = "axolotl.integrations.llm_compressor.LLMCompressorPlugin";
    /** {@code ConstantPruningModifier._epsilon}: weights with {@code |w|} above it are kept. */
    public static final double EPSILON = 10e-9;

    static final List<String> KEYS = List.of("recipe", "save_compressed");
    /** Modifier's own fields (pydantic, {@code extra="forbid"}) and ConstantPruningModifier's {@code targets}. */
    static final List<String> MODIFIER_FIELDS = List.of("targets", "start", "end", "update", "index", "group");
    private static final Set<String> SPECIAL_TARGETS = Set.of("__ALL__", "__ALL_PRUNABLE__", "__ALL_QUANTIZABLE__");

    public SparseFinetuning {
        targets = List.copyOf(targets);
    }

    /**
     * The settings, or empty when {@code llmcompressor} is absent.
     *
     * @param baseDir where a recipe path is read from (llm-compressor's {@code os.path.isfile}: the working directory)
     * @throws IllegalArgumentException listing every problem
     */
    public static Optional<SparseFinetuning> from(TrainConfig config, Path baseDir) {
        List<KeyProblem> problems = new ArrayList<>();
        return KeyProblem.orThrow(config, problems, read(config, baseDir, problems));
    }

    /** Every problem of the {@code llmcompressor} block and the plugin's list entry, for ConfigChecks. */
    public static List<KeyProblem> problems(TrainConfig config, Path baseDir) {
        List<KeyProblem> problems = new ArrayList<>();
        read(config, baseDir, problems);
        return problems;
    }

    private static boolean pluginListed(TrainerSettings s) {
        Object v = s.value("plugins").orElse(null);
        List<?> names = v instanceof List<?> l ? l : v == null ? List.of() : List.of(v);
        return names.stream().anyMatch(n -> String.valueOf(n).contains(".llm_compressor."));
    }

    private static Optional<SparseFinetuning> read(TrainConfig config, Path baseDir, List<KeyProblem> problems) {
        TrainerSettings s = config.trainer();
        boolean plugin = pluginListed(s);
        Map<String, Object> block = s.mapping("llmcompressor");
        if (block.isEmpty()) {
            if (plugin) {
                // LLMCompressorArgs.llmcompressor has no default: Axolotl's validation stops there.
                problems.add(new KeyProblem("plugins", "plugins: " + PLUGIN + " needs an llmcompressor: block (its"
                        + " recipe, e.g. a ConstantPruningModifier with targets and start: 0); Axolotl's"
                        + " LLMCompressorArgs requires it"));
            }
            return Optional.empty();
        }
        int before = problems.size();
        if (!plugin) {
            // Without the plugin Axolotl registers no callback: the recipe would not run, only the save would.
            problems.add(new KeyProblem("llmcompressor", "llmcompressor: is read by Axolotl's LLMCompressorPlugin only;"
                    + " without it in plugins: the recipe never runs (the zeros would fill in). Add plugins: ["
                    + PLUGIN + "] or drop the block"));
        }
        for (String key : block.keySet()) {
            if (!KEYS.contains(key)) {
                problems.add(new KeyProblem("llmcompressor." + key, "llmcompressor." + key + " is not a key of Axolotl's"
                        + " CompressionArgs; its keys: " + String.join(", ", KEYS) + Suggest.didYouMean(key, KEYS)));
            }
        }
        Object saveValue = block.get("save_compressed");
        boolean save = false;
        if (saveValue != null && !(saveValue instanceof Boolean)) {
            problems.add(new KeyProblem("llmcompressor.save_compressed", "llmcompressor.save_compressed must be true or"
                    + " false, got " + saveValue));
        } else {
            save = Boolean.TRUE.equals(saveValue);
        }
        if (s.has("adapter")) {
            problems.add(new KeyProblem("llmcompressor", "llmcompressor with adapter: " + s.string("adapter").orElse("")
                    + " is refused: under PEFT the base weights are frozen (their zeros stay without a mask) and"
                    + " llm-compressor's targets match the PEFT model's names (...q_proj.base_layer.weight), so"
                    + " targets like 're:.*q_proj.weight' find nothing and llm-compressor stops (\"Could not find"
                    + " targets\"); the adapter's delta is dense, so merging it fills the zeros. Sparse fine-tuning"
                    + " here is full fine-tuning: drop the adapter"));
        }
        Object recipe = block.get("recipe");
        Map<?, ?> recipeMap = recipe == null ? null : recipeMapping(recipe, baseDir, problems);
        if (recipe == null) {
            problems.add(new KeyProblem("llmcompressor.recipe", "llmcompressor.recipe is required (CompressionArgs):"
                    + " a mapping of <name>_stage: {<group>_modifiers: {ConstantPruningModifier: {targets: [...],"
                    + " start: 0}}}, or the path of a recipe file"));
        }
        Set<String> targets = new LinkedHashSet<>();
        int modifiers = 0;
        if (recipeMap != null) {
            for (var stage : recipeMap.entrySet()) {
                String stageKey = String.valueOf(stage.getKey());
                String at = "llmcompressor.recipe." + stageKey;
                if (stageKey.equals("args")) {
                    continue; // Recipe.from_dict keeps them as the recipe's args; 0.10 substitutes nothing with them
                }
                if (!stageKey.endsWith("_stage") || !(stage.getValue() instanceof Map<?, ?> groups)) {
                    problems.add(new KeyProblem(at, at + ": llm-compressor's Recipe.from_dict reads only <name>_stage:"
                            + " mappings at the top of a recipe and would skip '" + stageKey + "'; write e.g."
                            + " finetuning_stage: {finetuning_modifiers: {ConstantPruningModifier: {...}}}"));
                    continue;
                }
                for (var group : groups.entrySet()) {
                    String groupKey = String.valueOf(group.getKey());
                    String gat = at + "." + groupKey;
                    if (!groupKey.endsWith("_modifiers") || !(group.getValue() instanceof Map<?, ?> mods)) {
                        problems.add(new KeyProblem(gat, gat + ": a stage holds <group>_modifiers: mappings only"
                                + " (Recipe.from_dict skips anything else); write e.g. finetuning_modifiers:"
                                + " {ConstantPruningModifier: {...}}"));
                        continue;
                    }
                    for (var mod : mods.entrySet()) {
                        String type = String.valueOf(mod.getKey());
                        String mat = gat + "." + type;
                        if (!type.equals("ConstantPruningModifier")) {
                            problems.add(new KeyProblem(mat, mat + ": the modifier " + type + " is not implemented;"
                                    + " jtune runs ConstantPruningModifier (keeps a sparsified model's zeros through"
                                    + " fine-tuning), not llm-compressor's pruning, quantization or distillation"
                                    + " modifiers (run them with llm-compressor itself)"));
                            continue;
                        }
                        modifiers++;
                        modifier(mod.getValue(), mat, targets, problems);
                    }
                }
            }
            if (modifiers == 0 && problems.size() == before) {
                problems.add(new KeyProblem("llmcompressor.recipe", "llmcompressor.recipe holds no modifier; jtune"
                        + " runs a ConstantPruningModifier under <name>_stage: {<group>_modifiers: {...}}"));
            }
        }
        if (problems.size() > before) {
            return Optional.empty();
        }
        return Optional.of(new SparseFinetuning(List.copyOf(targets), save, modifiers));
    }

    /** The recipe as a mapping: given inline, or read from a file, or parsed from YAML text (create_instance). */
    private static Map<?, ?> recipeMapping(Object recipe, Path baseDir, List<KeyProblem> problems) {
        if (recipe instanceof Map<?, ?> m) {
            return m;
        }
        if (!(recipe instanceof String text)) {
            problems.add(new KeyProblem("llmcompressor.recipe", "llmcompressor.recipe must be a mapping, a recipe"
                    + " file's path or YAML text, got " + recipe));
            return null;
        }
        String what = "llmcompressor.recipe";
        Path file = baseDir.resolve(text);
        String yaml = text;
        boolean isFile = !text.contains("\n") && Files.isRegularFile(file);
        if (isFile) {
            if (text.toLowerCase(java.util.Locale.ROOT).endsWith(".md")) {
                problems.add(new KeyProblem(what, what + ": " + file + ": recipes inside Markdown files are not read;"
                        + " give a .yaml or .json file"));
                return null;
            }
            try {
                yaml = Files.readString(file);
            } catch (IOException e) {
                problems.add(new KeyProblem(what, what + ": cannot read " + file + ": " + e.getMessage()));
                return null;
            }
            what = file.toString();
        }
        Object parsed;
        try {
            // JSON is YAML; one document, as llm-compressor's yaml.safe_load.
            parsed = new Yaml(new LoaderOptions()).load(yaml);
        } catch (YAMLException e) {
            problems.add(new KeyProblem("llmcompressor.recipe", "llmcompressor.recipe: " + what + " is not a YAML or"
                    + " JSON recipe: " + e.getMessage().replace('\n', ' ')));
            return null;
        }
        if (!(parsed instanceof Map<?, ?> m)) {
            problems.add(new KeyProblem("llmcompressor.recipe", "llmcompressor.recipe: '" + text + "' is "
                    + (isFile ? "a file whose content is not a mapping" : "neither a file (looked for " + file
                    + ") nor a recipe mapping in YAML")));
            return null;
        }
        return m;
    }

    private static void modifier(Object args, String at, Set<String> targets, List<KeyProblem> problems) {
        if (!(args instanceof Map<?, ?> a)) {
            problems.add(new KeyProblem(at, at + " must be a mapping of its arguments (targets, start), got " + args));
            return;
        }
        for (Object k : a.keySet()) {
            if (!MODIFIER_FIELDS.contains(String.valueOf(k))) {
                problems.add(new KeyProblem(at + "." + k, at + "." + k + " is not a field of ConstantPruningModifier"
                        + " (llm-compressor's pydantic model forbids it); its fields: " + String.join(", ",
                        MODIFIER_FIELDS) + Suggest.didYouMean(String.valueOf(k), MODIFIER_FIELDS)));
            }
        }
        Object t = a.get("targets");
        List<?> list = t instanceof List<?> l ? l : t instanceof String str ? List.of(str) : null;
        if (list == null || list.isEmpty()) {
            problems.add(new KeyProblem(at + ".targets", at + ".targets is required: parameter names or 're:' regexes,"
                    + " e.g. ['re:.*q_proj.weight', 're:.*down_proj.weight']"));
        } else {
            for (Object o : list) {
                String target = String.valueOf(o);
                if (SPECIAL_TARGETS.contains(target)) {
                    problems.add(new KeyProblem(at + ".targets", at + ".targets: " + target + " is not implemented;"
                            + " name the weights with 're:' regexes (e.g. 're:.*proj.weight')"));
                } else if (target.startsWith("re:")) {
                    try {
                        PyRegex.compile(target.substring(3));
                        targets.add(target);
                    } catch (IllegalArgumentException e) {
                        problems.add(new KeyProblem(at + ".targets", at + ".targets: '" + target + "': "
                                + e.getMessage()));
                    }
                } else {
                    targets.add(target);
                }
            }
        }
        Object start = a.get("start");
        if (start == null) {
            // Modifier.should_start: start None never starts, so the masks stay all ones.
            problems.add(new KeyProblem(at + ".start", at + ".start is not set: llm-compressor then never starts the"
                    + " modifier and trains without masks (the zeros fill in); write start: 0"));
        } else if (!(start instanceof Number n)) {
            problems.add(new KeyProblem(at + ".start", at + ".start must be a number, got " + start));
        } else if (n.doubleValue() > 0) {
            problems.add(new KeyProblem(at + ".start", at + ".start: " + start + " is not implemented: jtune computes"
                    + " the masks when training begins (start: 0), not part way through"));
        }
        if (a.get("end") != null) {
            problems.add(new KeyProblem(at + ".end", at + ".end: " + a.get("end") + " is not implemented: jtune keeps"
                    + " the masks to the last step (leave end out)"));
        }
    }

    /** Whether {@code target} selects the parameter {@code name} (llm-compressor's match_targets). */
    public static boolean matches(String target, String name) {
        if (target.startsWith("re:")) {
            return PyRegex.compile(target.substring(3)).matcher(name).lookingAt();
        }
        return name.equals(target);
    }

    /** The parameters among {@code names} that some target selects, in {@code names}' order. */
    public List<String> select(java.util.Collection<String> names) {
        List<Pattern> regexes = new ArrayList<>();
        List<String> exact = new ArrayList<>();
        for (String t : targets) {
            if (t.startsWith("re:")) regexes.add(PyRegex.compile(t.substring(3)));
            else exact.add(t);
        }
        List<String> out = new ArrayList<>();
        for (String name : names) {
            if (exact.contains(name) || regexes.stream().anyMatch(r -> r.matcher(name).lookingAt())) out.add(name);
        }
        return out;
    }

    /**
     * The targets against the parameter names of {@code model} (transformers' {@code named_parameters} of the
     * causal LM): each must select one at least (llm-compressor: "Could not find targets"), and only weights, as the
     * mask multiplies the layer's {@code weight}.
     */
    public List<String> problemsFor(LlamaConfig model) {
        List<String> names = model.tensors().stream().map(t -> t.name()).toList();
        List<String> out = new ArrayList<>();
        for (String t : targets) {
            List<String> hit = names.stream().filter(n -> matches(t, n)).toList();
            if (hit.isEmpty()) {
                out.add("llmcompressor.recipe: the target '" + t + "' selects no parameter of base_model (names like "
                        + names.get(names.size() > 1 ? 1 : 0) + "); llm-compressor stops there (\"Could not find"
                        + " targets\")");
            }
            hit.stream().filter(n -> !n.endsWith(".weight")).findFirst().ifPresent(n -> out.add("llmcompressor.recipe: the"
                    + " target '" + t + "' selects " + n + ", not a weight; llm-compressor registers the mask on the"
                    + " layer and multiplies the layer's weight by it, which fails for other parameters"));
        }
        return out;
    }

    /** The line the trainer prints, with what the masks hold. */
    public String describe(int tensors, long zeros, long values) {
        String line = String.format(java.util.Locale.ROOT, "llmcompressor: ConstantPruningModifier (llm-compressor"
                + " 0.10's) masks %d weights: %,d of their %,d entries (%.1f%%) have |w| <= 1e-8 and are held at zero"
                + " after every optimizer step; gradients and AdamW state are not masked, as there", tensors, zeros,
                values, values == 0 ? 0.0 : 100.0 * zeros / values);
        if (zeros == 0) {
            line += ". The base has no zeros there, so this trains as plain full fine-tuning: the modifier keeps the"
                    + " sparsity of an already sparsified model, it does not prune";
        }
        return line;
    }

    /** The line about {@code save_compressed}. */
    public Optional<String> saveNote() {
        if (!saveCompressed) {
            return Optional.empty();
        }
        return Optional.of("llmcompressor.save_compressed: the model is written dense (model.safetensors, its zeros"
                + " in place), not in compressed-tensors' sparse format: transformers loads either to the same dense"
                + " weights (the compressed one only with the compressed-tensors package installed); for vLLM's"
                + " sparse kernels compress the output with llm-compressor");
    }
}
