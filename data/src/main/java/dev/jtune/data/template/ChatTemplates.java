package dev.jtune.data.template;

import dev.jtune.data.tokenizer.Tokenizer;
import java.util.List;
import java.util.Objects;

/** The chat templates by name. */
public final class ChatTemplates {
    /**
     * Axolotl's named Jinja templates jtune has no built-in for, shipped as resources
     * ({@code dev/jtune/data/template/axolotl/<name>.jinja}, provenance in PROVENANCE.md there): Axolotl's
     * {@code ChatTemplate} enum at {@code AxolotlKeys.COMMIT}, less alpaca, chatml, llama3, jinja and
     * tokenizer_default (jtune's own), and jamba (its {@code *args} macro call is Jinja syntax jtune's interpreter
     * lacks).
     */
    public static final List<String> AXOLOTL = List.of("mistral_v1", "mistral_v2v3", "mistral_v3_tekken",
            "mistral_v7_tekken", "gemma", "cohere", "llama3_2_vision", "llama4", "phi_3", "phi_35", "deepseek_v2",
            "deepseek_v3", "qwen_25", "qwen3", "qwen3_5", "falcon_h1", "nemotron_h", "exaone", "exaone4",
            "metharme", "pixtral", "llava", "qwen2_vl", "gemma3", "gemma3n", "gemma4", "gemma4_unified", "command_a",
            "command_a_tool_use", "command_a_rag", "aya");

    /** The names {@link #byName} accepts. */
    public static final List<String> NAMES = java.util.stream.Stream.concat(java.util.stream.Stream.of(
            AlpacaTemplate.NAME,
            VicunaTemplate.NAME,
            ChatMlTemplate.NAME,
            Llama2Template.NAME,
            Llama3Template.NAME,
            JinjaChatTemplate.NAME), AXOLOTL.stream()).toList();

    private ChatTemplates() {}

    /** The Jinja text of Axolotl's template {@code name} (one of {@link #AXOLOTL}). */
    public static String axolotlSource(String name) {
        if (!AXOLOTL.contains(name)) throw new IllegalArgumentException("not one of Axolotl's templates: " + name);
        try (var in = ChatTemplates.class.getResourceAsStream("axolotl/" + name + ".jinja")) {
            if (in == null) throw new IllegalStateException("missing resource axolotl/" + name + ".jinja");
            return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /**
     * {@link #byName(String, Tokenizer)}, Axolotl's named Jinja templates rendered with the run's end-of-turn
     * strings and template arguments (as {@code tokenizer_default} is).
     */
    public static ChatTemplate byName(String name, Tokenizer tokenizer, List<String> eotTokens,
            java.util.Map<String, ?> kwargs) {
        if (AXOLOTL.contains(name)) {
            return new JinjaChatTemplate(name, axolotlSource(name),
                    tokenizer == null ? null : tokenizer.bosToken().orElse(null),
                    tokenizer == null ? null : tokenizer.eosToken().orElse(null), eotTokens, kwargs);
        }
        return byName(name, tokenizer);
    }

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
                                + NAMES.stream().filter(n -> !n.equals(JinjaChatTemplate.NAME)).toList()));
                yield new JinjaChatTemplate(source, tokenizer.bosToken().orElse(null), tokenizer.eosToken().orElse(null));
            }
            default -> AXOLOTL.contains(name) ? byName(name, tokenizer, List.of(), java.util.Map.of())
                    : throwUnknown(name);
        };
    }

    private static ChatTemplate throwUnknown(String name) {
        throw new IllegalArgumentException("unknown chat template \"" + name + "\"; allowed: " + String.join(", ", NAMES));
    }
}
