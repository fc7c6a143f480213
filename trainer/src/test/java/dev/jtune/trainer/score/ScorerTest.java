package dev.jtune.trainer.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import dev.jtune.data.tokenizer.ByteLevelTokenizerBuilder;
import dev.jtune.data.tokenizer.Tokenizer;
import dev.jtune.model.engine.Dtype;
import dev.jtune.model.engine.Torch;
import dev.jtune.model.llama.LlamaConfig;
import dev.jtune.model.llama.LlamaModel;
import dev.jtune.model.llama.LlamaPresets;
import dev.jtune.testkit.TinyLlama;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ScorerTest {

    @Test
    void completionScoresSplitTheTextScoreAtTheTokenBoundary(@TempDir Path dir) {
        ByteLevelTokenizerBuilder.writeDefault(dir);
        try (NDManager m = Torch.newManager(); Tokenizer tok = Tokenizer.load(dir)) {
            LlamaConfig config = LlamaPresets.tiny(tok.vocabSize());
            try (LlamaModel model = TinyLlama.load(config, 5, Dtype.FP32, m)) {
                Scorer scorer = new Scorer(model, tok, m);
                String prompt = "the quick bro";
                String completion = "wn fox jumps";
                int[] whole = tok.encode(prompt + completion, true);
                int[] alone = tok.encode(prompt, true);
                // The tiny BPE merges across this boundary: the prompt's last token is not a prefix token.
                assertTrue(!Arrays.equals(alone, Arrays.copyOf(whole, alone.length)), "boundary merge expected");
                Scorer.Score c = scorer.scoreCompletion(prompt, completion);
                int shared = 0;
                while (alone[shared] == whole[shared]) {
                    shared++;
                }
                assertEquals(whole.length - shared, c.tokens());
                // Text NLL = NLL of the shared prompt tokens + completion NLL: nothing lost, nothing counted twice.
                Scorer.Score text = scorer.scoreText(prompt + completion);
                Scorer.Score head = scorer.score(Arrays.copyOf(whole, shared), 1);
                assertEquals(text.tokens(), head.tokens() + c.tokens());
                assertEquals(text.nll(), head.nll() + c.nll(), 1e-4);
                assertTrue(c.nll() > 0);
            }
        }
    }
}
