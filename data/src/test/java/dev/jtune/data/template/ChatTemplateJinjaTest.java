package dev.jtune.data.template;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jtune.data.template.ChatTemplateExpectations.Conversation;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Jinja templates through Jinjava: text equal to transformers', spans from prefix renderings, errors. */
class ChatTemplateJinjaTest {

    @Test
    void chatmlJinjaMatchesTransformersAndTheBuiltIn() {
        JinjaChatTemplate jinja = new JinjaChatTemplate(ChatTemplateExpectations.chatmlJinja(), "<|begin_of_text|>", "<|eot_id|>");
        ChatMlTemplate builtin = new ChatMlTemplate();
        for (Conversation c : ChatTemplateExpectations.conversations()) {
            RenderedChat j = jinja.render(c.messages(), c.addGenerationPrompt());
            RenderedChat b = builtin.render(c.messages(), c.addGenerationPrompt());
            assertEquals(c.text("chatml"), j.text(), c.name() + ": Jinjava vs transformers");
            assertEquals(c.text("chatml"), b.text(), c.name() + ": built-in vs transformers");
            assertEquals(b.turns(), j.turns(), c.name() + ": spans from prefix renderings vs the built-in's");
            for (int i = 0; i < c.messages().size(); i++) {
                Message m = c.messages().get(i);
                assertEquals(m.content(), j.contentText(i), c.name() + " turn " + i);
                assertEquals("<|im_end|>", j.markerText(i), c.name() + " turn " + i);
            }
        }
    }

    @Test
    void llama2JinjaMatchesTransformersAndTheBuiltIn() {
        JinjaChatTemplate jinja = new JinjaChatTemplate(ChatTemplateExpectations.llama2Jinja(), "<s>", "</s>");
        Llama2Template builtin = new Llama2Template();
        int checked = 0;
        for (Conversation c : ChatTemplateExpectations.conversations()) {
            if (c.expected("llama2") == null) {
                continue;
            }
            RenderedChat j = jinja.render(c.messages(), c.addGenerationPrompt());
            RenderedChat b = builtin.render(c.messages(), c.addGenerationPrompt());
            assertEquals(c.text("llama2"), j.text(), c.name() + ": Jinjava vs transformers");
            assertEquals(c.text("llama2"), b.text(), c.name() + ": built-in vs transformers");
            // contents and markers found in the Jinja rendering equal the built-in's (which writes them itself)
            assertEquals(b.turns(), j.turns(), c.name());
            checked++;
        }
        assertTrue(checked >= 4, "conversations checked: " + checked);
    }

    @Test
    void llama3BuiltInMatchesTheLlama31Template() {
        for (Conversation c : ChatTemplateExpectations.conversations()) {
            assertEquals(c.text("llama3_1"), new Llama3Template().render(c.messages(), c.addGenerationPrompt()).text(), c.name());
        }
    }

    @Test
    void raiseExceptionGivesAClearError() {
        JinjaChatTemplate jinja = new JinjaChatTemplate(ChatTemplateExpectations.llama2Jinja(), "<s>", "</s>");
        ChatTemplateException e = assertThrows(ChatTemplateException.class,
                () -> jinja.render(List.of(Message.user("a"), Message.assistant("b"), Message.assistant("c")), false));
        assertEquals("chat template raised an exception: Conversation roles must alternate user/assistant/user/assistant/...",
                e.getMessage());
        JinjaChatTemplate plain = new JinjaChatTemplate("{% if messages|length > 1 %}{{ raise_exception('only one message, please') }}{% endif %}ok", null, null);
        assertEquals("ok", plain.renderText(List.of(Message.user("x")), false));
        e = assertThrows(ChatTemplateException.class, () -> plain.renderText(List.of(Message.user("x"), Message.user("y")), false));
        assertTrue(e.getMessage().endsWith("only one message, please"), e.getMessage());
        // the next render on the same thread is not affected
        assertEquals("ok", plain.renderText(List.of(Message.user("x")), false));
    }

    @Test
    void brokenTemplatesAreRejected() {
        JinjaChatTemplate syntax = new JinjaChatTemplate("{% for m in messages %}{{ m.content }}", null, null);
        assertThrows(ChatTemplateException.class, () -> syntax.render(List.of(Message.user("x")), false));
        // writes the message count first: a prefix's rendering is not a prefix of the whole one
        JinjaChatTemplate unstable = new JinjaChatTemplate(
                "{{ messages|length }}{% for m in messages %}{{ m.content }}{% endfor %}", null, null);
        ChatTemplateException e = assertThrows(ChatTemplateException.class,
                () -> unstable.render(List.of(Message.user("x"), Message.assistant("y")), false));
        assertTrue(e.getMessage().contains("cannot split"), e.getMessage());
    }

    @Test
    void trailingNewlineOfTheTemplateIsDropped() {
        JinjaChatTemplate t = new JinjaChatTemplate("{% for m in messages %}\n{{ m.content }}\n{% endfor %}\n", "<s>", "</s>");
        // trim_blocks removes the newline after a block tag; Jinja drops the template's last newline
        assertEquals("a\nb\n", t.renderText(List.of(Message.user("a"), Message.assistant("b")), false));
    }
}
