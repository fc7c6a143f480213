package dev.jtune.trainer.cli;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.data.tokenizer.Tokenizer;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.hf.ModelLocator;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.trainer.score.Scorer;
import dev.jtune.trainer.setup.AdapterSource;
import dev.jtune.trainer.setup.AssembledModel;
import dev.jtune.trainer.setup.ModelSpec;
import java.io.BufferedReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Set;

/** {@code score}: JSONL of texts or prompt/completion pairs in, one JSON line of NLL per input line out. */
final class ScoreCommand {
    static final String USAGE = """
            usage: ./launch.sh score --model DIR --input FILE.jsonl [--dtype fp32|fp16|bf16] [--lora-model-dir DIR]

              --model DIR     Hugging Face model directory (config.json, *.safetensors, tokenizer.json),
                              or a repo id already in the Hugging Face cache
              --input FILE    one JSON object per line: {"text": ...} scores every token after the first;
                              {"prompt": ..., "completion": ...} scores only the completion's tokens
              --dtype D       computation dtype (default fp32)
              --lora-model-dir DIR
                              a LoRA adapter in PEFT format to apply to the model (unmerged)

            Prints {"tokens": N, "nll": SUM, "mean_nll": MEAN} per input line (natural log), then
            {"summary": true, "tokens": ..., "mean_nll": ..., "perplexity": ...}. Blank lines are skipped.
            """;

    private static final ObjectMapper JSON = new ObjectMapper();

    private ScoreCommand() {}

    static int run(String[] argv) throws Exception {
        Args args = Args.parse("score", argv, Set.of("model", "input", "dtype", "lora-model-dir"),
                Set.of());
        if (!args.positional().isEmpty()) {
            throw new Args.UsageException("score: unexpected argument '" + args.positional().get(0) + "'");
        }
        Path input = Path.of(args.require("input"));
        Path modelDir = ModelLocator.resolve(args.require("model"));
        Dtype dtype;
        try {
            dtype = Dtype.parse(args.get("dtype", "fp32"));
        } catch (IllegalArgumentException e) {
            throw new Args.UsageException("score: --dtype: " + e.getMessage());
        }
        if (!Files.isRegularFile(input)) {
            throw new NoSuchFileException(input + ": input file not found");
        }
        String adapter = args.get("lora-model-dir", null);
        return score(modelDir, adapter == null ? null : Path.of(adapter), input, dtype, System.out);
    }

    static int score(Path modelDir, Path input, Dtype dtype, PrintStream out) throws Exception {
        return score(modelDir, null, input, dtype, out);
    }

    /** Scores with the model, or with the model plus the PEFT adapter in {@code adapterDir} when not null. */
    static int score(Path modelDir, Path adapterDir, Path input, Dtype dtype, PrintStream out) throws Exception {
        ModelSpec spec = ModelSpec.of(modelDir, dtype)
                .withAdapter(adapterDir == null ? AdapterSource.NONE : new AdapterSource.Saved(adapterDir));
        try (NDManager manager = Torch.newManager();
                Tokenizer tokenizer = Tokenizer.load(tokenizerDir(modelDir, adapterDir));
                AssembledModel assembled = AssembledModel.load(spec, manager);
                BufferedReader reader = Files.newBufferedReader(input, StandardCharsets.UTF_8)) {
            LlamaModel model = assembled.model();
            Scorer scorer = new Scorer(model, tokenizer, manager);
            long tokens = 0;
            double nll = 0;
            String line;
            int number = 0;
            while ((line = reader.readLine()) != null) {
                number++;
                if (line.isBlank()) {
                    continue;
                }
                Scorer.Score s = scoreLine(scorer, line, input + ":" + number);
                tokens += s.tokens();
                nll += s.nll();
                ObjectNode o = JSON.createObjectNode();
                o.put("tokens", s.tokens());
                o.put("nll", s.nll());
                putNumber(o, "mean_nll", s.meanNll());
                out.println(JSON.writeValueAsString(o));
            }
            ObjectNode summary = JSON.createObjectNode();
            summary.put("summary", true);
            summary.put("tokens", tokens);
            double mean = tokens == 0 ? Double.NaN : nll / tokens;
            putNumber(summary, "mean_nll", mean);
            putNumber(summary, "perplexity", Math.exp(mean));
            out.println(JSON.writeValueAsString(summary));
            return 0;
        }
    }

    /** JSON has no NaN: an undefined mean (nothing scored) is null. */
    private static void putNumber(ObjectNode o, String key, double v) {
        if (Double.isFinite(v)) {
            o.put(key, v);
        } else {
            o.putNull(key);
        }
    }

    private static Scorer.Score scoreLine(Scorer scorer, String line, String where) {
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(where + ": not valid JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException(where + ": expected a JSON object");
        }
        JsonNode text = node.get("text");
        JsonNode prompt = node.get("prompt");
        JsonNode completion = node.get("completion");
        if (text != null && prompt == null && completion == null) {
            if (!text.isTextual()) {
                throw new IllegalArgumentException(where + ": \"text\" must be a string");
            }
            return scorer.scoreText(text.asText());
        }
        if (text == null && prompt != null && completion != null) {
            if (!prompt.isTextual() || !completion.isTextual()) {
                throw new IllegalArgumentException(where + ": \"prompt\" and \"completion\" must be strings");
            }
            return scorer.scoreCompletion(prompt.asText(), completion.asText());
        }
        throw new IllegalArgumentException(where
                + ": expected {\"text\": ...} or {\"prompt\": ..., \"completion\": ...}, got keys " + keys(node));
    }

    private static String keys(JsonNode node) {
        var names = new java.util.ArrayList<String>();
        node.fieldNames().forEachRemaining(names::add);
        return names.toString();
    }

    /** An adapter trained with added tokens holds its grown tokenizer: read it from there, else the model's. */
    static Path tokenizerDir(Path modelDir, Path adapterDir) {
        return adapterDir != null && Files.isRegularFile(adapterDir.resolve(Tokenizer.TOKENIZER_JSON)) ? adapterDir
                : modelDir;
    }
}
