package dev.jtune.data.template;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Exact text and spans of the built-in templates, and the registry. */
class ChatTemplateBuiltinsTest {
    static final List<Message> CHAT = List.of(
            Message.system("Be nice."),
            Message.user("Hi"),
            Message.assistant("Hello!"),
            Message.user("2+2?"),
            Message.assistant("4"));

    /** The content and end marker of every turn; turns tile the text. */
    static void assertSpans(RenderedChat chat, List<Message> messages, List<String> contents, List<String> markers) {
        assertEquals(messages.size(), chat.turns().size());
        int at = 0;
        for (int i = 0; i < messages.size(); i++) {
            RenderedChat.Turn t = chat.turns().get(i);
            assertEquals(i, t.index());
            assertEquals(messages.get(i).role(), t.role());
            assertEquals(at, t.start(), "turn " + i + " starts where the previous one ends");
            at = t.end();
            assertEquals(contents.get(i), chat.contentText(i), "content of turn " + i);
            assertEquals(markers.get(i), chat.markerText(i), "marker of turn " + i);
            assertEquals(t.contentEnd(), t.marker().start(), "the marker follows the content, turn " + i);
            assertEquals(contents.get(i) + markers.get(i), chat.text(t.span(true, true)), "content and marker, turn " + i);
            assertEquals("", chat.text(t.span(false, false)), "nothing, turn " + i);
        }
        assertEquals(chat.text().length(), at);
    }

    @Test
    void chatml() {
        ChatTemplate t = ChatTemplates.byName("chatml", null);
        RenderedChat r = t.render(CHAT, false);
        assertEquals("<|im_start|>system\nBe nice.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                + "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
                + "<|im_start|>assistant\n4<|im_end|>\n", r.text());
        assertSpans(r, CHAT, List.of("Be nice.", "Hi", "Hello!", "2+2?", "4"), List.of("<|im_end|>", "<|im_end|>", "<|im_end|>", "<|im_end|>", "<|im_end|>"));
        assertEquals("<|im_start|>assistant\n4<|im_end|>\n", r.turnText(4));
        RenderedChat g = t.render(CHAT.subList(0, 4), true);
        assertTrue(g.text().endsWith("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"));
        assertEquals("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n", g.turnText(3), "generation prompt in the last turn");
    }

    @Test
    void llama3() {
        RenderedChat r = ChatTemplates.byName("llama3", null).render(
                List.of(Message.system(" Be nice. "), Message.user("Hi"), Message.assistant("Hello!\n")), true);
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe nice.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", r.text());
        assertEquals(0, r.turns().getFirst().start(), "BOS belongs to the first turn");
        assertSpans(r, List.of(Message.system(" Be nice. "), Message.user("Hi"), Message.assistant("Hello!\n")),
                List.of("Be nice.", "Hi", "Hello!"), List.of("<|eot_id|>", "<|eot_id|>", "<|eot_id|>"));
    }

    @Test
    void llama2() {
        ChatTemplate t = ChatTemplates.byName("llama2", null);
        RenderedChat r = t.render(CHAT, false);
        assertEquals("<s>[INST] <<SYS>>\nBe nice.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] 2+2? [/INST] 4 </s>", r.text());
        assertSpans(r, CHAT, List.of("", "Hi", "Hello!", "2+2?", "4"), List.of("", "", " </s>", "", " </s>"));
        RenderedChat blank = t.render(List.of(Message.system("S"), Message.user(" \n"), Message.assistant(" x ")), false);
        assertEquals("<s>[INST] <<SYS>>\nS\n<</SYS>> [/INST] x </s>", blank.text(), "system + blank user content stripped as one");
        assertEquals("", blank.contentText(1));
        assertEquals("", r.turnText(0), "the system message is rendered inside the first user turn");
        assertEquals("<s>[INST] Hi [/INST]", t.render(List.of(Message.user(" Hi ")), true).text());
        ChatTemplateException e = assertThrows(ChatTemplateException.class,
                () -> t.render(List.of(Message.user("a"), Message.user("b")), false));
        assertTrue(e.getMessage().contains("alternate"), e.getMessage());
    }

    @Test
    void vicuna() {
        ChatTemplate t = new VicunaTemplate("<s>", "</s>");
        List<Message> noSystem = CHAT.subList(1, 5);
        RenderedChat r = t.render(noSystem, false);
        assertEquals("<s>A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
                + "detailed, and polite answers to the user's questions. USER: Hi ASSISTANT: Hello!</s>USER: 2+2? ASSISTANT: 4</s>",
                r.text());
        assertSpans(r, noSystem, List.of("Hi", "Hello!", "2+2?", "4"), List.of("", "</s>", "", "</s>"));
        assertEquals("Be nice. USER: Hi ASSISTANT:",
                new VicunaTemplate("", "</s>").render(List.of(Message.system("Be nice."), Message.user("Hi")), true).text());
        assertThrows(ChatTemplateException.class, () -> t.render(List.of(new Message("tool", "x")), false));
    }

    @Test
    void alpaca() {
        ChatTemplate t = new AlpacaTemplate("<s>", "</s>");
        RenderedChat r = t.render(CHAT, false);
        assertEquals("<s>Be nice.\n\n### Instruction:\nHi\n\n### Response:\nHello!</s>\n\n### Instruction:\n2+2?\n\n### Response:\n4</s>",
                r.text());
        assertSpans(r, CHAT, List.of("Be nice.", "Hi", "Hello!", "2+2?", "4"), List.of("", "", "</s>", "", "</s>"));
        assertEquals("Below is an instruction that describes a task. Write a response that appropriately completes the request."
                + "\n\n### Instruction:\nHi\n\n### Response:\n", new AlpacaTemplate("", "</s>").render(List.of(Message.user("Hi")), true).text());
    }

    @Test
    void registry() {
        for (String name : List.of("alpaca", "vicuna_v1.1", "chatml", "llama2", "llama3")) {
            assertEquals(name, ChatTemplates.byName(name, null).name());
        }
        assertInstanceOf(VicunaTemplate.class, ChatTemplates.byName("vicuna_v1.1", null));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ChatTemplates.byName("mistral", null));
        assertTrue(e.getMessage().contains("\"mistral\""), e.getMessage());
        for (String name : ChatTemplates.NAMES) {
            assertTrue(e.getMessage().contains(name), "the error lists " + name + ": " + e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> ChatTemplates.byName("tokenizer_default", null));
    }
}
