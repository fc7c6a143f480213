package dev.jtune.data.dataset;

import static dev.jtune.data.dataset.DatasetTestSupport.config;
import static dev.jtune.data.dataset.DatasetTestSupport.read;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jtune.data.tokenizer.PublishedTokenizers;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Conversation datasets on real tokenizers: ids equal to transformers' apply_chat_template (expected.json),
 * and labels for roles_to_train, train_on_eos, train_on_inputs and drop_system_message equal to labels built
 * piece by piece (header, content, end marker tokenized apart: special tokens separate them exactly).
 */
class ChatMaskingTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String[][] CHAT = {
            {"system", "Be brief."}, {"human", "Hi there"}, {"gpt", "Hello! How can I help?"}, {"human", "2+2?"}, {"gpt", "4"}};

    @TempDir
    Path dir;

    private void writeShareGpt(String name) throws IOException {
        ObjectNode row = JSON.createObjectNode();
        ArrayNode conv = row.putArray("conversations");
        for (String[] m : CHAT) {
            conv.addObject().put("from", m[0]).put("value", m[1]);
        }
        Files.writeString(dir.resolve(name), JSON.writeValueAsString(row) + "\n");
    }

    /** Llama 3 pieces: BOS, then per message header (never trained), content and <|eot_id|> as chosen. */
    private static Sample expectedLlama3(Tokenizer tok, Set<String> roles, String eos, boolean dropSystem) {
        List<Integer> ids = new ArrayList<>();
        List<Integer> labels = new ArrayList<>();
        add(tok, ids, labels, "<|begin_of_text|>", false);
        List<String[]> messages = new ArrayList<>();
        for (String[] m : CHAT) {
            String role = switch (m[0]) {
                case "human" -> "user";
                case "gpt" -> "assistant";
                default -> m[0];
            };
            if (!(dropSystem && role.equals("system"))) {
                messages.add(new String[] {role, m[1]});
            }
        }
        for (int i = 0; i < messages.size(); i++) {
            String role = messages.get(i)[0];
            boolean content = roles.contains(role);
            add(tok, ids, labels, "<|start_header_id|>" + role + "<|end_header_id|>\n\n", false);
            add(tok, ids, labels, messages.get(i)[1], content);
            boolean marker = switch (eos) {
                case "turn" -> content;
                case "all" -> true;
                case "last" -> i == messages.size() - 1;
                default -> false;
            };
            add(tok, ids, labels, "<|eot_id|>", marker);
        }
        return new Sample(ids.stream().mapToInt(Integer::intValue).toArray(), labels.stream().mapToInt(Integer::intValue).toArray());
    }

    private static void add(Tokenizer tok, List<Integer> ids, List<Integer> labels, String piece, boolean trained) {
        for (int id : tok.encode(piece, false)) {
            ids.add(id);
            labels.add(trained ? id : Sample.IGNORE_INDEX);
        }
    }

    @Test
    void rolesToTrainTrainOnEosInputsAndDropSystemOnLlama31() throws IOException {
        writeShareGpt("chat.jsonl");
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("llama3_1"))) {
            String base = "chat_template: llama3\ndatasets:\n  - path: chat.jsonl\n    type: sharegpt\n";
            for (String eos : List.of("turn", "all", "none", "last")) {
                Sample s = read(config(base + "    train_on_eos: " + eos + "\n"), tok, dir, new LoadReport()).getFirst();
                Sample e = expectedLlama3(tok, Set.of("assistant"), eos, false);
                DatasetFormatsTest.assertSample(e, s);
            }
            DatasetFormatsTest.assertSample(expectedLlama3(tok, Set.of("user", "assistant"), "turn", false),
                    read(config(base + "    roles_to_train: [user, assistant]\n"), tok, dir, new LoadReport()).getFirst());
            DatasetFormatsTest.assertSample(expectedLlama3(tok, Set.of("system"), "none", false),
                    read(config(base + "    roles_to_train: [system]\n    train_on_eos: none\n"), tok, dir, new LoadReport()).getFirst());
            DatasetFormatsTest.assertSample(expectedLlama3(tok, Set.of("assistant"), "turn", true),
                    read(config(base + "    drop_system_message: true\n"), tok, dir, new LoadReport()).getFirst());
            Sample all = read(config("train_on_inputs: true\n" + base), tok, dir, new LoadReport()).getFirst();
            Sample e = expectedLlama3(tok, Set.of(), "none", false);
            assertArrayEquals(e.inputIds(), all.inputIds());
            assertArrayEquals(e.inputIds(), all.labels(), "train_on_inputs trains every token");
            // the default: assistant contents and their <|eot_id|>, decoding to exactly that text
            Sample d = read(config(base), tok, dir, new LoadReport()).getFirst();
            int[] trained = IntStream.range(0, d.length()).filter(i -> d.labels()[i] != Sample.IGNORE_INDEX).map(i -> d.inputIds()[i]).toArray();
            assertEquals("Hello! How can I help?<|eot_id|>4<|eot_id|>", tok.decode(trained, false));
        }
    }

    /** expected.json conversations (without generation prompt) as chat_template rows: transformers' ids. */
    @Test
    void idsEqualTransformersForTokenizerDefaultAndChatml() throws IOException {
        com.fasterxml.jackson.databind.JsonNode root;
        try (InputStream in = getClass().getResourceAsStream("/chat-templates/expected.json")) {
            root = JSON.readTree(in);
        }
        List<com.fasterxml.jackson.databind.JsonNode> convs = new ArrayList<>();
        StringBuilder rows = new StringBuilder();
        for (com.fasterxml.jackson.databind.JsonNode c : root.get("conversations")) {
            if (!c.get("add_generation_prompt").asBoolean()) {
                convs.add(c);
                rows.append(JSON.writeValueAsString(JSON.createObjectNode().set("messages", c.get("messages")))).append('\n');
            }
        }
        assertTrue(convs.size() >= 3, "conversations: " + convs.size());
        Files.writeString(dir.resolve("chats.jsonl"), rows.toString());
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("llama3_1"))) {
            for (String template : List.of("tokenizer_default", "chatml")) {
                String key = template.equals("chatml") ? "chatml" : "llama3_1";
                // no chat_template key for tokenizer_default: Axolotl's default takes the tokenizer's own
                String yaml = (template.equals("chatml") ? "chat_template: chatml\n" : "")
                        + "datasets:\n  - path: chats.jsonl\n    type: chat_template\n";
                List<Sample> samples = read(config(yaml), tok, dir, new LoadReport());
                assertEquals(convs.size(), samples.size());
                for (int k = 0; k < convs.size(); k++) {
                    com.fasterxml.jackson.databind.JsonNode c = convs.get(k);
                    int[] expected = JSON.convertValue(c.get(key).get("ids"), int[].class);
                    assertArrayEquals(expected, samples.get(k).inputIds(), template + " " + c.get("name").asText());
                    if (template.equals("tokenizer_default")) {
                        StringBuilder want = new StringBuilder();
                        for (com.fasterxml.jackson.databind.JsonNode m : c.get("messages")) {
                            if (m.get("role").asText().equals("assistant")) {
                                want.append(m.get("content").asText().strip()).append("<|eot_id|>");
                            }
                        }
                        Sample s = samples.get(k);
                        int[] trained = IntStream.range(0, s.length()).filter(i -> s.labels()[i] != Sample.IGNORE_INDEX)
                                .map(i -> s.inputIds()[i]).toArray();
                        assertEquals(want.toString(), tok.decode(trained, false), c.get("name").asText());
                    }
                }
            }
        }
    }

    @Test
    void mistralLlama2TemplateTrainsAnswersAndEos() throws IOException {
        writeShareGpt("chat.jsonl");
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("llama2"))) {
            Sample s = read(config("chat_template: llama2\ndatasets:\n  - path: chat.jsonl\n    type: sharegpt\n"), tok, dir, new LoadReport()).getFirst();
            String text = "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST] Hello! How can I help? </s><s>[INST] 2+2? [/INST] 4 </s>";
            assertArrayEquals(tok.encode(text, false), s.inputIds());
            int eos = tok.eosId().getAsInt();
            List<List<Integer>> spans = new ArrayList<>();
            List<Integer> cur = null;
            for (int i = 0; i < s.length(); i++) {
                if (s.labels()[i] != Sample.IGNORE_INDEX) {
                    if (cur == null) spans.add(cur = new ArrayList<>());
                    cur.add(s.inputIds()[i]);
                } else {
                    cur = null;
                }
            }
            assertEquals(2, spans.size(), "two trained answers");
            for (int k = 0; k < 2; k++) {
                int[] ids = spans.get(k).stream().mapToInt(Integer::intValue).toArray();
                assertEquals(eos, ids[ids.length - 1]);
                assertEquals(k == 0 ? "Hello! How can I help?" : "4", tok.decode(ids, true).strip());
            }
            assertEquals(tok.tokenToId("▁Hello").getAsInt(), spans.get(0).getFirst(), "the straddling ▁Hello is trained");
        }
    }

    @Test
    void alpacaOnLlama3TrainsExactlyOutputAndEos() throws IOException {
        Files.writeString(dir.resolve("a.jsonl"), "{\"instruction\": \"Say hi.\", \"input\": \"politely\", \"output\": \"Hello, friend.\"}\n");
        try (Tokenizer tok = Tokenizer.load(PublishedTokenizers.dir("llama3"))) {
            Sample s = read(config("datasets:\n  - path: a.jsonl\n    type: alpaca\n"), tok, dir, new LoadReport()).getFirst();
            String prompt = tok.bosToken().orElse("") + String.format(DatasetFormatsTest.WITH_INPUT, "Say hi.", "politely");
            String eosText = tok.eosToken().orElseThrow();
            // Axolotl tokenizes prompt and output apart, each with the tokenizer's own special tokens: this early
            // Llama-3 tokenizer.json's post-processor adds no BOS (transformers' neither), so there is none
            String bare = String.format(DatasetFormatsTest.WITH_INPUT, "Say hi.", "politely");
            assertArrayEquals(DatasetTestSupport.concat(java.util.List.of(tok.encode(bare, true),
                    tok.encode("Hello, friend." + eosText, false))), s.inputIds());
            assertFalse(java.util.Arrays.equals(tok.encode(prompt + "Hello, friend." + eosText, false), s.inputIds()));
            int[] trained = IntStream.range(0, s.length()).filter(i -> s.labels()[i] != Sample.IGNORE_INDEX).map(i -> s.inputIds()[i]).toArray();
            assertEquals("Hello, friend." + eosText, tok.decode(trained, false));
            assertEquals(tok.encode(bare, true).length, s.length() - trained.length, "every prompt token masked");
        }
    }
}
