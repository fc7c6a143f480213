package dev.jtune.trainer.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.dataset.Batch;
import dev.jtune.data.dataset.Batches;
import dev.jtune.data.dataset.DatasetReader;
import dev.jtune.data.dataset.PreparedDataset;
import dev.jtune.data.tokenizer.Tokenizer;
import dev.jtune.lora.LoraMerge;
import dev.jtune.lora.LoraModel;
import dev.jtune.lora.LoraSettings;
import dev.jtune.lora.PeftAdapter;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.hf.ModelLocator;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.trainer.dist.DistEnv;
import dev.jtune.trainer.dist.ProcessGroup;
import dev.jtune.trainer.dist.ProcessGroups;
import dev.jtune.trainer.dist.RankZero;
import dev.jtune.trainer.dist.ShardedWeights;
import dev.jtune.trainer.train.BatchPlan;
import dev.jtune.trainer.train.ExactMatch;
import dev.jtune.trainer.train.FullFineTuning;
import dev.jtune.trainer.train.LoraTrainable;
import dev.jtune.trainer.train.TrainableModel;
import dev.jtune.trainer.train.Trainer;
import dev.jtune.trainer.train.TrainerOptions;
import dev.jtune.trainer.train.TrainingResult;
import dev.jtune.trainer.setup.AdapterSource;
import dev.jtune.trainer.setup.AssembledModel;
import dev.jtune.trainer.setup.ModelSpec;
import dev.jtune.trainer.setup.RunSettings;
import dev.jtune.trainer.setup.VocabGrowth;
import dev.jtune.trainer.setup.VocabSettings;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * {@code train CONFIG.yml} (also {@code ./launch.sh CONFIG.yml}): the whole recipe. Prepare the data (or reuse
 * the prepared copy), load the base (NF4 with {@code load_in_4bit}, LLM.int8 with {@code load_in_8bit}), put LoRA
 * on it (or train every weight), train, and leave the adapter in PEFT format (or a model directory) in {@code output_dir}.
 */
final class TrainCommand {
    static final String USAGE = """
            usage: ./launch.sh train CONFIG.yml      (or simply: ./launch.sh CONFIG.yml)

            Fine-tunes base_model on the config's datasets. adapter: lora | qlora trains a LoRA adapter (qlora over
            an NF4 base, load_in_4bit: true; lora over an LLM.int8 base with load_in_8bit: true); without adapter
            every weight trains (fp32). Progress (step, loss, lr,
            grad norm, tokens/s, memory, ETA) goes to the console and to output_dir/metrics.jsonl; checkpoints to
            output_dir/checkpoint-N (resume_from_checkpoint: auto | PATH); SIGTERM saves one and exits 0.
            At the end output_dir holds adapter_config.json + adapter_model.safetensors (PEFT), or a Hugging
            Face model directory for full fine-tuning.

            jtune's own keys: base_model_init: tiny creates base_model with init-model's tiny preset when it does not
            exist; do_causal_lm_eval: true with eval_causal_lm_metrics: [exact_match] asks the model every held-out
            sample before and after training (at most eval_max_new_tokens new tokens each, else the reference's
            length + 4) and reports the share answered exactly; merge_lora_on_finish: true
            also writes output_dir/merged (merge-lora).
            """;

    /** Held-out samples asked by the exact-match evaluation. */
    static final int EXACT_MATCH_LIMIT = 200;

    private TrainCommand() {}

    static int run(String[] argv) throws Exception {
        Args args = Args.parse("train", argv, Set.of(), Set.of());
        if (args.positional().size() != 1) {
            throw new Args.UsageException("train: expected one CONFIG.yml, got " + args.positional());
        }
        return train(Path.of(args.positional().get(0)), System.out);
    }

    static int train(Path configFile, PrintStream out) throws Exception {
        if (!Files.isRegularFile(configFile)) {
            throw new NoSuchFileException(configFile + ": config file not found");
        }
        try (ProcessGroup group = ProcessGroups.forEnvironment(DistEnv.fromEnvironment())) {
            return train(configFile, group.rank() == 0 ? out
                    : new PrintStream(java.io.OutputStream.nullOutputStream()), group);
        }
    }

    /**
     * One rank's share of a run: every rank loads the data and the model and trains its shard; rank 0 prepares
     * the data and the base model first (the others wait, then reuse them), prints, and writes the outputs.
     */
    static int train(Path configFile, PrintStream out, ProcessGroup group) throws Exception {
        long started = System.nanoTime();
        TrainConfig config = TrainConfig.load(configFile);
        config.notes().forEach(out::println); // once: out is silent on ranks other than 0
        // Everything checkable without data or a step, before any data work; every problem of the file at once.
        dev.jtune.trainer.setup.ConfigChecks.check(config, Path.of("").toAbsolutePath(),
                java.util.OptionalInt.of(group.worldSize()));
        TrainerOptions options = resumeAsLauncherSays(TrainerOptions.from(config), System.getenv());
        var layout = dev.jtune.trainer.setup.ParallelLayout.of(config.trainer());
        if (layout.declared()) { // checked above: the processes are the layout's data-parallel ranks
            out.println(layout.note(layout.resolve(group.worldSize(),
                    dev.jtune.trainer.setup.ConfigChecks.fsdpAsked(config.trainer())), options.microBatchSize(),
                    options.gradientAccumulationSteps()));
        }
        Optional<LoraSettings> loraSettings = LoraSettings.from(config.trainer(), config.source());
        RunSettings run = RunSettings.from(config);
        Optional<dev.jtune.trainer.setup.DeepSpeed> deepSpeed = dev.jtune.trainer.setup.DeepSpeed.from(config, options,
                loraSettings.isPresent(), group.worldSize());
        if (deepSpeed.isPresent()) {
            out.println(deepSpeed.get().note());
            options = deepSpeed.get().apply(options);
        }
        // FSDP, DeepSpeed or fp16 without an adapter: fp32 master weights computing in bf16/fp16 (mixed precision).
        boolean masterWeights = !options.fp16InPlace() && RunSettings.fp32MasterWeights(loraSettings.isPresent(),
                options.precision(), options.fsdp(), deepSpeed.isPresent());
        if (masterWeights) {
            out.println(RunSettings.masterWeightsNote(options.precision(), options.fsdp(), deepSpeed.isPresent()));
        } else {
            RunSettings.precisionNote(config, loraSettings.isPresent(), options.precision()).ifPresent(out::println);
            RunSettings.fp16EpsNote(options, loraSettings.isPresent()).ifPresent(out::println);
        }
        VocabSettings configVocab = VocabSettings.from(config);
        Optional<dev.jtune.trainer.setup.DiffusionSettings> diffusion =
                dev.jtune.trainer.setup.DiffusionSettings.from(config);
        Optional<dev.jtune.trainer.setup.QatSettings> qat = dev.jtune.trainer.setup.QatSettings.from(config);
        Optional<dev.jtune.trainer.setup.Fp8Settings> fp8 = dev.jtune.trainer.setup.Fp8Settings.from(config);
        if (fp8.isPresent() && fp8.get().allGather() && masterWeights) {
            // torchao's fsdp_pre_all_gather casts the fp32 master shard itself to e4m3 (FSDP2 skips its param_dtype
            // cast for such tensors), where jtune's projections get the bf16/fp16 compute copy.
            throw new IllegalArgumentException(config.source() + ": fp8_enable_fsdp_float8_all_gather: true with "
                    + options.precision().label() + " compute over fp32 master weights is not supported: torchao's"
                    + " float8 all-gather casts the fp32 weights to e4m3, jtune the " + options.precision().label()
                    + " copy; set it false or train in fp32 (no bf16/fp16)");
        }
        Optional<dev.jtune.trainer.setup.SparseFinetuning> sparse = dev.jtune.trainer.setup.SparseFinetuning.from(config,
                Path.of("").toAbsolutePath());
        if (sparse.isPresent() && options.fsdp() && group.worldSize() > 1) {
            throw new IllegalArgumentException(config.source() + ": llmcompressor with fsdp over " + group.worldSize()
                    + " processes is not supported: jtune masks whole weights after each step, and FSDP holds them"
                    + " sharded; train the sparse model data parallel (without fsdp) or on one process");
        }
        boolean nf4 = run.loadIn4bit();
        // Before any data or model work: FSDP would shard the frozen base, which jtune does for dense and NF4 only.
        if (run.loadIn8bit() && options.fsdp() && group.worldSize() > 1 && loraSettings.isPresent()) {
            throw new IllegalArgumentException(config.source() + ": load_in_8bit: true with fsdp is not supported: jtune"
                    + " shards dense and NF4 bases only; use load_in_4bit: true with adapter: qlora under FSDP, or train"
                    + " the 8-bit base without fsdp (data parallel)");
        }
        Path baseDir = Path.of("").toAbsolutePath();
        Path outputDir = config.outputPath().toAbsolutePath();
        // Rank 0 creates the base model and prepares the data first; the others then find them (or stop with it).
        boolean[] preparedNow = {false};
        RankZero.run(group, "create the base model or prepare the data", () -> {
            Path dir = baseModel(config, run, out);
            Path sourceTok = config.tokenizerConfig().map(ModelLocator::resolve).orElse(dir);
            VocabSettings runVocab = dev.jtune.trainer.setup.DiffusionSettings.vocab(config, configVocab, sourceTok);
            Path tokDir = runVocab.writeTokenizer(sourceTok, outputDir);
            try (Tokenizer tokenizer = Tokenizer.load(tokDir)) {
                // Refused before any data work: a tokenizer larger than the model without the keys that grow it.
                runVocab.plan(tokenizer.vocabSize(), tokDir, dev.jtune.model.llama.LlamaConfig.load(dir).vocabSize(), dir,
                        run.loraModelDir().isEmpty() ? loraSettings : Optional.empty(), config.seed());
            }
            try (Tokenizer tokenizer = Tokenizer.load(tokDir);
                    PreparedDataset data = PreparedDataset.prepareOrLoad(config, tokDir,
                            DatasetReader.source(config, tokenizer, baseDir), baseDir)) {
                preparedNow[0] = !data.reused(); // prepared (or found) here once; every rank reloads it below
            }
        });
        Path modelDir = baseModel(config, run, out);
        Path sourceTokenizerDir = config.tokenizerConfig().map(ModelLocator::resolve).orElse(modelDir);
        // The diffusion objective's mask token, when Axolotl would add it, is one more token of the run's tokenizer.
        VocabSettings vocab = dev.jtune.trainer.setup.DiffusionSettings.vocab(config, configVocab, sourceTokenizerDir);
        Path tokenizerDir = vocab.tokenizerDir(sourceTokenizerDir, outputDir);

        if (loraSettings.isEmpty() && nf4) {
            throw new IllegalArgumentException(config.source() + ": full fine-tuning (no adapter) trains dense weights,"
                    + " not a 4-bit base; set adapter: qlora");
        }
        // FSDP shards the frozen base of an adapter (16-bit, or NF4 in its packed form); full fine-tuning keeps
        // whole (trainable) weights.
        boolean shardBase = options.fsdp() && group.worldSize() > 1 && loraSettings.isPresent();
        AdapterSource adapter = loraSettings.isEmpty() ? AdapterSource.NONE
                : run.loraModelDir().<AdapterSource>map(AdapterSource.Saved::new)
                        .orElse(new AdapterSource.Fresh(loraSettings.get(), config.seed()));
        ModelSpec baseSpec = new ModelSpec(modelDir, options.precision(), run.base(), adapter, shardBase ? group : null);
        if (masterWeights) {
            baseSpec = baseSpec.withFp32Weights();
        }
        if (config.trainer().bool("reinit_weights").orElse(false)) {
            // Axolotl's _load_model_from_config: the checkpoint's config, transformers' fresh initialisation.
            baseSpec = baseSpec.withReinit(config.seed());
            out.printf("reinit_weights: the weights of %s are not read: drawn as transformers' _init_weights draws a"
                    + " fresh model's (linears and embedding N(0, %s²), padding row 0, norms 1 (Gemma's 0: they scale by 1 + weight), biases 0), seed %d%n",
                    modelDir, dev.jtune.trainer.setup.VocabSettings.initializerRange(modelDir), config.seed());
        }
        try (Tokenizer tokenizer = Tokenizer.load(tokenizerDir);
                PreparedDataset data = PreparedDataset.prepareOrLoad(config, tokenizerDir,
                        DatasetReader.source(config, tokenizer, baseDir), baseDir);
                NDManager manager = Torch.newManager()) {
            // Rank 0 prepared it a moment ago when it was missing: "reused" would tell a first run it was not.
            out.printf("data: %s (%s)%n", data.directory(), preparedNow[0] || !data.reused() ? "prepared now" : "reused");
            out.print(data.report().table());
            if (data.train().isEmpty()) {
                throw new IllegalArgumentException(config.source() + ": no training samples left — "
                        + data.report().emptyReason() + " (see the report above)");
            }
            Optional<VocabGrowth> growth = vocab.plan(tokenizer.vocabSize(), tokenizerDir,
                    dev.jtune.model.llama.LlamaConfig.load(modelDir).vocabSize(), modelDir,
                    adapter instanceof AdapterSource.Fresh ? loraSettings : Optional.empty(), config.seed());
            ModelSpec spec = baseSpec.withVocab(growth.orElse(null));
            growth.ifPresent(g -> out.printf("vocabulary: %d tokens, embedding and head grown to %d rows (%s)%n",
                    tokenizer.vocabSize(), g.rows(), g.meanResizing()
                            ? "new rows from the old rows' mean and covariance" : "new rows N(0, "
                            + g.initializerRange() + "²)"));
            if (diffusion.isPresent()) {
                int modelRows = dev.jtune.model.llama.LlamaConfig.load(modelDir).vocabSize();
                if (diffusion.get().resolve(sourceTokenizerDir) instanceof dev.jtune.trainer.setup.DiffusionSettings
                        .MaskToken.Add add && modelRows > tokenizer.vocabSize()) {
                    // Axolotl's resolve_mask_token_id then calls resize_token_embeddings(len(tokenizer)), which cuts rows.
                    throw new IllegalArgumentException(config.source() + ": diffusion: the mask token " + add.token()
                            + " is added, and Axolotl then resizes the embedding to the tokenizer's " + tokenizer.vocabSize()
                            + " tokens, cutting the model's " + modelRows + " rows; jtune does not cut embeddings: set"
                            + " diffusion.mask_token_id to an id below the tokenizer's base vocabulary");
                }
                options = options.toBuilder().diffusion(diffusion.get().objective(sourceTokenizerDir, tokenizer,
                        config.seed())).build();
                out.printf("diffusion: mask token id %d (%s); masking skips token ids %s; no samples are generated"
                        + " during training (generate_samples and generation_* are Axolotl's report only)%n",
                        options.diffusion().maskTokenId(), tokenizer.idToToken(options.diffusion().maskTokenId()),
                        new java.util.TreeSet<>(options.diffusion().specialIds()));
            }
            int padId = Batches.padId(tokenizer);
            int padTo = config.padToSequenceLen() ? config.sequenceLen() : 0;
            // curriculum_sampling: Axolotl's SequentialSampler, the prepared order every epoch.
            boolean curriculum = config.trainer().bool("curriculum_sampling").orElse(false);
            // The streamed path (pretraining_dataset, streaming: true) trains its rows in the order they were packed.
            Batches trainBatches = new Batches(data.train(), options.microBatchSize(), config.seed(),
                    !curriculum && config.streaming().isEmpty(), padId, padTo);
            Batches evalBatches = data.eval().isEmpty() ? null
                    : new Batches(data.eval(), options.microBatchSize(), config.seed(), false, padId, padTo);
            long loadStart = System.nanoTime();
            try (AssembledModel assembled = AssembledModel.load(spec, manager)) {
                double loadSeconds = (System.nanoTime() - loadStart) / 1e9;
                LlamaModel model = assembled.model();
                LoraModel lora = assembled.lora().orElse(null);
                ShardedWeights baseShards = assembled.baseShards().orElse(null);
                TrainableModel whole;
                var loftq = dev.jtune.trainer.setup.LoftqConfig.from(config.trainer());
                if (lora != null && loftq.isPresent() && adapter instanceof AdapterSource.Fresh) {
                    int n = dev.jtune.lora.Loftq.apply(lora, loftq.get().bits(),
                            dev.jtune.trainer.setup.LoftqConfig.ITERATIONS);
                    out.printf("LoftQ: %d modules initialised as PEFT's loftq_init (%d-bit NF4 base, lora_A/lora_B from"
                            + " the SVD of the residual, loftq_iter %d)%n", n, loftq.get().bits(),
                            dev.jtune.trainer.setup.LoftqConfig.ITERATIONS);
                }
                if (lora != null) {
                    whole = new LoraTrainable(model, lora, config.baseModel());
                    out.printf("model: %s (%s), %s base%s, %s r=%d alpha=%d on %d layers (%,d trainable parameters)%s%n",
                            modelDir, model.config().family().architecture(), options.precision().label(), baseLabel(run.base()), lora.settings().adapter().label(),
                            lora.settings().r(), lora.settings().alpha(), lora.adapters().size(),
                            count(lora.trainableParameters()), adapter instanceof AdapterSource.Saved saved
                                    ? ", continuing the adapter in " + saved.dir() : "");
                } else {
                    if (fp8.isPresent()) {
                        int n = dev.jtune.quant.Fp8.attach(model, new dev.jtune.quant.Fp8()).size();
                        out.println(fp8.get().describe(n));
                    }
                    whole = qat.isPresent() ? new FullFineTuning(model, qatSwitch(qat.get(), model, out))
                            : new FullFineTuning(model);
                    if (qat.isPresent() && qat.get().scheme().weight() == dev.jtune.quant.QatScheme.Weight.NVFP4) {
                        whole = nvfp4FrozenBiases(whole, model, out);
                    }
                    out.printf("model: %s (%s), full fine-tuning in %s (%,d parameters)%n", modelDir,
                            model.config().family().architecture(), masterWeights
                                    ? options.precision().label() + " compute, fp32 master weights and AdamW state"
                                    : options.precision() == dev.jtune.model.engine.Dtype.BF16
                                    ? "bf16: weights and gradients in bf16, " + bf16State(options.adam().variant())
                                    + ", as transformers' Trainer over a bf16-loaded model"
                                    : options.fp16InPlace() ? "fp16 (float16: true): weights and gradients in fp16, "
                                    + lowPrecisionState(options.adam().variant(), "fp16") + ", no AMP and no loss"
                                    + " scaling, as transformers' Trainer over an fp16-loaded model" : "fp32",
                            count(whole.parameters()));
                }
                TrainableModel unfrozen = config.trainer().has("unfrozen_parameters")
                        ? unfreeze(config, whole, lora, model) : whole;
                if (unfrozen != whole) {
                    out.printf("unfrozen_parameters: %,d of the trainable parameters train (the rest frozen)%n",
                            count(unfrozen.parameters()));
                }
                // llmcompressor's ConstantPruningModifier: masks computed when training begins (after a resume).
                TrainableModel trainable = sparse.isEmpty() ? unfrozen : new dev.jtune.trainer.train.ConstantPruning(
                        unfrozen, sparse.get().select(unfrozen.parameters().keySet()), manager,
                        (tensors, zeros, values) -> out.println(sparse.get().describe(tensors, zeros, values)));
                out.printf(Locale.ROOT, "model loaded in %.1f s%n", loadSeconds);
                String allocator = dev.jtune.model.engine.Torch.nativeAllocator();
                String mallocConf = System.getenv("MALLOC_CONF"); // tools/jemalloc.sh's setting, or the user's
                out.println("native memory: " + allocator + (allocator.equals("jemalloc")
                        ? (mallocConf == null || mallocConf.isBlank() ? "" : " (MALLOC_CONF=" + mallocConf + ")")
                        : " (install jemalloc, package libjemalloc2, and launch.sh uses it: steps up to 2x faster;"
                                + " README \"Native memory\")"));
                RunSettings.architectureNotes(config, model.config()).forEach(out::println);
                boolean exactMatch = run.exactMatchEval();
                List<Integer> stops = tokenizer.eosIds();
                List<ExactMatch.Probe> probes = exactMatch
                        ? ExactMatch.probes(data.eval(), stops, EXACT_MATCH_LIMIT) : List.of();
                ExactMatch before = null;
                if (!probes.isEmpty()) {
                    trainable.setTraining(false);
                    before = ExactMatch.evaluate(model, manager, tokenizer, probes, stops, run.evalMaxNewTokens());
                    out.printf(Locale.ROOT, "exact match before training: %d/%d = %.1f%%%n", before.correct(),
                            before.total(), 100 * before.accuracy());
                }

                TrainingResult result = Trainer.run(options, trainable, trainPlan(config, options, data.train(),
                                trainBatches, padId, padTo, out),
                        evalBatches == null ? null : plan(evalBatches), outputDir, out, group, baseShards);
                if (result.interrupted()) {
                    out.printf("stopped by SIGTERM at step %d; checkpoint %s%n", result.globalStep(),
                            result.lastCheckpoint().map(Path::toString).orElse("(none)"));
                    return 0;
                }
                if (qat.isPresent()) {
                    // Axolotl's save_trained_model: convert_qat_model swaps the fake-quantized linears back to plain
                    // ones holding the trained weights, which save_pretrained writes unquantized.
                    dev.jtune.quant.Qat.detach(model);
                    out.println("qat: fake quantization removed (torchao's convert step); the model is saved with its"
                            + " trained weights unquantized. As Axolotl says: quantize the model fine-tuned with QAT"
                            + " with the same scheme you trained with.");
                }
                // The trained tensors are whole on every rank again (Trainer.run gathers what FSDP sharded).
                // ReLoRA's result is the merged full model the trainer wrote (Axolotl saves no adapter then).
                boolean relora = options.restarts() != null && options.restarts().relora();
                sparse.flatMap(dev.jtune.trainer.setup.SparseFinetuning::saveNote).ifPresent(out::println);
                RankZero.run(group, "export the trained weights", () -> export(relora ? null : trainable,
                        relora ? null : lora, modelDir, tokenizerDir, outputDir, vocab));
                ExactMatch after = null;
                if (!probes.isEmpty()) {
                    trainable.setTraining(false);
                    after = ExactMatch.evaluate(model, manager, tokenizer, probes, stops, run.evalMaxNewTokens());
                    for (String[] ex : after.examples()) {
                        out.printf("  %s -> expected \"%s\", answered \"%s\"%n", ex[0].replace("\n", "\\n"), ex[1], ex[2]);
                    }
                }
                if (baseShards != null) {
                    baseShards.releaseAll(); // the exact-match generation gathered every layer
                }
                Path merged = lora != null && !relora && run.mergeLoraOnFinish()
                        ? outputDir.resolve("merged") : null;
                // The outputs are complete when every rank returns.
                RankZero.run(group, "finish writing the outputs", () -> {
                    if (merged != null) {
                        LoraMerge.merge(modelDir, PeftAdapter.load(outputDir), merged, outputDir);
                    }
                });
                summary(out, result, before, after, outputDir, lora != null && !relora, merged, started);
                return 0;
            }
        }
    }

    /**
     * Attaches {@code qat}'s fake quantization to every projection of {@code model} (Axolotl's prepare_model_for_qat)
     * and returns its {@code QATCallback.on_step_begin}: with {@code fake_quant_after_n_steps: N}, off when step 0
     * begins and on again when step N begins (a run resumed past step 0 and before N keeps it on, as there).
     */
    static java.util.function.LongConsumer qatSwitch(dev.jtune.trainer.setup.QatSettings qat, LlamaModel model,
            PrintStream out) {
        var fq = new dev.jtune.quant.Qat(qat.scheme());
        int n = dev.jtune.quant.Qat.attach(model, fq);
        out.println(qat.describe() + " (" + n + " projections)");
        if (qat.afterSteps().isEmpty()) {
            return step -> {};
        }
        long after = qat.afterSteps().getAsLong();
        return step -> {
            if (step == 0) {
                fq.setEnabled(false);
            } else if (step == after) {
                fq.setEnabled(true);
                out.println("qat: fake quantization enabled at step " + step + " (fake_quant_after_n_steps)");
            }
        };
    }

    /**
     * torchao's NVFP4FakeQuantizedLinear passes the projection's bias through its autograd function, whose backward
     * returns no gradient for it: under NVFP4 QAT the biases of fake-quantized projections (Qwen2's q/k/v) keep their
     * loaded values. They are left out of training here, as there.
     */
    static TrainableModel nvfp4FrozenBiases(TrainableModel whole, LlamaModel model, PrintStream out) {
        Set<String> projections = model.linears().keySet();
        java.util.function.Predicate<String> bias = name -> name.endsWith(".bias")
                && projections.contains(name.substring(0, name.length() - ".bias".length()));
        long n = whole.parameters().keySet().stream().filter(bias).count();
        if (n == 0) {
            return whole;
        }
        out.println("qat: " + n + " projection biases stay as loaded: torchao's NVFP4 autograd function gives the bias"
                + " no gradient");
        return dev.jtune.trainer.train.UnfrozenParameters.freeze(whole, bias);
    }

    /**
     * A worker the launcher restarted after a failure has {@code JTUNE_RESUME=auto}: it continues from the newest
     * checkpoint in output_dir (if any) unless the config names its own {@code resume_from_checkpoint}.
     */
    static TrainerOptions resumeAsLauncherSays(TrainerOptions options, Map<String, String> env) {
        String resume = env.get("JTUNE_RESUME");
        if (resume == null || resume.isBlank() || options.resumeFromCheckpoint().isPresent()) {
            return options;
        }
        return options.toBuilder().resumeFromCheckpoint(resume.strip()).build();
    }

    /**
     * Applies {@code unfrozen_parameters} as Axolotl does, to the names its {@code named_parameters} gives: the
     * model's own for full fine-tuning, the PEFT model's under an adapter (LoRA tensors {@code ...lora_A.default.weight},
     * saved copies {@code ...modules_to_save.default.weight}, the frozen base {@code ...base_layer.weight} or
     * {@code base_model.model.<name>}).
     */
    static TrainableModel unfreeze(TrainConfig config, TrainableModel trainable, LoraModel lora, LlamaModel model) {
        var patterns = dev.jtune.trainer.train.UnfrozenParameters.parse(config.trainer().strings("unfrozen_parameters"));
        try {
            if (lora == null) {
                return patterns.apply(trainable, n -> n, List.of(), false);
            }
            String prefix = PeftAdapter.PREFIX;
            Set<String> saved = new java.util.HashSet<>();
            for (String k : trainable.parameters().keySet()) {
                if (!k.endsWith(".lora_A.weight") && !k.endsWith(".lora_B.weight")) {
                    saved.add(k.substring(prefix.length(), k.length() - ".weight".length()));
                }
            }
            List<String> base = new java.util.ArrayList<>();
            for (var t : model.config().tensors()) {
                String name = t.name();
                int dot = name.lastIndexOf('.');
                String module = name.substring(0, dot);
                String leaf = name.substring(dot + 1);
                base.add(lora.adapters().containsKey(module) ? prefix + module + ".base_layer." + leaf
                        : saved.contains(module) ? prefix + module + ".original_module." + leaf : prefix + name);
            }
            return patterns.apply(trainable, k -> k.endsWith(".lora_A.weight") || k.endsWith(".lora_B.weight")
                    ? k.substring(0, k.length() - ".weight".length()) + ".default.weight"
                    : k.substring(0, k.length() - ".weight".length()) + ".modules_to_save.default.weight", base, true);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(config.source() + ": " + e.getMessage(), e);
        }
    }

    /** The base model folder; created with init-model's preset when {@code base_model_init} says so. */
    private static Path baseModel(TrainConfig config, RunSettings run, PrintStream out) throws IOException {
        Optional<String> preset = run.baseModelInit();
        Path local = Path.of(config.baseModel());
        if (preset.isPresent() && !Files.exists(local.resolve("config.json"))) {
            out.printf("base model %s is absent: creating it (init-model --preset %s)%n", local, preset.get());
            InitModelCommand.initModel(local, preset.get(), null, config.seed(), true, out);
        }
        return ModelLocator.resolve(config.baseModel());
    }

    /**
     * The training order: the seeded shuffle, or with {@code group_by_length: true} transformers'
     * {@code LengthGroupedSampler} order ({@link dev.jtune.trainer.train.LengthGrouped}) — which Axolotl only uses
     * without sample packing (its multipack sampler then draws the packed rows at random), as here.
     */
    static BatchPlan trainPlan(TrainConfig config, TrainerOptions options, List<dev.jtune.data.dataset.Row> rows,
            Batches shuffled, int padId, int padTo, PrintStream out) {
        if (!config.trainer().bool("group_by_length").orElse(false)) {
            return plan(shuffled);
        }
        if (config.trainer().bool("curriculum_sampling").orElse(false)) {
            // Axolotl's _get_train_sampler picks the sequential sampler before transformers' length grouping.
            out.println("info: group_by_length: true has no effect with curriculum_sampling: true, as in Axolotl (the"
                    + " sequential order wins)");
            return plan(shuffled);
        }
        if (config.samplePacking()) {
            out.println("info: group_by_length: true has no effect with sample_packing: true, as in Axolotl (its"
                    + " multipack sampler draws packed rows at random)");
            return plan(shuffled);
        }
        out.printf("group_by_length: rows in length-grouped megabatches of up to 50 x %d (micro_batch_size x"
                + " gradient_accumulation_steps), longest first%n", options.microBatchSize()
                * options.gradientAccumulationSteps());
        return new dev.jtune.trainer.train.LengthGrouped(rows, options.microBatchSize(),
                options.microBatchSize() * options.gradientAccumulationSteps(), config.seed(), padId, padTo);
    }

    private static BatchPlan plan(Batches batches) {
        return new BatchPlan() {
            @Override
            public int batchesPerEpoch() {
                return batches.size();
            }

            @Override
            public Batch batch(int epoch, int index) {
                return batches.get(epoch, index);
            }
        };
    }

    /**
     * The result in {@code outputDir}: the PEFT adapter, or for full fine-tuning a model directory with the
     * tokenizer files beside the weights. Written into a temp folder first, then moved in file by file.
     */
    private static void export(TrainableModel trainable, LoraModel lora, Path modelDir, Path tokenizerDir,
            Path outputDir, VocabSettings vocab) throws IOException {
        Path tmp = Files.createTempDirectory(outputDir, ".export-");
        try {
            if (trainable != null) {
                trainable.saveWeights(tmp); // null: the weights are already in outputDir (ReLoRA's merged model)
            }
            vocab.copyTokenizer(tokenizerDir, tmp);
            if (lora == null) {
                for (String name : List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                        "generation_config.json", "tokenizer.model", "chat_template.jinja", "tekken.json")) {
                    Path from = (name.equals("generation_config.json") ? modelDir : tokenizerDir).resolve(name);
                    if (Files.isRegularFile(from)) Files.copy(from, tmp.resolve(name), StandardCopyOption.REPLACE_EXISTING);
                }
            }
            try (var files = Files.list(tmp)) {
                for (Path f : files.toList()) {
                    Files.move(f, outputDir.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING,
                            StandardCopyOption.ATOMIC_MOVE);
                }
            }
        } finally {
            try (var left = Files.list(tmp)) {
                for (Path f : left.toList()) Files.deleteIfExists(f);
            }
            Files.deleteIfExists(tmp);
        }
    }

    private static void summary(PrintStream out, TrainingResult result, ExactMatch before, ExactMatch after,
            Path outputDir, boolean adapter, Path merged, long started) {
        out.println();
        out.printf(Locale.ROOT, "done: %d steps in %.0f s%s%n", result.globalStep(), (System.nanoTime() - started) / 1e9,
                result.skippedSteps() > 0 ? " (" + result.skippedSteps() + " skipped for fp16 overflow)" : "");
        if (!result.losses().isEmpty()) {
            out.printf(Locale.ROOT, "train loss: %.4f at the first step, %.4f at the last%n", result.losses().get(0),
                    result.losses().get(result.losses().size() - 1));
        }
        result.evalLoss().ifPresent(l -> out.printf(Locale.ROOT, "held-out loss: %s%.4f after training (perplexity %.2f)%n",
                result.initialEvalLoss().isPresent()
                        ? String.format(Locale.ROOT, "%.4f before, ", result.initialEvalLoss().getAsDouble()) : "",
                l, Math.exp(l)));
        if (before != null && after != null) {
            out.printf(Locale.ROOT, "exact match on held-out samples: %.1f%% before, %.1f%% after (%d/%d)%n",
                    100 * before.accuracy(), 100 * after.accuracy(), after.correct(), after.total());
        }
        out.printf("%s: %s%n", adapter ? "adapter (PEFT)" : "model", outputDir);
        if (merged != null) {
            out.printf("merged model: %s%n", merged);
        }
    }

    private static long count(Map<String, NDArray> params) {
        return params.values().stream().mapToLong(a -> a.getShape().size()).sum();
    }

    /** How the startup line names the frozen base. */
    private static String baseLabel(dev.jtune.trainer.setup.ModelSpec.Base base) {
        return switch (base) {
            case DENSE -> "";
            case NF4 -> " in NF4";
            case INT8 -> " in LLM.int8 (8-bit, outlier threshold 6.0)";
        };
    }

    /** Where bf16 full fine-tuning in place keeps the optimizer state, by optimizer. */
    static String bf16State(dev.jtune.trainer.optim.AdamW.Variant variant) {
        return lowPrecisionState(variant, "bf16");
    }

    /** Where the optimizer state of weights trained in place in {@code p} (bf16 or fp16) lives, and how it updates. */
    static String lowPrecisionState(dev.jtune.trainer.optim.AdamW.Variant variant, String p) {
        return switch (variant) {
            case TORCH -> "AdamW state in " + p;
            case TORCHAO_8BIT -> "torchao AdamW8bit state (8-bit blocks; " + p + " for tensors it does not quantize),"
                    + " updated in fp32 and rounded to " + p;
            case TORCHAO_4BIT -> "torchao AdamW4bit state (4-bit blocks; " + p + " for tensors it does not quantize),"
                    + " updated in fp32 and rounded to " + p;
            case BNB_8BIT -> "bitsandbytes 8-bit AdamW state (8-bit blocks; fp32 under 4096 values), updated in fp32"
                    + " and rounded to " + p + " after the step and after the weight decay";
            case BNB_32BIT -> "bitsandbytes 32-bit AdamW state in fp32, updated in fp32 and rounded to " + p + " after the"
                    + " step and after the weight decay";
            default -> variant.checkpointName() + " state";
        };
    }
}
