package dev.jtune.data.template;

import dev.jtune.data.template.jinja.JinjaException;
import dev.jtune.data.template.jinja.JinjaTemplate;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A Hugging Face Jinja chat template (tokenizer_config.json's {@code chat_template}, or chat_template.jinja)
 * rendered as transformers' {@code apply_chat_template} renders it, by jtune's own Jinja2 interpreter
 * ({@link JinjaTemplate}): the variables {@code messages} (maps with {@code role}, {@code content} and the
 * message's other fields), {@code tools} and {@code documents} (None unless given), {@code bos_token},
 * {@code eos_token}, {@code add_generation_prompt}, and the template keyword arguments
 * ({@code chat_template_kwargs}, e.g. {@code enable_thinking}).
 *
 * <p><b>Turns are found in the rendering of the whole conversation</b>, not in renderings of its prefixes
 * (which are not prefixes of the whole for templates that write the last turn differently, as Qwen3 does):
 * <ul>
 *   <li>message {@code i}'s <b>content</b> is what takes the place of a sentinel when the conversation is
 *       rendered again with that message's content replaced by the sentinel: the real rendering less the
 *       probe's text before and after the sentinel (which must be its prefix and suffix). So a content the
 *       template strips spans what it wrote, Gemma's system text is found inside the first user turn, and
 *       literal special-token text in a content belongs to that content. An empty content, or one the template
 *       does not write, has none. Contents come in message order, except that a non-assistant content the
 *       template writes after later ones (Mistral's system text, inside the last user turn) is left to them;
 *   <li>an assistant's {@code tool_calls} span what the rendering loses when they are left out (framed by
 *       the longest common suffix, then prefix, of the two renderings); the message's content span is widened
 *       to cover them (trained with it);
 *   <li>an assistant's {@code reasoning_content}, where the template writes it before the content (Qwen3's
 *       {@code <think>...</think>}), is found the same way and belongs to the content (trained with it);
 *   <li>its <b>end-of-turn marker</b> is the first end-of-turn string (the {@code eot_tokens} given, else the
 *       EOS token) after its content and before the next message's content;
 *   <li>turn {@code i} runs from the end of turn {@code i-1} (0 for the first) to its marker's end (its
 *       content's end without a marker; the text's end for the last turn), so headers belong to the turn they
 *       open and a generation prompt to the last turn.
 * </ul>
 */
public final class JinjaChatTemplate implements ChatTemplate {
    public static final String NAME = "tokenizer_default";

    /** Private-use characters no real content holds, with a word a template leaves alone. */
    private static final String SENTINEL = "\uE000JTUNE_SENTINEL\uE001";

    /** The message field holding an assistant's tool calls. */
    private static final String TOOL_CALLS = "tool_calls";

    /** The message field holding an assistant's reasoning (transformers' and Axolotl's name). */
    private static final String REASONING = "reasoning_content";

    private final String label;
    private final JinjaTemplate template;
    private final String bosToken;
    private final String eosToken;
    private final List<String> eotTokens;
    private final Map<String, Object> kwargs;

    /**
     * @param source the Jinja text
     * @param bosToken the {@code bos_token} variable, or null (undefined, renders as "")
     * @param eosToken the {@code eos_token} variable, or null
     * @throws ChatTemplateException when the template does not parse
     */
    public JinjaChatTemplate(String source, String bosToken, String eosToken) {
        this(NAME, source, bosToken, eosToken, List.of(), Map.of());
    }

    /**
     * @param label how errors name this template ({@code tokenizer_default}, {@code chat_template_jinja})
     * @param eotTokens end-of-turn strings; empty for the EOS token alone
     * @param kwargs extra template variables (Axolotl's {@code chat_template_kwargs})
     */
    public JinjaChatTemplate(String label, String source, String bosToken, String eosToken, List<String> eotTokens,
            Map<String, ?> kwargs) {
        this.label = Objects.requireNonNull(label, "label");
        Objects.requireNonNull(source, "source");
        try {
            this.template = JinjaTemplate.parse(source);
        } catch (JinjaException e) {
            throw new ChatTemplateException(label + ": the chat template does not parse: " + e.getMessage(), e);
        }
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        List<String> eot = new ArrayList<>(eotTokens);
        if (eot.isEmpty() && eosToken != null && !eosToken.isEmpty()) {
            eot.add(eosToken);
        }
        this.eotTokens = List.copyOf(eot);
        this.kwargs = Map.copyOf(kwargs);
    }

    /** {@code tokenizer_default}, or the label it was made with ({@code chat_template_jinja}): errors name it. */
    @Override
    public String name() {
        return label;
    }

    /** The Jinja source. */
    public String source() {
        return template.source();
    }

    /** The end-of-turn strings looked for after each content. */
    public List<String> eotTokens() {
        return eotTokens;
    }

    /** Just the text, as transformers' {@code apply_chat_template(messages, tokenize=False)}. */
    public String renderText(List<Message> messages, boolean addGenerationPrompt) {
        return renderText(messages, addGenerationPrompt, null);
    }

    /** With {@code tools} (JSON schemas, as transformers passes them; null for none). */
    public String renderText(List<Message> messages, boolean addGenerationPrompt, List<?> tools) {
        List<Map<String, Object>> list = new ArrayList<>(messages.size());
        for (Message m : messages) {
            list.add(m.toMap());
        }
        Map<String, Object> vars = new HashMap<>(kwargs);
        vars.put("messages", list);
        vars.put("tools", tools);
        vars.putIfAbsent("documents", null);
        vars.put("add_generation_prompt", addGenerationPrompt);
        if (bosToken != null) {
            vars.put("bos_token", bosToken);
        }
        if (eosToken != null) {
            vars.put("eos_token", eosToken);
        }
        try {
            return template.render(vars);
        } catch (JinjaException e) {
            throw new ChatTemplateException(e.raised()
                    ? "chat template raised an exception: " + e.getMessage()
                    : label + ": the chat template failed to render: " + e.getMessage(), e);
        }
    }

    @Override
    public RenderedChat render(List<Message> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, null);
    }

    public RenderedChat render(List<Message> messages, boolean addGenerationPrompt, List<?> tools) {
        return render(messages, addGenerationPrompt, tools, true);
    }

    /** With {@code atOnce} false, every message gets its own probe (what the one-probe fast path must equal). */
    RenderedChat render(List<Message> messages, boolean addGenerationPrompt, List<?> tools, boolean atOnce) {
        List<Message> msgs = List.copyOf(messages);
        String full = renderText(msgs, addGenerationPrompt, tools);
        int n = msgs.size();
        int[] cs = new int[n];
        int[] ce = new int[n];
        boolean[] found = new boolean[n];
        int lastEnd = 0;
        if (!atOnce || !locateAtOnce(msgs, addGenerationPrompt, tools, full, cs, ce, found)) {
            for (int i = 0; i < n; i++) {
                locateOne(msgs, i, addGenerationPrompt, tools, full, cs, ce, found);
            }
        }
        // an assistant's tool calls: what the rendering loses without them (framed by the longest common suffix,
        // then prefix, of the two renderings), trained with the content
        for (int i = 0; i < n; i++) {
            Message m = msgs.get(i);
            if (!m.isAssistant() || !(m.fields().get(TOOL_CALLS) instanceof List<?> calls) || calls.isEmpty()) {
                continue;
            }
            Map<String, Object> f = new LinkedHashMap<>(m.fields());
            f.remove(TOOL_CALLS);
            List<Message> probe = new ArrayList<>(msgs);
            probe.set(i, new Message(m.role(), m.content(), f));
            String p;
            try {
                p = renderText(probe, addGenerationPrompt, tools);
            } catch (ChatTemplateException e) {
                continue; // the template needs them (or something else): no span of their own
            }
            int max = Math.min(full.length(), p.length());
            int q = 0;
            while (q < max && full.charAt(full.length() - 1 - q) == p.charAt(p.length() - 1 - q)) {
                q++;
            }
            int pre = 0;
            while (pre < max - q && full.charAt(pre) == p.charAt(pre)) {
                pre++;
            }
            int end = full.length() - q;
            if (end > pre) {
                cs[i] = found[i] ? Math.min(cs[i], pre) : pre;
                ce[i] = found[i] ? Math.max(ce[i], end) : end;
                found[i] = true;
            }
        }
        // a content written after later messages' (Mistral's system text, inside the last user turn) cannot be a
        // turn of its own: it is part of the text around the others, never trained
        for (int i = 0; i < n; i++) {
            for (int j = i + 1; j < n && found[i]; j++) {
                if (found[j] && cs[j] < ce[i]) {
                    if (msgs.get(i).isAssistant()) {
                        throw new ChatTemplateException(label + ": the chat template writes message " + j
                                + "'s content before assistant message " + i + "'s; cannot split it into turns");
                    }
                    found[i] = false;
                }
            }
            if (found[i]) {
                if (cs[i] < lastEnd) {
                    throw new ChatTemplateException(label + ": the chat template writes message " + i
                            + "'s content before an earlier message's; cannot split it into turns");
                }
                lastEnd = ce[i];
            }
        }
        // an assistant's reasoning the template writes before its content (Qwen3's <think>R</think>) is trained
        // with it: the content span is widened back to the reasoning's start
        for (int i = 0; i < n; i++) {
            Message m = msgs.get(i);
            if (!found[i] || !m.isAssistant() || !(m.fields().get(REASONING) instanceof String r) || r.isEmpty()) {
                continue;
            }
            Map<String, Object> f = new LinkedHashMap<>(m.fields());
            f.put(REASONING, SENTINEL);
            List<Message> probe = new ArrayList<>(msgs);
            probe.set(i, new Message(m.role(), m.content(), f));
            String p = renderText(probe, addGenerationPrompt, tools);
            int at = p.indexOf(SENTINEL);
            int suffix = p.length() - at - SENTINEL.length();
            int prev = 0;
            for (int k = i - 1; k >= 0; k--) {
                if (found[k]) {
                    prev = ce[k];
                    break;
                }
            }
            if (at >= prev && at <= cs[i] && full.length() - suffix >= at && full.regionMatches(0, p, 0, at)
                    && full.regionMatches(full.length() - suffix, p, at + SENTINEL.length(), suffix)) {
                cs[i] = at;
            }
        }
        List<RenderedChat.Turn> turns = new ArrayList<>(n);
        int start = 0;
        for (int i = 0; i < n; i++) {
            int contentStart = found[i] ? cs[i] : start;
            int contentEnd = found[i] ? ce[i] : start;
            int limit = full.length();
            for (int k = i + 1; k < n; k++) {
                if (found[k]) {
                    limit = cs[k];
                    break;
                }
            }
            int markerStart = contentEnd;
            int markerEnd = contentEnd;
            if (found[i]) {
                int best = -1;
                String bestEot = null;
                for (String eot : eotTokens) {
                    int at = full.indexOf(eot, contentEnd);
                    if (at >= 0 && at + eot.length() <= limit && (best < 0 || at < best)) {
                        best = at;
                        bestEot = eot;
                    }
                }
                if (best >= 0) {
                    markerStart = best;
                    markerEnd = best + bestEot.length();
                }
            }
            int end = i == n - 1 ? full.length() : markerEnd;
            turns.add(new RenderedChat.Turn(i, msgs.get(i).role(), start, end, contentStart, contentEnd, markerStart, markerEnd));
            start = end;
        }
        return new RenderedChat(full, turns);
    }

    /**
     * Message {@code i}'s content by its own probe: the conversation rendered with that content replaced by the
     * sentinel; the content is what takes the sentinel's place in the real rendering.
     */
    private void locateOne(List<Message> msgs, int i, boolean gen, List<?> tools, String full, int[] cs, int[] ce,
            boolean[] found) {
        found[i] = false;
        if (msgs.get(i).content().isEmpty()) {
            return;
        }
        List<Message> probe = new ArrayList<>(msgs);
        probe.set(i, msgs.get(i).withContent(SENTINEL));
        String p = renderText(probe, gen, tools);
        int at = p.indexOf(SENTINEL);
        if (at < 0) {
            return; // the template does not write this content
        }
        int suffix = p.length() - at - SENTINEL.length();
        int end = full.length() - suffix;
        if (end < at || !full.regionMatches(0, p, 0, at) || !full.regionMatches(end, p, at + SENTINEL.length(), suffix)) {
            throw new ChatTemplateException(label + ": cannot find the content of message " + i + " ("
                    + msgs.get(i).role() + ") in the rendering: the text the template writes around it depends"
                    + " on the content itself");
        }
        cs[i] = at;
        ce[i] = end;
        found[i] = true;
    }

    /**
     * The fast path, one probe for all messages: every content replaced by its own sentinel. It stands when the
     * real rendering is exactly that probe with each sentinel replaced by its content as given or stripped
     * (whitespace, or newlines, on either side), i.e. when the text around the contents does not depend on them;
     * then each content is where {@link #locateOne} would find it. Otherwise (false) each message gets its own probe.
     */
    private boolean locateAtOnce(List<Message> msgs, boolean gen, List<?> tools, String full, int[] cs, int[] ce,
            boolean[] found) {
        int n = msgs.size();
        List<Message> probe = new ArrayList<>(msgs);
        for (int i = 0; i < n; i++) {
            if (!msgs.get(i).content().isEmpty()) {
                probe.set(i, msgs.get(i).withContent(sentinel(i)));
            }
        }
        String p;
        try {
            p = renderText(probe, gen, tools);
        } catch (ChatTemplateException e) {
            return false;
        }
        // the sentinels in the order the template wrote them
        List<int[]> marks = new ArrayList<>(); // {position in p, message}
        for (int i = 0; i < n; i++) {
            if (msgs.get(i).content().isEmpty()) {
                continue;
            }
            String sen = sentinel(i);
            int at = p.indexOf(sen);
            if (at >= 0) {
                if (p.indexOf(sen, at + 1) >= 0) {
                    return false; // written twice
                }
                marks.add(new int[] {at, i});
            }
        }
        marks.sort((a, b) -> Integer.compare(a[0], b[0]));
        int pp = 0; // position in p
        int fp = 0; // position in full
        for (int k = 0; k < marks.size(); k++) {
            int at = marks.get(k)[0];
            int i = marks.get(k)[1];
            if (!full.regionMatches(fp, p, pp, at - pp)) {
                return false;
            }
            fp += at - pp;
            pp = at + sentinel(i).length();
            int nextAt = k + 1 < marks.size() ? marks.get(k + 1)[0] : p.length();
            String piece = p.substring(pp, Math.min(nextAt, pp + 64)); // what follows the content in the probe
            String match = null;
            for (String form : forms(msgs.get(i).content())) {
                if (full.startsWith(form, fp) && full.startsWith(piece, fp + form.length())) {
                    match = form;
                    break;
                }
            }
            if (match == null) {
                return false;
            }
            cs[i] = fp;
            ce[i] = fp + match.length();
            found[i] = true;
            fp += match.length();
        }
        return full.length() - fp == p.length() - pp && full.regionMatches(fp, p, pp, p.length() - pp);
    }

    private static String sentinel(int i) {
        return "\uE000JTUNE_SENTINEL_" + i + "\uE001";
    }

    /** A content as templates write it: as given, stripped of whitespace or of newlines on either side. */
    private static List<String> forms(String c) {
        List<String> out = new ArrayList<>(7);
        for (String f : new String[] {c, TurnWriter.pyStrip(c), strip(c, true, false, false), strip(c, false, true, false),
                strip(c, true, true, true), strip(c, true, false, true), strip(c, false, true, true)}) {
            if (!out.contains(f)) {
                out.add(f);
            }
        }
        return out;
    }

    /** Python's lstrip()/rstrip(), or with {@code newlines} their '\n' forms. */
    private static String strip(String s, boolean left, boolean right, boolean newlines) {
        int b = 0;
        int e = s.length();
        while (left && b < e && (newlines ? s.charAt(b) == '\n' : TurnWriter.isPySpace(s.charAt(b)))) {
            b++;
        }
        while (right && e > b && (newlines ? s.charAt(e - 1) == '\n' : TurnWriter.isPySpace(s.charAt(e - 1)))) {
            e--;
        }
        return s.substring(b, e);
    }

    @Override
    public String toString() {
        return NAME;
    }
}
