package dev.jtune.trainer.cli;

import dev.jtune.data.config.TrainConfig;
import dev.jtune.trainer.setup.RunSettings;
import dev.jtune.lora.LoraMerge;
import dev.jtune.lora.PeftAdapter;
import dev.jtune.model.hf.ModelLocator;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Set;

/** {@code merge-lora}: the base model with a LoRA adapter folded in, as a Hugging Face model directory. */
final class MergeLoraCommand {
    static final String USAGE = """
            usage: ./launch.sh merge-lora CONFIG.yml [--lora-model-dir DIR] [--out DIR]

              CONFIG.yml          the training config: base_model names the base (local folder or cached hub id)
              --lora-model-dir D  the adapter (adapter_config.json + adapter_model.safetensors); default the
                                  config's lora_model_dir, else its output_dir
              --out DIR           where to write the merged model; default <output_dir>/merged

            Writes W + scaling·B·A for every adapted layer (and the saved embed_tokens / lm_head copies) in the
            base's dtype, with config.json and the tokenizer files copied: loadable by transformers and by score.
            A qlora adapter merges into the dense base named by base_model; a base stored in bitsandbytes 4-bit
            layout (NF4, double quantization) is dequantized first and the merged model is dense. An adapter
            trained with load_in_8bit merges into the dense base as well (Axolotl's merge reloads it unquantized);
            a base stored in bitsandbytes 8-bit layout is dequantized first (CB·SCB/127).
            """;

    private MergeLoraCommand() {}

    static int run(String[] argv) {
        Args args = Args.parse("merge-lora", argv, Set.of("lora-model-dir", "out"), Set.of());
        if (args.positional().size() != 1) {
            throw new Args.UsageException("merge-lora: expected one CONFIG.yml, got " + args.positional());
        }
        TrainConfig config = TrainConfig.load(Path.of(args.positional().get(0)));
        String adapterDir = args.get("lora-model-dir",
                RunSettings.from(config).loraModelDir().map(Path::toString).orElse(config.outputDir()));
        Path out = Path.of(args.get("out", config.outputPath().resolve("merged").toString()));
        merge(config, Path.of(adapterDir), out, System.out);
        return 0;
    }

    static void merge(TrainConfig config, Path adapterDir, Path out, PrintStream log) {
        Path base = ModelLocator.resolve(config.baseModel());
        PeftAdapter adapter = PeftAdapter.load(adapterDir);
        // An adapter trained with added tokens holds its grown tokenizer: the merged model gets it.
        LoraMerge.Summary s = LoraMerge.merge(base, adapter, out, adapterDir);
        log.printf("merge-lora: wrote %s (%d LoRA layers merged, %d modules replaced, scaling %s; base %s)%n",
                s.out(), s.mergedModules(), s.replacedModules(), adapter.settings().scaling(), base);
    }
}
