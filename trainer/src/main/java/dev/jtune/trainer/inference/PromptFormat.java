package dev.jtune.trainer.inference;

import dev.jtune.data.config.DatasetConfig;
import dev.jtune.data.config.DatasetFormat;
import dev.jtune.data.config.DatasetType;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.template.AlpacaTemplate;
import dev.jtune.data.template.ChatMlTemplate;
import dev.jtune.data.template.ChatTemplate;
import dev.jtune.data.template.ChatTemplates;
import dev.jtune.data.template.JinjaChatTemplate;
import dev.jtune.data.template.Llama3Template;
import dev.jtune.data.template.Message;
import dev.jtune.data.tokenizer.Tokenizer;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * How a user's prompt becomes the model's input, so that a fine-tuned model is prompted the way it was
 * trained. The first rule that applies:
 * <ol>
 *   <li>the config's {@code chat_template} ({@code jinja} with {@code chat_template_jinja});
 *   <li>the {@code chat_template} of the first conversation dataset that names one;
 *   <li>the Alpaca prompt when the first dataset is of type {@code alpaca};
 *   <li>the tokenizer's own chat template ({@code tokenizer_default}) when it has one;
 *   <li>otherwise the raw text, with the tokenizer's special tokens (BOS) added.
 * </ol>
 * A template renders {@code [user: prompt]} with the generation prompt and is tokenized without the tokenizer
 * adding special tokens (the template writes BOS), as transformers' {@code apply_chat_template} does.
 *
 * @param template the chat template, or empty for raw text
 * @param source which rule chose it, for the log line
 */
public record PromptFormat(Optional<ChatTemplate> template, String source) {

    /** Applies the rules above to {@code config} and {@code tokenizer}. */
    public static PromptFormat of(TrainConfig config, Tokenizer tokenizer) {
        if (config.chatTemplate().isPresent() || config.chatTemplateJinja().isPresent()) {
            String name = config.chatTemplate().orElse("jinja");
            return new PromptFormat(Optional.of(named(name, config, tokenizer)), "chat_template: " + name);
        }
        for (DatasetConfig d : config.datasets()) {
            if (d.format() instanceof DatasetFormat.Chat chat && chat.chatTemplate().isPresent()) {
                String name = chat.chatTemplate().get();
                return new PromptFormat(Optional.of(named(name, config, tokenizer)),
                        "chat_template: " + name + " of dataset " + d.path());
            }
        }
        if (!config.datasets().isEmpty() && config.datasets().get(0).type() == DatasetType.ALPACA) {
            return new PromptFormat(Optional.of(ChatTemplates.byName(AlpacaTemplate.NAME, tokenizer)),
                    "alpaca prompt (dataset type alpaca)");
        }
        if (tokenizer.chatTemplate().isPresent()) {
            return new PromptFormat(Optional.of(named(JinjaChatTemplate.NAME, config, tokenizer)),
                    "the tokenizer's chat template");
        }
        return new PromptFormat(Optional.empty(), "raw text (no chat template)");
    }

    private static ChatTemplate named(String name, TrainConfig config, Tokenizer tokenizer) {
        if (name.equals("jinja")) {
            String source = config.chatTemplateJinja().orElseThrow(() -> new IllegalArgumentException(
                    config.source() + ": chat_template: jinja needs chat_template_jinja"));
            return new JinjaChatTemplate("chat_template_jinja", source, tokenizer.bosToken().orElse(null),
                    tokenizer.eosToken().orElse(null), config.eotTokens(), config.chatTemplateKwargs());
        }
        // The model's own template with the same end-of-turn tokens and template arguments (enable_thinking, ...)
        // as the training data was rendered with.
        if (name.equals(JinjaChatTemplate.NAME) && tokenizer.chatTemplate().isPresent()) {
            return new JinjaChatTemplate(JinjaChatTemplate.NAME, tokenizer.chatTemplate().get(),
                    tokenizer.bosToken().orElse(null), tokenizer.eosToken().orElse(null), config.eotTokens(),
                    config.chatTemplateKwargs());
        }
        try {
            return ChatTemplates.byName(name, tokenizer, config.eotTokens(), config.chatTemplateKwargs());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(config.source() + ": chat_template: " + e.getMessage(), e);
        }
    }

    /** The token ids for one user message, ending where the assistant's reply begins. */
    public int[] encode(Tokenizer tokenizer, String prompt) {
        if (template.isEmpty()) {
            return tokenizer.encode(prompt, true);
        }
        return template.get().tokenize(tokenizer, List.of(Message.user(prompt)), true).inputIds();
    }

    /**
     * The ids that end a reply: the tokenizer's EOS ids (tokenizer files and generation_config.json), those
     * of config.json, and the template's end-of-turn token where it is its own token ({@code <|im_end|>},
     * {@code <|eot_id|>}).
     */
    public List<Integer> stopTokenIds(Tokenizer tokenizer, List<Integer> configEos) {
        Set<Integer> ids = new LinkedHashSet<>(tokenizer.eosIds());
        ids.addAll(configEos);
        template.ifPresent(t -> {
            String marker = switch (t) {
                case ChatMlTemplate c -> "<|im_end|>";
                case Llama3Template l -> "<|eot_id|>";
                default -> null;
            };
            if (marker != null) {
                tokenizer.tokenToId(marker).ifPresent(ids::add);
            }
        });
        return List.copyOf(ids);
    }
}
