package dev.jtune.trainer.train;

import ai.djl.ndarray.NDManager;
import dev.jtune.data.dataset.Row;
import dev.jtune.data.dataset.Sample;
import dev.jtune.data.tokenizer.Tokenizer;
import dev.jtune.model.generate.Generation;
import dev.jtune.model.generate.GenerationSettings;
import dev.jtune.model.generate.Generator;
import dev.jtune.model.llama.LlamaModel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Generation-based evaluation ({@code do_causal_lm_eval} with {@code eval_causal_lm_metrics: [exact_match]}):
 * for every held-out sample, the tokens before its first trained label are the prompt, the trained tokens
 * (stop tokens at the end left out) the reference; the model answers greedily and the answer counts when its
 * text, stripped, equals the reference's.
 *
 * @param correct answers equal to their reference
 * @param total samples asked
 * @param examples the first few (prompt tail, reference, answer) triples, for the log
 */
public record ExactMatch(int correct, int total, List<String[]> examples) {
    public ExactMatch {
        examples = List.copyOf(examples);
    }

    public double accuracy() {
        return total == 0 ? 0 : (double) correct / total;
    }

    /** One held-out sample: its prompt ids and its reference answer ids. */
    public record Probe(int[] prompt, int[] reference) {}

    /** The probes of {@code rows} (packed rows are split at their sample boundaries), at most {@code limit}. */
    public static List<Probe> probes(List<Row> rows, List<Integer> stopIds, int limit) {
        List<Probe> probes = new ArrayList<>();
        for (Row row : rows) {
            int[] cu = row.cuSeqlens();
            for (int s = 0; s + 1 < cu.length && probes.size() < limit; s++) {
                int from = cu[s];
                int to = cu[s + 1];
                int first = -1;
                // A packed sample's first label is masked whatever it was; the prompt is at least one token.
                for (int i = from + 1; i < to; i++) {
                    if (row.labels()[i] != Sample.IGNORE_INDEX) {
                        first = i;
                        break;
                    }
                }
                if (first < 0) continue;
                int end = to;
                while (end > first && stopIds.contains(row.inputIds()[end - 1])) end--;
                probes.add(new Probe(Arrays.copyOfRange(row.inputIds(), from, first),
                        Arrays.copyOfRange(row.inputIds(), first, end)));
            }
            if (probes.size() >= limit) break;
        }
        return probes;
    }

    /** Asks {@code model} every probe, greedily, allowing a few tokens more than the reference has. */
    public static ExactMatch evaluate(LlamaModel model, NDManager manager, Tokenizer tokenizer, List<Probe> probes,
            List<Integer> stopIds) {
        return evaluate(model, manager, tokenizer, probes, stopIds, java.util.OptionalLong.empty());
    }

    /**
     * Asks {@code model} every probe, greedily: at most {@code maxNewTokens} ({@code eval_max_new_tokens}, as Axolotl
     * generates in its causal-LM evaluation) when given, else a few tokens more than the reference has.
     */
    public static ExactMatch evaluate(LlamaModel model, NDManager manager, Tokenizer tokenizer, List<Probe> probes,
            List<Integer> stopIds, java.util.OptionalLong maxNewTokens) {
        int correct = 0;
        List<String[]> examples = new ArrayList<>();
        try (Generator generator = new Generator(model, manager)) {
            for (Probe p : probes) {
                int limit = maxNewTokens.isPresent() ? (int) maxNewTokens.getAsLong() : p.reference().length + 4;
                GenerationSettings settings = GenerationSettings.greedy(limit, stopIds);
                Generation g = generator.generate(p.prompt(), settings, null);
                String answer = tokenizer.decode(g.contentIds(), true).strip();
                String reference = tokenizer.decode(p.reference(), true).strip();
                boolean ok = answer.equals(reference);
                if (ok) correct++;
                if (examples.size() < 3) {
                    String prompt = tokenizer.decode(p.prompt(), true);
                    String tail = prompt.length() > 60 ? "..." + prompt.substring(prompt.length() - 60) : prompt;
                    examples.add(new String[] {tail.strip(), reference, answer});
                }
            }
        }
        return new ExactMatch(correct, probes.size(), examples);
    }
}
