package dev.jtune.data.dataset;

import static dev.jtune.data.dataset.DatasetTestSupport.config;
import static dev.jtune.data.dataset.DatasetTestSupport.read;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.config.ConfigException;
import dev.jtune.data.tokenizer.PublishedTokenizers;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Axolotl's conversation keys on real tokenizers (Qwen3's and Llama-3.1's own chat templates): the default
 * human/gpt role map for chat_template datasets, eot_tokens, chat_template_kwargs, message-level training flags
 * and training_detail, split_thinking with reasoning_content, tools; input_output and the user-defined format.
 * Texts are the ones transformers' apply_chat_template renders for these conversations.
 */
class ChatDatasetKeysTest {
    @TempDir
    Path dir;

    private static String trained(Tokenizer tok, Sample s) {
        return tok.decode(IntStream.range(0, s.length()).filter(i -> s.labels()[i] != Sample.IGNORE_INDEX)
                .map(i -> s.inputIds()[i]).toArray(), false);
    }

    private Sample one(Tokenizer tok, String yaml, String row) throws IOException {
        Files.writeString(dir.resolve("d.jsonl"), row + "\n");
        return read(config(yaml), tok, dir, new LoadReport()).getFirst();
    }

    @Test
    void humanAndGptAreMappedForChatTemplateDatasets() throws IOException {
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("qwen3"))) {
            String yaml = "datasets:\n  - path: d.jsonl\n    type: chat_template\n";
            Sample s = one(tok, yaml, "{\"messages\": [{\"role\": \"human\", \"content\": \"Hi?\"}, {\"role\": \"gpt\", \"content\": \"Answer.\"}]}");
            // Qwen3's own template, as transformers renders [{user: Hi?}, {assistant: Answer.}]
            String text = "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nAnswer.<|im_end|>\n";
            assertArrayEquals(tok.encode(text, false), s.inputIds());
            assertEquals("Answer.<|im_end|>", trained(tok, s), "the empty think block is not trained");
        }
    }

    /** Axolotl's _convert_content_parts: a list content is its parts' text joined; a thinking part adds nothing. */
    @Test
    void listContentsAreTheirPartsJoined() throws IOException {
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("qwen3"))) {
            String yaml = "datasets:\n  - path: d.jsonl\n    type: chat_template\n";
            Sample parts = one(tok, yaml, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\","
                    + " \"text\": \"Hi\"}, {\"type\": \"text\", \"text\": \"?\"}]}, {\"role\": \"assistant\", \"content\":"
                    + " [{\"type\": \"thinking\", \"thinking\": \"hmm\"}, {\"type\": \"text\", \"text\": \"Answer.\"}]}]}");
            Sample plain = one(tok, yaml, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi?\"}, {\"role\":"
                    + " \"assistant\", \"content\": \"Answer.\"}]}");
            assertArrayEquals(plain.inputIds(), parts.inputIds());
            assertArrayEquals(plain.labels(), parts.labels());
            var e = assertThrows(DatasetException.class, () -> one(tok, yaml,
                    "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\":"
                    + " [{\"type\": \"text\", \"text\": \"b\", \"train\": false}]}]}"));
            assertTrue(e.getMessage().contains("messages[1].content[0]' has a per-part train/weight flag"), e.getMessage());
        }
    }

    @Test
    void splitThinkingTrainsTheReasoningTheTemplateWrites() throws IOException {
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("qwen3"))) {
            String yaml = "datasets:\n  - path: d.jsonl\n    type: chat_template\n    split_thinking: true\n";
            Sample s = one(tok, yaml, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi?\"}, "
                    + "{\"role\": \"assistant\", \"content\": \"<think>plan</think>Answer.\"}]}");
            // transformers, Qwen3, assistant {content: Answer., reasoning_content: plan}
            String text = "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n<think>\nplan\n</think>\n\nAnswer.<|im_end|>\n";
            assertArrayEquals(tok.encode(text, false), s.inputIds());
            assertEquals("plan\n</think>\n\nAnswer.<|im_end|>", trained(tok, s));
        }
    }

    @Test
    void messageTrainingFlagsAndDetail() throws IOException {
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("qwen3"))) {
            String yaml = "datasets:\n  - path: d.jsonl\n    type: chat_template\n    message_field_training: train\n"
                    + "    message_field_training_detail: detail\n";
            Sample s = one(tok, yaml, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi?\", \"train\": true}, "
                    + "{\"role\": \"assistant\", \"content\": \"Hello world.\", \"detail\": [{\"begin_offset\": 0, \"end_offset\": 4, \"train\": true}, "
                    + "{\"begin_offset\": 5, \"end_offset\": 11, \"train\": false}]}, {\"role\": \"user\", \"content\": \"More?\"}, "
                    + "{\"role\": \"assistant\", \"content\": \"No.\", \"train\": false}]}");
            assertEquals("Hi?<|im_end|>Hello<|im_end|>", trained(tok, s));
        }
    }

    @Test
    void eotTokensKwargsAndJinjaErrorsNameTheKey() throws IOException {
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("llama3_1"))) {
            String jinja = "chat_template_jinja: \"{% for m in messages %}<|im_start|>{{ m.role }}\\n{{ greeting }}{{ m.content }}<|im_end|>\\n{% endfor %}\"\n";
            String ds = "datasets:\n  - path: d.jsonl\n    type: chat_template\n";
            String row = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Yo\"}]}";
            // the EOS token is <|eot_id|>, which this template never writes: only the content is trained (with
            // the token " Yo", which straddles the content's start after the greeting's space)
            Sample plain = one(tok, jinja + "chat_template_kwargs:\n  greeting: 'Hey, '\n" + ds, row);
            assertEquals(" Yo", trained(tok, plain));
            assertArrayEquals(tok.encode("<|im_start|>user\nHey, Hi<|im_end|>\n<|im_start|>assistant\nHey, Yo<|im_end|>\n", false),
                    plain.inputIds());
            Sample eot = one(tok, jinja + "eot_tokens: ['<|im_end|>']\n" + ds, row);
            // <|im_end|> is plain text to this tokenizer: its last token "|>\n" straddles the marker's end, trained
            assertEquals("Yo<|im_end|>\n", trained(tok, eot));
            String raising = "chat_template_jinja: \"{{ messages[5].content.upper() }}\"\n";
            DatasetException e = assertThrows(DatasetException.class, () -> one(tok, raising + ds, row));
            assertTrue(e.getMessage().contains("chat_template_jinja:"), e.getMessage());
        }
    }

    @Test
    void toolsOfTheRowReachTheTemplate() throws IOException {
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("qwen3"))) {
            String yaml = "datasets:\n  - path: d.jsonl\n    type: chat_template\n";
            Sample s = one(tok, yaml, "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {}}}], "
                    + "\"messages\": [{\"role\": \"user\", \"content\": \"Call f.\"}, {\"role\": \"assistant\", \"content\": null, "
                    + "\"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {}}}]}, "
                    + "{\"role\": \"tool\", \"content\": \"42\"}, {\"role\": \"assistant\", \"content\": \"It is 42.\"}]}");
            String text = tok.decode(s.inputIds(), false);
            assertTrue(text.contains("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {}}}\n</tools>"), text);
            assertTrue(text.contains("<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>"), text);
            assertTrue(text.contains("<tool_response>\n42\n</tool_response>"), text);
            // the tool call is the assistant's turn: trained with its end-of-turn token, like the answer
            assertEquals("<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call><|im_end|>It is 42.<|im_end|>",
                    trained(tok, s));
        }
    }

    @Test
    void inputOutputSegments() throws IOException {
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("llama3_1"))) {
            Sample s = one(tok, "datasets:\n  - path: d.jsonl\n    type: input_output\n",
                    "{\"segments\": [{\"text\": \"<|begin_of_text|>Q: hi\\n\", \"label\": false}, {\"text\": \"A: yo<|eot_id|>\", \"label\": true}]}");
            int[] a = tok.encode("<|begin_of_text|>Q: hi\n", false);
            int[] b = tok.encode("A: yo<|eot_id|>", false);
            assertArrayEquals(DatasetTestSupport.concat(java.util.List.of(a, b)), s.inputIds());
            assertEquals("A: yo<|eot_id|>", trained(tok, s));
            DatasetException e = assertThrows(DatasetException.class, () -> one(tok,
                    "datasets:\n  - path: d.jsonl\n    type: input_output\n", "{\"segments\": [{\"text\": \"x\"}]}"));
            assertTrue(e.getMessage().contains("segments[0].label"), e.getMessage());
        }
    }

    @Test
    void userDefinedPromptFormat() throws IOException {
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("llama3_1"))) {
            String yaml = "datasets:\n  - path: d.jsonl\n    type:\n      field_instruction: q\n      field_output: a\n"
                    + "      format: \"[INST] {instruction} {input} [/INST] \"\n      no_input_format: \"[INST] {instruction} [/INST] \"\n"
                    + "      system_prompt: Be brief.\n      system_format: \"<<SYS>>{system}<</SYS>>\"\n";
            Sample s = one(tok, yaml, "{\"q\": \"Hi?\", \"a\": \"Yo.\"}");
            // Axolotl's rule: prompt and output tokenized apart (the output's BOS dropped, EOS appended)
            int[] answer = tok.encode("Yo.<|eot_id|>", false);
            assertArrayEquals(DatasetTestSupport.concat(java.util.List.of(
                    tok.encode("<<SYS>>Be brief.<</SYS>>[INST] Hi? [/INST] ", true), answer)), s.inputIds());
            assertEquals("Yo.<|eot_id|>", trained(tok, s), "only the output and EOS are trained");
            Sample withInput = one(tok, yaml, "{\"q\": \"Hi?\", \"input\": \"x\", \"a\": \"Yo.\"}");
            assertArrayEquals(DatasetTestSupport.concat(java.util.List.of(
                    tok.encode("<<SYS>>Be brief.<</SYS>>[INST] Hi? x [/INST] ", true), answer)), withInput.inputIds());
            // str.format is one pass: an instruction's own "{input}" is text, not the placeholder
            Sample braces = one(tok, yaml, "{\"q\": \"Say {input}?\", \"input\": \"x\", \"a\": \"Yo.\"}");
            assertArrayEquals(DatasetTestSupport.concat(java.util.List.of(
                    tok.encode("<<SYS>>Be brief.<</SYS>>[INST] Say {input}? x [/INST] ", true), answer)), braces.inputIds());
            ConfigException c = assertThrows(ConfigException.class, () -> config(
                    "datasets:\n  - path: d.jsonl\n    type:\n      field_instruction: q\n"));
            assertTrue(c.getMessage().contains("format"), c.getMessage());
        }
    }
}
