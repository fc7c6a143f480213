package dev.jtune.trainer.cli;

import ai.djl.ndarray.NDManager;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.tokenizer.Tokenizer;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.generate.GenerationSettings;
import dev.jtune.model.generate.Generator;
import dev.jtune.model.generate.TextStream;
import dev.jtune.model.hf.ModelLocator;
import dev.jtune.trainer.inference.PromptFormat;
import dev.jtune.trainer.setup.AdapterSource;
import dev.jtune.trainer.setup.AssembledModel;
import dev.jtune.trainer.setup.ModelSpec;
import dev.jtune.trainer.setup.RunSettings;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Set;

/** {@code inference}: generate replies with a config's model, prompted the way the config trains it. */
final class InferenceCommand {
    static final String USAGE = """
            usage: ./launch.sh inference CONFIG.yml [--prompt TEXT] [--lora-model-dir DIR] [--model DIR]
                                         [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K]
                                         [--seed N] [--dtype fp32|fp16|bf16]

              CONFIG.yml          the training config: base_model, tokenizer, chat_template / dataset type, bf16/fp16
              --prompt TEXT       answer this one user message and exit; without it, every line of standard
                                  input is a user message answered on its own (until end of input)
              --lora-model-dir D  apply the PEFT adapter in D (default: the config's lora_model_dir)
              --model DIR         use this model instead of base_model (e.g. a merged output_dir)
              --max-new-tokens N  default: the config's eval_max_new_tokens, else 128
              --temperature T     0 (default) is greedy; otherwise sample
              --top-p P           nucleus sampling threshold (default 1: off)
              --top-k K           keep the K most likely tokens (default 0: off)
              --seed N            sampling seed (default: the config's seed)
              --dtype D           computation dtype (default: bf16 if the config sets bf16, fp16 if fp16, else fp32)

            The prompt is rendered with the config's chat_template, else a conversation dataset's, else the
            Alpaca prompt for alpaca datasets, else the tokenizer's chat template, else used as raw text.
            Generation stops at an EOS token (tokenizer, generation_config.json, config.json, the template's
            end-of-turn token) or after max-new-tokens. Replies stream to standard output as they are generated.
            """;

    static final int DEFAULT_MAX_NEW_TOKENS = 128;

    private InferenceCommand() {}

    /** Parsed command line; null fields mean "from the config". */
    record Options(Path config, String prompt, Path adapterDir, String model, Integer maxNewTokens, Double temperature,
            Double topP, Integer topK, Long seed, Dtype dtype) {}

    static int run(String[] argv) throws Exception {
        Options o = parse(argv);
        var in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        return infer(o, in, System.out, System.err, System.console() != null);
    }

    static Options parse(String[] argv) {
        Args a = Args.parse("inference", argv, Set.of("prompt", "lora-model-dir", "model", "max-new-tokens",
                "temperature", "top-p", "top-k", "seed", "dtype"), Set.of());
        if (a.positional().size() != 1) {
            throw new Args.UsageException("inference: expected one CONFIG.yml, got " + a.positional().size()
                    + " positional arguments " + a.positional());
        }
        Dtype dtype = null;
        if (a.get("dtype", null) != null) {
            try {
                dtype = Dtype.parse(a.get("dtype", null));
            } catch (IllegalArgumentException e) {
                throw new Args.UsageException("inference: --dtype: " + e.getMessage());
            }
        }
        String adapter = a.get("lora-model-dir", null);
        return new Options(Path.of(a.positional().get(0)), a.get("prompt", null), adapter == null ? null : Path.of(adapter),
                a.get("model", null), a.has("max-new-tokens") ? Math.toIntExact(a.getLong("max-new-tokens", 0)) : null,
                number(a, "temperature"), number(a, "top-p"),
                a.has("top-k") ? Math.toIntExact(a.getLong("top-k", 0)) : null,
                a.has("seed") ? a.getLong("seed", 0) : null, dtype);
    }

    private static Double number(Args a, String name) {
        String v = a.get(name, null);
        if (v == null) {
            return null;
        }
        try {
            return Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new Args.UsageException("inference: --" + name + " expects a number, got '" + v + "'");
        }
    }

    /**
     * Runs inference.
     *
     * @param in the user messages, one per line, when {@code o.prompt()} is null
     * @param out the replies, each followed by a newline
     * @param log what was loaded and chosen
     * @param interactive prompt with {@code "> "} on {@code log} before reading each line
     */
    static int infer(Options o, BufferedReader in, PrintStream out, PrintStream log, boolean interactive)
            throws IOException {
        if (!Files.isRegularFile(o.config())) {
            throw new NoSuchFileException(o.config() + ": config file not found");
        }
        TrainConfig config = TrainConfig.load(o.config());
        config.notes().forEach(log::println);
        RunSettings run = RunSettings.from(config);
        Path modelDir = ModelLocator.resolve(o.model() != null ? o.model() : config.baseModel());
        Path configTokenizer = o.model() == null && config.tokenizerConfig().isPresent()
                ? ModelLocator.resolve(config.tokenizerConfig().get())
                : modelDir;
        Dtype dtype = o.dtype() != null ? o.dtype() : run.inferenceDtype();
        Path adapterDir = o.adapterDir() != null ? o.adapterDir() : run.loraModelDir().orElse(null);
        if (adapterDir != null && !Files.isDirectory(adapterDir)) {
            throw new NoSuchFileException(adapterDir + ": LoRA adapter directory not found");
        }
        Path tokenizerDir = ScoreCommand.tokenizerDir(configTokenizer, adapterDir);
        // A qlora adapter was trained over the NF4-quantized base (a load_in_8bit one over the LLM.int8 base): apply it
        // over the same weights.
        ModelSpec spec = new ModelSpec(modelDir, dtype, run.base(),
                adapterDir == null ? AdapterSource.NONE : new AdapterSource.Saved(adapterDir), null);
        try (NDManager manager = Torch.newManager();
                Tokenizer tokenizer = Tokenizer.load(tokenizerDir);
                AssembledModel assembled = AssembledModel.load(spec, manager);
                Generator generator = new Generator(assembled.model(), manager)) {
            RunSettings.architectureNotes(config, assembled.model().config()).forEach(log::println);
            PromptFormat format = PromptFormat.of(config, tokenizer);
            GenerationSettings settings = settings(o, run, config.seed(), format.stopTokenIds(tokenizer,
                    assembled.checkpoint().config().eosTokenIds()));
            log.printf("inference: %s (%s)%s; prompt: %s; %s, max %d new tokens, stop ids %s%n", modelDir,
                    dtype.label(), adapterDir == null ? "" : " + adapter " + adapterDir, format.source(),
                    settings.sampling() ? "sampling at temperature " + settings.temperature() + ", top-p "
                            + settings.topP() + ", top-k " + settings.topK() + ", seed " + settings.seed() : "greedy",
                    settings.maxNewTokens(), settings.stopTokenIds());
            if (o.prompt() != null) {
                reply(generator, tokenizer, format, settings, o.prompt(), out);
                return 0;
            }
            while (true) {
                if (interactive) {
                    log.print("> ");
                    log.flush();
                }
                String line = in.readLine();
                if (line == null) {
                    return 0;
                }
                if (!line.isBlank()) {
                    reply(generator, tokenizer, format, settings, line, out);
                }
            }
        }
    }

    private static void reply(Generator generator, Tokenizer tokenizer, PromptFormat format, GenerationSettings settings,
            String prompt, PrintStream out) {
        TextStream stream = new TextStream(tokenizer, chunk -> {
            out.print(chunk);
            out.flush();
        });
        generator.generate(format.encode(tokenizer, prompt), settings, id -> {
            if (!settings.stopTokenIds().contains(id)) {
                stream.accept(id);
            }
        });
        stream.finish();
        out.println();
        out.flush();
    }

    private static GenerationSettings settings(Options o, RunSettings run, long configSeed, java.util.List<Integer> stop) {
        int maxNew = o.maxNewTokens() != null ? o.maxNewTokens()
                : (int) run.evalMaxNewTokens().orElse(DEFAULT_MAX_NEW_TOKENS);
        try {
            return new GenerationSettings(maxNew, o.temperature() == null ? 0 : o.temperature(),
                    o.topP() == null ? 1 : o.topP(), o.topK() == null ? 0 : o.topK(),
                    o.seed() != null ? o.seed() : configSeed, stop);
        } catch (IllegalArgumentException e) {
            throw new Args.UsageException("inference: " + e.getMessage());
        }
    }
}
