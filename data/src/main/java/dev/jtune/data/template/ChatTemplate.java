package dev.jtune.data.template;

import dev.jtune.data.tokenizer.Tokenizer;
import java.util.List;

/**
 * Renders a conversation to text and tells which characters belong to which message (see
 * {@link RenderedChat}). Get one with {@link ChatTemplates#byName}. Implementations are immutable and may be
 * used from several threads.
 */
public sealed interface ChatTemplate
        permits AlpacaTemplate, VicunaTemplate, ChatMlTemplate, Llama2Template, Llama3Template, JinjaChatTemplate {

    /** The name {@link ChatTemplates#byName} knows it by. */
    String name();

    /**
     * Renders {@code messages}; with {@code addGenerationPrompt} the text ends with what cues the assistant's
     * next answer (e.g. {@code <|im_start|>assistant\n}), which belongs to the last turn.
     *
     * @throws ChatTemplateException if the template cannot render this conversation (unknown role, roles that
     *     do not alternate where the template needs it, a Jinja template that calls {@code raise_exception})
     */
    RenderedChat render(List<Message> messages, boolean addGenerationPrompt);

    /** {@link #render} then {@link TokenizedChat#of}. */
    default TokenizedChat tokenize(Tokenizer tokenizer, List<Message> messages, boolean addGenerationPrompt) {
        return TokenizedChat.of(tokenizer, render(messages, addGenerationPrompt));
    }
}
