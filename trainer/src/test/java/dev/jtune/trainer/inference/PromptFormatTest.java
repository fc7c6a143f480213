package dev.jtune.trainer.inference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.template.AlpacaTemplate;
import dev.jtune.data.tokenizer.ByteLevelTokenizerBuilder;
import dev.jtune.data.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The rule that picks how a prompt is formatted, and the ids it gives, on jtune's default byte-level tokenizer. */
class PromptFormatTest {
    @TempDir
    static Path tmp;
    private static Path plain;
    private static Path withTemplate;

    @BeforeAll
    static void tokenizers() throws Exception {
        plain = tmp.resolve("plain");
        ByteLevelTokenizerBuilder.writeDefault(plain);
        withTemplate = tmp.resolve("templated");
        ByteLevelTokenizerBuilder.writeDefault(withTemplate);
        Path cfg = withTemplate.resolve(Tokenizer.TOKENIZER_CONFIG_JSON);
        ObjectMapper json = new ObjectMapper();
        ObjectNode o = (ObjectNode) json.readTree(cfg.toFile());
        o.put("chat_template", "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                + "{% if add_generation_prompt %}[assistant]:{% endif %}");
        Files.writeString(cfg, json.writeValueAsString(o));
    }

    private static TrainConfig config(String yaml) {
        return TrainConfig.parse("base_model: m\n" + yaml, Path.of("test.yml"));
    }

    private static String rendered(PromptFormat f, Tokenizer t, String prompt) {
        return t.decode(f.encode(t, prompt), false);
    }

    @Test
    void configChatTemplateComesFirst() {
        try (Tokenizer t = Tokenizer.load(withTemplate)) {
            PromptFormat f = PromptFormat.of(config("chat_template: chatml\ndatasets:\n  - path: a\n    type: alpaca\n"), t);
            assertEquals("chat_template: chatml", f.source());
            assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", rendered(f, t, "Hi"));
        }
    }

    @Test
    void aDatasetsOwnTemplateComesNext() {
        try (Tokenizer t = Tokenizer.load(plain)) {
            PromptFormat f = PromptFormat.of(config("datasets:\n  - path: a\n    type: chat_template\n"
                    + "    chat_template: llama3\n"), t);
            assertTrue(f.source().startsWith("chat_template: llama3 of dataset a"), f.source());
            assertTrue(rendered(f, t, "Hi").endsWith("<|start_header_id|>assistant<|end_header_id|>\n\n"));
        }
    }

    @Test
    void alpacaDatasetsGetTheAlpacaPromptEvenWhenTheTokenizerHasATemplate() {
        try (Tokenizer t = Tokenizer.load(withTemplate)) {
            PromptFormat f = PromptFormat.of(config("datasets:\n  - path: a\n    type: alpaca\n"), t);
            String expected = t.bosToken().orElseThrow() + AlpacaTemplate.DEFAULT_SYSTEM
                    + "\n\n### Instruction:\nHi\n\n### Response:\n";
            assertEquals(expected, rendered(f, t, "Hi"));
            int[] ids = f.encode(t, "Hi");
            assertEquals(t.bosId().getAsInt(), ids[0]);
            assertTrue(ids[1] != t.bosId().getAsInt(), "one BOS, written by the template");
        }
    }

    @Test
    void thenTheTokenizersTemplateThenRawText() {
        TrainConfig completion = config("datasets:\n  - path: a\n    type: completion\n");
        try (Tokenizer t = Tokenizer.load(withTemplate)) {
            PromptFormat f = PromptFormat.of(completion, t);
            assertEquals("the tokenizer's chat template", f.source());
            assertEquals("[user] Hi\n[assistant]:", rendered(f, t, "Hi"));
        }
        try (Tokenizer t = Tokenizer.load(plain)) {
            PromptFormat f = PromptFormat.of(completion, t);
            assertTrue(f.template().isEmpty());
            assertArrayEquals(t.encode("Once upon", true), f.encode(t, "Once upon"));
        }
    }

    @Test
    void stopIdsJoinTheTokenizersAndTheConfigsEos() {
        try (Tokenizer t = Tokenizer.load(plain)) {
            PromptFormat f = PromptFormat.of(config("chat_template: chatml\n"), t);
            int eos = t.eosId().getAsInt();
            // <|im_end|> is no token of this tokenizer, so only the EOS ids stop.
            assertEquals(List.of(eos, 77), f.stopTokenIds(t, List.of(eos, 77)));
        }
    }
}
