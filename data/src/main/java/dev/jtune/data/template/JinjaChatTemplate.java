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
 * <p>The turns are found by rendering prefixes of the conversation: message {@code i} starts where the
 * rendering of messages {@code [0, i)} ends (the first at 0), and its own text is the rendering of
 * {@code [0, i]} less that of {@code [0, i)} (for an assistant, less that of {@code [0, i)} with the
 * generation prompt, so its header is not searched). A template for which these renderings are not prefixes
 * of one another cannot be split into turns and is rejected with a clear error. Within a message's own text,
 * less trailing whitespace (ChatML's newline after {@code <|im_end|>}):
 * <ul>
 *   <li>the <b>end marker</b> is the text's last token when that is the tokenizer's EOS token or one of
 *       {@link #KNOWN_END_MARKERS} ({@code <|eot_id|>}, {@code <|im_end|>}, {@code </s>}, ...), plus any
 *       whitespace between it and the content (Llama 2's {@code " </s>"}); otherwise there is none (Llama 2's
 *       user turn ends with {@code [/INST]});
 *   <li>the <b>content</b> is the message's content, as given or stripped (Llama 3's {@code | trim}; which
 *       one is told by rendering the message as {@code "\t\u0001\t"} and looking for the tabs), ending
 *       right before the marker (or the text's end); failing that, its last occurrence in the message's text
 *       before the marker (a template writing something after the content). A template that rewrites the
 *       content beyond stripping is rejected with a clear error.
 * </ul>
 * A message whose own text is empty (Llama 2's system message, written inside the first user turn) gets an
 * empty content and marker.
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
            int from = start;
            if (msgs.get(i).isAssistant()) {
                String cue = renderText(msgs.subList(0, i), true);
                if (!full.startsWith(cue) || cue.length() < start || cue.length() > starts[i + 1]) {
                    throw notPrefix("messages [0, " + i + ") with the generation prompt", "message " + i);
                }
                from = cue.length();
            }
            int[] spans = locate(full, from, starts[i + 1], contentForms(msgs, i), i);
            turns.add(new RenderedChat.Turn(i, msgs.get(i).role(), start, end, spans[0], spans[1], spans[2]));
        }
        return new RenderedChat(full, turns);
    }

    /**
     * The end-of-turn tokens recognised as a marker: the tokenizer's EOS token and the usual end-of-turn
     * tokens of published templates.
     */
    private List<String> markers() {
        List<String> out = new ArrayList<>();
        if (eosToken != null && !eosToken.isEmpty()) {
            out.add(eosToken);
        }
        for (String m : KNOWN_END_MARKERS) {
            if (!out.contains(m)) {
                out.add(m);
            }
        }
        return out;
    }

    /**
     * How message {@code i}'s content may appear in the rendering, most likely first: rendering it as
     * {@code "\t\u0001\t"} tells whether the template strips contents (templates write spaces
     * and newlines around contents, never tabs); a template that fails on that probe
     * leaves the order as given, stripped.
     */
    private List<String> contentForms(List<Message> msgs, int i) {
        String content = msgs.get(i).content();
        String stripped = TurnWriter.pyStrip(content);
        if (content.equals(stripped)) {
            return List.of(content);
        }
        List<Message> probe = new ArrayList<>(msgs.subList(0, i));
        probe.add(new Message(msgs.get(i).role(), "\t\u0001\t"));
        boolean strips;
        try {
            String text = renderText(probe, false);
            strips = text.contains("\u0001") && !text.contains("\t\u0001\t");
        } catch (ChatTemplateException e) {
            strips = false;
        }
        return strips ? List.of(stripped, content) : List.of(content, stripped);
    }

    /** End-of-turn tokens of published chat templates, recognised besides the tokenizer's EOS token. */
    static final List<String> KNOWN_END_MARKERS = List.of(
            "<|eot_id|>", "<|im_end|>", "</s>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>");

    /**
     * {contentStart, contentEnd, markerEnd} of a message rendered in {@code text[from, through)}: see the
     * class comment for the rule.
     */
    private int[] locate(String text, int from, int through, List<String> forms, int index) {
        if (from == through) {
            return new int[] {from, from, from}; // rendered within another message's text (Llama 2's system)
        }
        int tail = through;
        while (tail > from && TurnWriter.isPySpace(text.charAt(tail - 1))) {
            tail--;
        }
        int markerStart = tail;
        for (String m : markers()) {
            if (text.startsWith(m, tail - m.length()) && tail - m.length() >= from) {
                markerStart = tail - m.length();
                break;
            }
        }
        // the content, as written or stripped (Llama 3's "| trim"), right before the marker (whitespace between
        // them counts as the marker's: Llama 2's " </s>"); else its last occurrence in the message's text
        for (String c : forms) {
            int contentEnd = markerStart;
            while (markerStart < tail && contentEnd > from && !text.startsWith(c, contentEnd - c.length())
                    && TurnWriter.isPySpace(text.charAt(contentEnd - 1))) {
                contentEnd--;
            }
            if (contentEnd - c.length() >= from && text.startsWith(c, contentEnd - c.length())) {
                return new int[] {contentEnd - c.length(), contentEnd, markerStart < tail ? tail : contentEnd};
            }
        }
        for (String c : forms) {
            int at = text.lastIndexOf(c, markerStart - c.length());
            if (at >= from) {
                return new int[] {at, at + c.length(), at + c.length()};
            }
        }
        throw new ChatTemplateException("cannot find the content of message " + index
                + " in the chat template's rendering (the template rewrites message contents)");
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
