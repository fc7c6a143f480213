package dev.jtune.trainer.cli;

import dev.jtune.model.hf.Directories;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.data.tokenizer.ByteLevelTokenizerBuilder;
import dev.jtune.data.tokenizer.Tokenizer;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaPresets;
import dev.jtune.model.llama.RandomInit;
import dev.jtune.model.safetensors.SafetensorsDtype;
import dev.jtune.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** {@code init-model}: a randomly initialised Llama checkpoint with a byte-level BPE tokenizer, in HF layout. */
final class InitModelCommand {
    static final String USAGE = """
            usage: ./launch.sh init-model (--preset tiny | --config config.json) --out DIR [--seed N] [--force]

              --preset NAME   a built-in architecture: tiny (~1M parameters, trains on 2 CPU cores)
              --config FILE   any Llama/Mistral config.json instead of a preset
              --out DIR       where to write config.json, model.safetensors, tokenizer files
              --seed N        initialisation seed (default 0); the same seed gives the same bits anywhere
              --force         replace DIR if it already exists
            """;

    /** Shard size of transformers' save_pretrained default (5 GB). */
    private static final long MAX_SHARD_BYTES = 5_000_000_000L;

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private InitModelCommand() {}

    static int run(String[] argv) throws IOException {
        Args args = Args.parse("init-model", argv, Set.of("preset", "config", "out", "seed"), Set.of("force"));
        if (!args.positional().isEmpty()) {
            throw new Args.UsageException("init-model: unexpected argument '" + args.positional().get(0) + "'");
        }
        String preset = args.get("preset", null);
        String configFile = args.get("config", null);
        if ((preset == null) == (configFile == null)) {
            throw new Args.UsageException("init-model: give exactly one of --preset or --config");
        }
        Path out = Path.of(args.require("out"));
        long seed = args.getLong("seed", 0);
        initModel(out, preset, configFile == null ? null : Path.of(configFile), seed, args.flag("force"), System.out);
        return 0;
    }

    /** Writes the checkpoint into a sibling temp folder, then moves it into place: whole or not at all. */
    static void initModel(Path out, String preset, Path configFile, long seed, boolean force, PrintStream log)
            throws IOException {
        out = out.toAbsolutePath().normalize();
        if (Files.exists(out) && !isEmptyDir(out) && !force) {
            throw new IllegalArgumentException(out + " already exists; pass --force to replace it");
        }
        Files.createDirectories(out.getParent());
        Path tmp = Files.createTempDirectory(out.getParent(), out.getFileName() + ".tmp-");
        try {
            ByteLevelTokenizerBuilder.writeDefault(tmp);
            int vocab;
            try (Tokenizer tokenizer = Tokenizer.load(tmp)) {
                vocab = tokenizer.vocabSize();
            }
            // A multimodal config (Gemma 3's) gives its text model, written as that family's causal LM.
            LlamaConfig config = configFile != null ? LlamaConfig.load(configFile).asCausalLm()
                    : LlamaPresets.byName(preset, vocab);
            if (config.vocabSize() < vocab) {
                throw new IllegalArgumentException(configFile + ": vocab_size " + config.vocabSize()
                        + " is smaller than the tokenizer's " + vocab + " tokens");
            }
            // The checkpoint is paired with this tokenizer, so its special ids are the tokenizer's.
            config = config.withSpecialTokens(ByteLevelTokenizerBuilder.BOS_ID, List.of(ByteLevelTokenizerBuilder.EOS_ID),
                    ByteLevelTokenizerBuilder.PAD_ID);
            writeJson(tmp.resolve("config.json"), config.toJson());
            ObjectNode generation = JSON.createObjectNode();
            generation.put("bos_token_id", ByteLevelTokenizerBuilder.BOS_ID);
            generation.put("eos_token_id", ByteLevelTokenizerBuilder.EOS_ID);
            generation.put("pad_token_id", ByteLevelTokenizerBuilder.PAD_ID);
            writeJson(tmp.resolve("generation_config.json"), generation);
            writeWeights(tmp, config, seed);
            Directories.replace(tmp, out);
            log.printf("init-model: wrote %s (%s, %,d parameters, vocab %d, %s, seed %d)%n", out, config.modelType(),
                    config.parameterCount(), config.vocabSize(), dtypeOf(config).label(), seed);
        } finally {
            Directories.deleteRecursively(tmp);
        }
    }

    private static Dtype dtypeOf(LlamaConfig config) {
        return config.torchDtype() == null ? Dtype.FP32 : config.torchDtype();
    }

    private static void writeWeights(Path dir, LlamaConfig config, long seed) {
        RandomInit init = new RandomInit(config, seed);
        SafetensorsDtype dtype = switch (dtypeOf(config)) {
            case FP32 -> SafetensorsDtype.F32;
            case FP16 -> SafetensorsDtype.F16;
            case BF16 -> SafetensorsDtype.BF16;
        };
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        for (RandomInit.Spec spec : init.specs()) {
            // Values are drawn only when the writer reaches the tensor: one tensor in memory at a time.
            entries.add(new SafetensorsWriter.Entry(spec.name(), dtype, spec.shape(), channel ->
                    SafetensorsWriter.Entry.ofFloats(spec.name(), spec.shape(), init.values(spec), dtype)
                            .source().writeTo(channel)));
        }
        SafetensorsWriter.writeSharded(dir, "model", entries, MAX_SHARD_BYTES, Map.of());
    }

    private static void writeJson(Path file, ObjectNode node) throws IOException {
        Files.writeString(file, JSON.writeValueAsString(node) + "\n");
    }

    private static boolean isEmptyDir(Path p) throws IOException {
        if (!Files.isDirectory(p)) {
            return false;
        }
        try (var s = Files.list(p)) {
            return s.findAny().isEmpty();
        }
    }

}
