package dev.jtune.data.template;

import dev.jtune.data.tokenizer.Tokenizer;
import java.util.List;
import java.util.Objects;

/** The chat templates by name. */
public final class ChatTemplates {
    /** The names {@link #byName} accepts. */
    public static final List<String> NAMES = List.of(
            AlpacaTemplate.NAME,
            VicunaTemplate.NAME,
            ChatMlTemplate.NAME,
            Llama2Template.NAME,
            Llama3Template.NAME,
            JinjaChatTemplate.NAME);

    private ChatTemplates() {}

    /**
     * The template called {@code name} (one of {@link #NAMES}). {@code alpaca} and {@code vicuna_v1.1} take
     * the tokenizer's BOS and EOS tokens (none and {@code </s>} when it has none); {@code tokenizer_default}
     * its Jinja {@code chat_template} and BOS/EOS tokens. {@code tokenizer} may be null for the other built-ins.
     *
     * @throws IllegalArgumentException for an unknown name (the message lists the allowed ones), or for
     *     {@code tokenizer_default} without a tokenizer or with a tokenizer that has no chat template
     */
    public static ChatTemplate byName(String name, Tokenizer tokenizer) {
        Objects.requireNonNull(name, "name");
        String bos = tokenizer == null ? "" : tokenizer.bosToken().orElse("");
        String eos = tokenizer == null ? "</s>" : tokenizer.eosToken().orElse("</s>");
        return switch (name) {
            case AlpacaTemplate.NAME -> new AlpacaTemplate(bos, eos);
            case VicunaTemplate.NAME -> new VicunaTemplate(bos, eos);
            case ChatMlTemplate.NAME -> new ChatMlTemplate();
            case Llama2Template.NAME -> new Llama2Template();
            case Llama3Template.NAME -> new Llama3Template();
            case JinjaChatTemplate.NAME -> {
                if (tokenizer == null) {
                    throw new IllegalArgumentException("chat template " + name + " needs a tokenizer");
                }
                String source = tokenizer.chatTemplate().orElseThrow(() -> new IllegalArgumentException(
                        "chat template " + name + ": the tokenizer of " + tokenizer.directory()
                                + " has no chat_template (tokenizer_config.json or chat_template.jinja); choose one of "
                                + NAMES.subList(0, NAMES.size() - 1)));
                yield new JinjaChatTemplate(source, tokenizer.bosToken().orElse(null), tokenizer.eosToken().orElse(null));
            }
            default -> throw new IllegalArgumentException("unknown chat template \"" + name + "\"; allowed: " + String.join(", ", NAMES));
        };
    }
}
