package dev.jtune.data.template;

import dev.jtune.data.tokenizer.Tekken;
import dev.jtune.data.tokenizer.Tokenizer;
import dev.jtune.data.tokenizer.TokenizerException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * mistral-common's instruct encoding of a chat in finetuning mode (its {@code MistralTokenizer.encode_chat_completion}
 * with {@code ValidationMode.finetuning}, as Axolotl's {@code HFMistralTokenizer} sets it), for the Tekken versions of
 * Mistral's chat models: v3 (Mistral-Nemo, Ministral-8B-2410), v7 (Mistral-Small-3, Devstral-Small-2505), v11
 * (Magistral-Small-2506) and v13 (Magistral-Small-2507, Devstral-Small-2507). Message text is BPE-encoded on its own,
 * never parsed for control tokens; the control tokens are written as ids:
 * <pre>
 * v3:   &lt;s&gt;[INST]user[/INST]assistant&lt;/s&gt;...[INST]system\n\nlast user[/INST]assistant&lt;/s&gt;
 * v7+:  &lt;s&gt;[SYSTEM_PROMPT]system[/SYSTEM_PROMPT][INST]user[/INST]assistant&lt;/s&gt;
 * </pre>
 * As mistral-common: the request is validated first (the last message must be the assistant's; role order: after a
 * system message anything but a tool, after a user message anything but a tool, after an assistant anything but a
 * system message); consecutive messages of one role are joined with a blank line (empty ones skipped); before v7 the
 * system messages are joined into one system prompt put in front of the last user message, and an empty user message
 * opens a chat that does not start with one; an assistant's text loses its trailing spaces. Tool schemas, tool calls
 * and tool results are not encoded here: {@link MistralException} says so.
 */
public final class MistralInstruct {
    /** Why a chat cannot be encoded: mistral-common raises the same (the message names its check). */
    public static final class MistralException extends RuntimeException {
        public MistralException(String message) {
            super(message);
        }
    }

    /** A message after Axolotl's conversion: a role ({@link Message#SYSTEM}, user, assistant) and its text. */
    public record Turn(String role, String content) {}

    private static final String JOIN = "\n\n";
    private static final Set<String> VERSIONS = Set.of("v3", "v7", "v11", "v13");
    private static final Map<String, Set<String>> NEXT = Map.of(
            Message.SYSTEM, Set.of(Message.USER, Message.ASSISTANT, Message.SYSTEM),
            Message.USER, Set.of(Message.ASSISTANT, Message.SYSTEM, Message.USER),
            Message.ASSISTANT, Set.of(Message.ASSISTANT, Message.USER, "tool"));

    private final Tekken tekken;
    private final Tokenizer text;
    private final boolean systemMessages;
    private final int bos;
    private final int eos;
    private final int inst;
    private final int endInst;
    private final int system;
    private final int endSystem;

    private MistralInstruct(Tekken tekken, Tokenizer text) {
        this.tekken = tekken;
        this.text = text;
        this.systemMessages = !tekken.version().equals("v3");
        this.bos = id("<s>");
        this.eos = id("</s>");
        this.inst = id("[INST]");
        this.endInst = id("[/INST]");
        this.system = systemMessages ? id("[SYSTEM_PROMPT]") : -1;
        this.endSystem = systemMessages ? id("[/SYSTEM_PROMPT]") : -1;
    }

    private int id(String token) {
        return tekken.specialId(token).orElseThrow(() -> new TokenizerException(tekken.file() + ": no special token "
                + token + ", which mistral-common's " + tekken.version() + " instruct encoding writes"));
    }

    /**
     * The encoder of {@code dir}'s {@code tekken.json}.
     *
     * @throws TokenizerException when the folder has none (mistral-common's SentencePiece {@code tokenizer.model.v*}
     *     files are not read by jtune) or its version is not one this encoding covers
     */
    public static MistralInstruct load(Path dir) {
        Path file = dir.resolve(Tekken.FILE);
        if (!Tekken.isIn(dir)) {
            throw new TokenizerException(file + ": missing; tokenizer_use_mistral_common: true needs the model's"
                    + " tekken.json (mistral-common's Tekken tokenizer file; jtune does not read its SentencePiece"
                    + " tokenizer.model.v* files)");
        }
        Tekken tekken = Tekken.read(file);
        if (!VERSIONS.contains(tekken.version())) {
            throw new TokenizerException(file + ": config.version " + tekken.version() + " is not one jtune encodes"
                    + " chats for; it does v3, v7, v11 and v13 (v15's model settings and the SentencePiece v1/v2 are not done)");
        }
        return new MistralInstruct(tekken, Tokenizer.tekken(dir, tekken, false));
    }

    public Tekken tekken() {
        return tekken;
    }

    public int eosId() {
        return eos;
    }

    /**
     * The ids of {@code turns} as mistral-common encodes them in finetuning mode.
     *
     * @throws MistralException when mistral-common would refuse the chat (its message)
     */
    public int[] encode(List<Turn> turns) {
        validate(turns);
        // InstructRequestNormalizer: consecutive messages of one role joined; before v7 systems become one prompt
        List<Turn> merged = new ArrayList<>();
        List<String> systemPrompts = new ArrayList<>();
        for (int i = 0; i < turns.size(); ) {
            String role = turns.get(i).role();
            int j = i;
            StringBuilder joined = new StringBuilder();
            while (j < turns.size() && turns.get(j).role().equals(role)) {
                String c = turns.get(j).content();
                if (role.equals(Message.SYSTEM)) {
                    if (systemMessages) {
                        merged.add(new Turn(role, c));
                    } else if (!c.isEmpty()) {
                        systemPrompts.add(c);
                    }
                } else if (!c.isEmpty()) {
                    joined.append(joined.isEmpty() ? "" : JOIN).append(c);
                }
                j++;
            }
            if (!role.equals(Message.SYSTEM)) {
                merged.add(new Turn(role, joined.toString()));
            }
            i = j;
        }
        if (merged.isEmpty() || (!systemMessages && !merged.get(0).role().equals(Message.USER))) {
            merged.add(0, new Turn(Message.USER, ""));
        }
        String systemPrompt = systemPrompts.isEmpty() ? null : String.join(JOIN, systemPrompts);
        int lastUser = -1;
        for (int i = 0; i < merged.size(); i++) {
            if (merged.get(i).role().equals(Message.USER)) {
                lastUser = i;
            }
        }
        List<Integer> ids = new ArrayList<>();
        ids.add(bos);
        for (int i = 0; i < merged.size(); i++) {
            Turn t = merged.get(i);
            switch (t.role()) {
                case Message.USER -> {
                    String c = t.content();
                    if (i == lastUser && systemPrompt != null && !systemPrompt.isEmpty()) {
                        c = systemPrompt + JOIN + c;
                    }
                    ids.add(inst);
                    add(ids, c);
                    ids.add(endInst);
                }
                case Message.ASSISTANT -> {
                    if (t.content().isEmpty()) {
                        throw new MistralException("Invalid assistant message: an assistant message needs content");
                    }
                    add(ids, stripTrailingSpaces(t.content()));
                    ids.add(eos);
                }
                default -> { // system, v7 and later
                    ids.add(system);
                    add(ids, t.content());
                    ids.add(endSystem);
                }
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    private void add(List<Integer> ids, String s) {
        if (!s.isEmpty()) {
            for (int id : text.encode(s, false)) {
                ids.add(id);
            }
        }
    }

    /** Python's {@code rstrip(" ")}: spaces only. */
    private static String stripTrailingSpaces(String s) {
        int end = s.length();
        while (end > 0 && s.charAt(end - 1) == ' ') {
            end--;
        }
        return s.substring(0, end);
    }

    /** mistral-common's MistralRequestValidator, finetuning mode, for text messages. */
    private static void validate(List<Turn> turns) {
        if (turns.isEmpty()) {
            throw new MistralException("Conversation must have at least one message");
        }
        for (Turn t : turns) {
            if (!NEXT.containsKey(t.role())) {
                throw new MistralException("role '" + t.role() + "': jtune encodes system, user and assistant messages"
                        + " for mistral-common (tool results are not done)");
            }
        }
        if (turns.size() == 1 && !Set.of(Message.USER, Message.SYSTEM).contains(turns.get(0).role())) {
            throw new MistralException("Conversation must start with a user message or system message");
        }
        String last = turns.get(turns.size() - 1).role();
        if (!last.equals(Message.ASSISTANT)) {
            throw new MistralException("Expected last role Assistant for finetuning but got " + last);
        }
        for (int i = 1; i < turns.size(); i++) {
            String prev = turns.get(i - 1).role();
            String cur = turns.get(i).role();
            if (!NEXT.get(prev).contains(cur)) {
                throw new MistralException("Unexpected role '" + cur + "' after role '" + prev + "'");
            }
        }
    }
}
