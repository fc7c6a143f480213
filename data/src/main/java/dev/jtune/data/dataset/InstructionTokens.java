package dev.jtune.data.dataset;

import dev.jtune.data.tokenizer.Tokenizer;
import java.util.Arrays;

/**
 * Axolotl's rule for instruction rows ({@code InstructionPromptTokenizingStrategy.tokenize_prompt} and
 * {@code PromptTokenizingStrategy._tokenize}, prompt_tokenizers.py; the same in alpaca_w_system.py for the
 * user-defined format): prompt and response tokenized apart, each with the tokenizer's special tokens.
 */
final class InstructionTokens {
    private InstructionTokens() {}

    /**
     * The prompt's ids (masked unless {@code trainOnInputs}), then the response's: EOS appended unless it already
     * ends in EOS, then a leading BOS dropped. An empty text tokenizes to nothing (Axolotl's "Empty text requested").
     */
    static Sample promptThenResponse(Tokenizer tokenizer, String prompt, String response, boolean trainOnInputs) {
        int[] p = prompt.isEmpty() ? new int[0] : tokenizer.encode(prompt, true);
        int[] r = response.isEmpty() ? new int[0] : tokenizer.encode(response, true);
        if (r.length > 0 && tokenizer.eosId().isPresent() && r[r.length - 1] != tokenizer.eosId().getAsInt()) {
            r = Arrays.copyOf(r, r.length + 1);
            r[r.length - 1] = tokenizer.eosId().getAsInt();
        }
        if (r.length > 0 && tokenizer.bosId().isPresent() && r[0] == tokenizer.bosId().getAsInt()) {
            r = Arrays.copyOfRange(r, 1, r.length);
        }
        int[] ids = Arrays.copyOf(p, p.length + r.length);
        System.arraycopy(r, 0, ids, p.length, r.length);
        int[] labels = ids.clone();
        if (!trainOnInputs) {
            Arrays.fill(labels, 0, p.length, Sample.IGNORE_INDEX);
        }
        return new Sample(ids, labels);
    }
}
