package dev.jtune.data.template;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A Hugging Face Jinja chat template (tokenizer_config.json's {@code chat_template}) rendered with Jinjava,
 * set up like transformers' {@code apply_chat_template}: {@code trim_blocks} and {@code lstrip_blocks} on, a
 * single trailing newline of the template dropped (Jinja's {@code keep_trailing_newline=False}), and the
 * variables {@code messages} (maps with {@code role} and {@code content}), {@code bos_token},
 * {@code eos_token}, {@code add_generation_prompt} and the function {@code raise_exception(message)}, which
 * makes {@link #render} throw a {@link ChatTemplateException} carrying the message.
 *
 * <p>The turns are found by rendering prefixes of the conversation, not by searching the text: message
 * {@code i} starts where the rendering of messages {@code [0, i)} ends (the first at 0); an assistant
 * message's trained part starts where the rendering of {@code [0, i)} with the generation prompt ends and
 * stops where the rendering of {@code [0, i]} ends, less trailing whitespace (so ChatML's newline after
 * {@code <|im_end|>} is not trained, as with {@link ChatMlTemplate}). A template without a generation prompt
 * (Llama 2's) thus also trains what separates the previous message from the content (Llama 2: one space, which
 * SentencePiece merges into the content's first token anyway). A template for which these renderings
 * are not prefixes of one another cannot be split into turns and is rejected with a clear error.
 *
 * <p>Jinjava is not Python's Jinja: method calls on strings resolve to Java's {@code String} methods
 * ({@code strip()} works, {@code upper()} does not), so templates relying on more of Python fail to render;
 * tests check the published templates jtune relies on against transformers.
 */
public final class JinjaChatTemplate implements ChatTemplate {
    public static final String NAME = "tokenizer_default";

    private static final ThreadLocal<String> RAISED = new ThreadLocal<>();

    private final String source;
    private final String bosToken;
    private final String eosToken;
    private final Jinjava jinjava;

    /**
     * @param source the Jinja text
     * @param bosToken the {@code bos_token} variable, or null (undefined, renders as "")
     * @param eosToken the {@code eos_token} variable, or null
     */
    public JinjaChatTemplate(String source, String bosToken, String eosToken) {
        Objects.requireNonNull(source, "source");
        this.source = source.endsWith("\n") ? source.substring(0, source.length() - 1) : source;
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.jinjava = new Jinjava(JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true).build());
        jinjava.getGlobalContext().registerFunction(
                new ELFunctionDefinition("", "raise_exception", Functions.class, "raiseException", Object.class));
    }

    @Override
    public String name() {
        return NAME;
    }

    /** The Jinja source (less the one trailing newline Jinja drops). */
    public String source() {
        return source;
    }

    /** Just the text, as transformers' {@code apply_chat_template(messages, tokenize=False)}. */
    public String renderText(List<Message> messages, boolean addGenerationPrompt) {
        List<Map<String, Object>> list = new ArrayList<>(messages.size());
        for (Message m : messages) {
            Map<String, Object> map = new LinkedHashMap<>();
            map.put("role", m.role());
            map.put("content", m.content());
            list.add(map);
        }
        Map<String, Object> bindings = new HashMap<>();
        bindings.put("messages", list);
        bindings.put("bos_token", bosToken);
        bindings.put("eos_token", eosToken);
        bindings.put("add_generation_prompt", addGenerationPrompt);
        RAISED.remove();
        RenderResult result;
        try {
            result = jinjava.renderForResult(source, bindings);
        } catch (RuntimeException e) {
            throw new ChatTemplateException("chat template failed: " + e.getMessage(), e);
        }
        String raised = RAISED.get();
        RAISED.remove();
        if (raised != null) {
            throw new ChatTemplateException("chat template raised an exception: " + raised);
        }
        List<String> fatal = new ArrayList<>();
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
                fatal.add((error.getLineno() > 0 ? "line " + error.getLineno() + ": " : "") + error.getMessage()
                        + (error.getFieldName() == null ? "" : " (" + error.getFieldName() + ")"));
            }
        }
        if (!fatal.isEmpty()) {
            throw new ChatTemplateException("chat template failed to render: " + String.join("; ", fatal));
        }
        return result.getOutput();
    }

    @Override
    public RenderedChat render(List<Message> messages, boolean addGenerationPrompt) {
        List<Message> msgs = List.copyOf(messages);
        String full = renderText(msgs, addGenerationPrompt);
        int n = msgs.size();
        int[] starts = new int[n + 1];
        String previous = "";
        for (int i = 1; i <= n; i++) {
            String prefix = i == n && !addGenerationPrompt ? full : renderText(msgs.subList(0, i), false);
            if (!full.startsWith(prefix) || !prefix.startsWith(previous)) {
                throw notPrefix("messages [0, " + i + ")", i == n ? "the whole conversation" : "more messages");
            }
            starts[i] = prefix.length();
            previous = prefix;
        }
        List<RenderedChat.Turn> turns = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int start = i == 0 ? 0 : starts[i];
            int end = i + 1 < n ? starts[i + 1] : full.length();
            int trainStart = start;
            int trainEnd = start;
            if (msgs.get(i).isAssistant()) {
                String cue = renderText(msgs.subList(0, i), true);
                int through = starts[i + 1];
                if (!full.startsWith(cue) || cue.length() < start || cue.length() > through) {
                    throw notPrefix("messages [0, " + i + ") with the generation prompt", "message " + i);
                }
                trainStart = cue.length();
                trainEnd = through;
                while (trainEnd > trainStart && TurnWriter.isPySpace(full.charAt(trainEnd - 1))) {
                    trainEnd--;
                }
            }
            turns.add(new RenderedChat.Turn(i, msgs.get(i).role(), start, end, trainStart, trainEnd));
        }
        return new RenderedChat(full, turns);
    }

    private static ChatTemplateException notPrefix(String what, String then) {
        return new ChatTemplateException("cannot split the chat template's output into turns: rendering " + what
                + " does not give a prefix of rendering " + then + " (the template rewrites earlier text)");
    }

    @Override
    public String toString() {
        return NAME;
    }

    /** Functions callable from templates (public for Jinjava's reflection; not API). */
    public static final class Functions {
        private Functions() {}

        /** {@code raise_exception(message)}: aborts rendering; {@link #render} throws with the message. */
        public static Object raiseException(Object message) {
            String m = String.valueOf(message);
            RAISED.set(m);
            throw new ChatTemplateException("chat template raised an exception: " + m);
        }
    }
}
