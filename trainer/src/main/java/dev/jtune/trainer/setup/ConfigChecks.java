package dev.jtune.trainer.setup;

import dev.jtune.data.config.ConfigProblems;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.config.TrainerSettings;
import dev.jtune.data.tokenizer.Tokenizer;
import dev.jtune.lora.LoraSettings;
import dev.jtune.model.hf.ModelLocator;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.trainer.train.Lisa;
import dev.jtune.trainer.train.TrainerOptions;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Everything about a training config that can be checked without its data or a training step, checked at once:
 * {@code preprocess} and {@code train} call {@link #check} right after the config loads, before any data work, so
 * that {@code preprocess} refuses what {@code train} would, and a file's problems come together, each at its
 * {@code file:line:column}.
 *
 * <p>Checked: the trainer keys as {@code TrainerOptions} reads them (learning rate, optimizer, scheduler, precision,
 * gradient checkpointing, Adam's hyper-parameters, ranges and exclusive pairs, every FSDP option); the adapter keys
 * ({@code LoraSettings}: adapter/quantization pairs, rank, targets); the keys jtune refuses for training
 * ({@code RunSettings}); the parallelism degrees ({@link ParallelLayout}: Axolotl's validators always, the
 * process count at {@code train}); the vocabulary keys ({@code VocabSettings}); and, when base_model is already on disk
 * (not yet created by {@code base_model_init}), its config.json: an architecture jtune implements, LoRA targets and
 * saved modules the architecture has, {@code unfrozen_parameters} against the parameter names Axolotl's model has,
 * a tokenizer no larger than the embedding unless the config grows it, {@code qat}'s values
 * ({@link QatSettings}) with its group size against the projections' widths, and the {@code llmcompressor} recipe
 * ({@link SparseFinetuning}) with its targets against the model's parameter names.
 *
 * <p>{@code inference} and {@code merge-lora} read a training config for its model, adapter and prompt keys only;
 * they do not train, so these checks are not theirs.
 */
public final class ConfigChecks {
    private ConfigChecks() {}

    /**
     * Runs every check.
     *
     * @param baseDir the directory relative paths (base_model, tokenizer_config) are read against
     * @throws dev.jtune.data.config.ConfigException the one problem found, or one listing them all
     */
    public static void check(TrainConfig config, Path baseDir) {
        check(config, baseDir, java.util.OptionalInt.empty());
    }

    /**
     * Runs every check; with the run's process count ({@code train}) also the parallelism degrees against it
     * ({@link ParallelLayout#resolve}), which {@code preprocess}, run without the launcher, cannot know.
     */
    public static void check(TrainConfig config, Path baseDir, java.util.OptionalInt processes) {
        ConfigProblems problems = new ConfigProblems(config);
        TrainerSettings s = config.trainer();
        problems.run("load_in_8bit", () -> RunSettings.from(config));
        problems.run("deepspeed", () -> RunSettings.refuseUnsupportedTraining(config));
        TrainerOptions.check(s, config.seed(), problems);
        ParallelLayout.check(config, problems);
        if (processes.isPresent()) {
            problems.run(ParallelLayout.keyOf(s), () -> ParallelLayout.of(s).resolve(processes.getAsInt(),
                    fsdpAsked(s)));
        }
        Optional<dev.jtune.trainer.train.UnfrozenParameters> unfrozen = problems.check("unfrozen_parameters",
                () -> dev.jtune.trainer.train.UnfrozenParameters.parse(s.strings("unfrozen_parameters")));
        Lisa.refusals(s).ifPresent(r -> problems.add(r.key(), r.message()));
        dev.jtune.trainer.train.ReLora.refusals(s).ifPresent(r -> problems.add(r.key(), r.message()));
        LoftqConfig.refusal(s).ifPresent(r -> problems.add(r[0], r[1]));
        dev.jtune.trainer.train.Eaft.refusals(s, config.hasEvaluation()).forEach(r -> problems.add(r[0], r[1]));
        DiffusionSettings.problems(config).forEach(p -> problems.add(p.key(), p.message()));
        if (DiffusionSettings.enabled(s) && s.bool("use_eaft").orElse(false)) {
            // Axolotl's DiffusionTrainer.compute_loss replaces the Trainer's, so its compute_loss_func (EAFT) never runs.
            problems.add("use_eaft", "use_eaft: true with the DiffusionPlugin: Axolotl's diffusion trainer computes its"
                    + " own loss and never applies EAFT; drop use_eaft");
        }
        Optional<LoraSettings> lora = problems.check("adapter", () -> LoraSettings.from(s, config.source()))
                .flatMap(l -> l);
        Optional<VocabSettings> vocab = problems.check("added_tokens_overrides", () -> VocabSettings.from(config));
        List<KeyProblem> qatProblems = QatSettings.problems(config);
        qatProblems.forEach(p -> problems.add(p.key(), p.message()));
        Optional<QatSettings> qat = qatProblems.isEmpty() ? QatSettings.from(config) : Optional.empty();
        Fp8Settings.problems(config).forEach(p -> problems.add(p.key(), p.message()));
        List<KeyProblem> sparseProblems = SparseFinetuning.problems(config, baseDir);
        sparseProblems.forEach(p -> problems.add(p.key(), p.message()));
        Optional<SparseFinetuning> sparse = sparseProblems.isEmpty() ? SparseFinetuning.from(config, baseDir)
                : Optional.empty();

        if (s.bool("tokenizer_use_mistral_common").orElse(false)) {
            mistralCommon(config, baseDir, vocab, problems);
        }
        Path modelDir = existing(config.baseModel(), baseDir, "config.json");
        if (modelDir != null) {
            Optional<LlamaConfig> model = problems.check("base_model", () -> architecture(modelDir));
            if (model.isPresent()) {
                String type = model.get().modelType();
                s.string("cls_model_config").ifPresent(cls -> dev.jtune.data.config.ConfigClasses.modelType(cls)
                        .filter(t -> !t.equals(type))
                        .ifPresent(t -> problems.add("cls_model_config", "cls_model_config: " + cls + " is the config"
                                + " class of model_type '" + t + "', but base_model's config.json is '" + type + "';"
                                + " name the class of '" + type + "' or drop the key")));
                problems.run("lisa_n_layers", () -> Lisa.from(s).ifPresent(l -> l.draw(0, 0,
                        model.get().numHiddenLayers())));
                if (DiffusionSettings.enabled(s) && model.get().architecture().attnLogitSoftcapping() > 0) {
                    problems.add("plugins", "the DiffusionPlugin's bidirectional attention with soft-capped attention"
                            + " scores (" + type + ": attn_logit_softcapping) is not implemented; jtune's diffusion"
                            + " objective trains models without it");
                }
            }
            boolean continuing = s.has("lora_model_dir"); // the saved adapter's own config then decides
            // Against the names Axolotl's named_parameters gives this model (the PEFT model's under an adapter).
            if (model.isPresent() && unfrozen.isPresent() && !unfrozen.get().patterns().isEmpty() && !continuing
                    && (lora.isPresent() || !s.has("adapter"))) {
                problems.run("unfrozen_parameters", () -> unfrozen.get().check(model.get(), lora));
            }
            if (model.isPresent() && s.has("adapter") && !continuing) {
                for (String problem : LoraSettings.problemsFor(s, linearModules(model.get()),
                        model.get().tieWordEmbeddings())) {
                    problems.add("lora_target_modules", problem);
                }
            }
            if (model.isPresent() && sparse.isPresent()) {
                sparse.get().problemsFor(model.get()).forEach(p -> problems.add("llmcompressor.recipe", p));
            }
            if (model.isPresent() && qat.isPresent()) {
                QatSettings.groupProblems(qat.get().scheme(), model.get()).forEach(p -> problems.add("qat.group_size", p));
            }
            Path tokenizerDir = existing(config.tokenizerConfig().orElse(config.baseModel()), baseDir,
                    Tokenizer.TOKENIZER_JSON);
            if (model.isPresent() && vocab.isPresent() && tokenizerDir != null) {
                String key = vocab.get().asksGrowth() ? (s.has("lora_modules_to_save") ? "lora_modules_to_save"
                        : "adapter") : config.tokenizerConfig().isPresent() ? "tokenizer_config" : "base_model";
                problems.check(key, () -> vocab.get().plan(tokenizerSize(vocab.get(), tokenizerDir), tokenizerDir,
                        model.get().vocabSize(), modelDir, continuing ? Optional.empty() : lora, config.seed()));
            }
        }
        problems.throwIfAny();
    }

    /** Axolotl's {@code is_fsdp}: {@code fsdp} or {@code fsdp_config} set (an unsupported option is reported apart). */
    public static boolean fsdpAsked(TrainerSettings s) {
        return !s.strings("fsdp").isEmpty() || s.has("fsdp_config");
    }

    /**
     * {@code tokenizer_use_mistral_common: true} as jtune implements it (Axolotl's MistralStrategy): chat datasets, the
     * tokenizer folder's tekken.json, the vocabulary as the file has it.
     */
    private static void mistralCommon(TrainConfig config, Path baseDir, Optional<VocabSettings> vocab,
            ConfigProblems problems) {
        String why = " with tokenizer_use_mistral_common: true";
        for (String section : List.of("datasets", "test_datasets")) {
            var list = section.equals("datasets") ? config.datasets() : config.testDatasets();
            for (int i = 0; i < list.size(); i++) {
                if (!(list.get(i).format() instanceof dev.jtune.data.config.DatasetFormat.Chat)) {
                    problems.add(section + "[" + i + "].type", section + "[" + i + "].type: only chat_template"
                            + " datasets are implemented" + why + " (Axolotl's MistralStrategy); other types would go"
                            + " through mistral-common's raw encode, which jtune does not do");
                }
            }
        }
        if (vocab.isPresent() && !vocab.get().edits().isEmpty()) {
            problems.add("tokenizer_use_mistral_common", "tokenizer_use_mistral_common: true with tokens,"
                    + " special_tokens or added_tokens_overrides: jtune grows tokenizer.json vocabularies, not tekken.json");
        }
        String where = config.tokenizerConfig().orElse(config.baseModel());
        Path folder = existing(where, baseDir, "config.json");
        if (folder == null) {
            folder = existing(where, baseDir, Tokenizer.TOKENIZER_JSON);
        }
        if (folder != null && !dev.jtune.data.tokenizer.Tekken.isIn(folder)) {
            problems.add("tokenizer_use_mistral_common", "tokenizer_use_mistral_common: true: " + folder
                    + " has no tekken.json (mistral-common's Tekken tokenizer file; jtune does not read its SentencePiece"
                    + " tokenizer.model.v* files)");
        }
    }

    /** config.json read as the model loader reads it: an architecture jtune lacks is refused with those it has. */
    private static LlamaConfig architecture(Path modelDir) {
        try {
            return LlamaConfig.load(modelDir);
        } catch (dev.jtune.model.llama.ConfigException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    /** The last path component of each linear layer LoRA can wrap in a model of this config. */
    static List<String> linearModules(LlamaConfig model) {
        List<String> names = new ArrayList<>(model.family().fusedProjections()
                ? List.of("qkv_proj", "o_proj", "gate_up_proj", "down_proj") : LoraSettings.LINEAR_MODULES);
        if (!model.tieWordEmbeddings()) {
            names.add("lm_head");
        }
        return names;
    }

    /**
     * The tokenizer's size after the config's edits; the edited copy is written to a scratch folder (the run writes
     * its own under output_dir later), so that checking writes nothing a run reads.
     */
    private static int tokenizerSize(VocabSettings vocab, Path tokenizerDir) {
        if (vocab.edits().isEmpty()) {
            try (Tokenizer t = Tokenizer.load(tokenizerDir)) {
                return t.vocabSize();
            }
        }
        Path scratch = null;
        try {
            scratch = Files.createTempDirectory("jtune-tokenizer-check");
            try (Tokenizer t = Tokenizer.load(vocab.edits().writeTo(tokenizerDir, scratch.resolve("tokenizer")))) {
                return t.vocabSize();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            delete(scratch);
        }
    }

    private static void delete(Path dir) {
        if (dir == null) return;
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            // a scratch folder left in the temp directory harms nothing
        }
    }

    /** A local folder or a cached Hub id holding {@code file}; null when there is none (not created yet). */
    private static Path existing(String where, Path baseDir, String file) {
        Path local = baseDir.resolve(where);
        if (Files.isRegularFile(local.resolve(file))) {
            return local;
        }
        try {
            Path cached = ModelLocator.resolve(where);
            return Files.isRegularFile(cached.resolve(file)) ? cached : null;
        } catch (RuntimeException e) {
            return null; // base_model_init creates it at train time; train checks it then
        }
    }
}
