package dev.jtune.data.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jtune.data.config.DatasetConfig;
import dev.jtune.data.config.DatasetFormat;
import dev.jtune.data.config.TrainConfig;
import dev.jtune.data.template.ChatTemplate;
import dev.jtune.data.template.ChatTemplateException;
import dev.jtune.data.template.ChatTemplates;
import dev.jtune.data.template.JinjaChatTemplate;
import dev.jtune.data.template.Message;
import dev.jtune.data.template.RenderedChat;
import dev.jtune.data.template.TokenizedChat;
import dev.jtune.data.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * {@code type: sharegpt} and {@code type: chat_template}: the row's {@code field_messages} array of turns,
 * each an object whose {@code message_property_mappings} keys hold role and content; roles mapped through
 * {@code roles} (ShareGPT: human/user to user, gpt/assistant to assistant); system turns left out with
 * {@code drop_system_message}; rendered with the chat template and tokenized as {@link TokenizedChat} does.
 *
 * <p>Labels, as Axolotl's {@code chat_template} strategy: a turn's content is trained when its role is in
 * {@code roles_to_train}; its end-of-turn marker ({@link RenderedChat.Turn#marker}) per {@code train_on_eos}:
 * {@code turn} when the content is, {@code all} always, {@code last} only for the last turn that has one,
 * {@code none} never. With {@code train_on_inputs} every token is trained.
 */
public final class ChatSamples implements SampleBuilder {
    private final DatasetFormat.Chat format;
    private final ChatTemplate template;
    private final Tokenizer tokenizer;
    private final boolean trainOnInputs;
    private final Map<String, String> roleOf = new TreeMap<>();

    /**
     * Axolotl's default speaker names for every chat dataset (not only sharegpt): {@code human} is the user,
     * {@code gpt} the assistant; other roles are taken as they are when no {@code roles:} map is given.
     */
    static final Map<String, String> DEFAULT_ROLES = Map.of("human", Message.USER, "gpt", Message.ASSISTANT);

    public ChatSamples(DatasetFormat.Chat format, ChatTemplate template, Tokenizer tokenizer, boolean trainOnInputs) {
        this.format = Objects.requireNonNull(format, "format");
        this.template = Objects.requireNonNull(template, "template");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.trainOnInputs = trainOnInputs;
        format.roles().forEach((role, names) -> {
            roleOf.put(role, role);
            names.forEach(name -> roleOf.put(name, role));
        });
    }

    /**
     * The template for {@code ds}, chosen as Axolotl does: the dataset's {@code chat_template}, else the
     * top-level one, else the tokenizer's own if it has one, else {@code chatml}
     * ({@code tokenizer_default_fallback_chatml}). {@code jinja} takes {@code chat_template_jinja}, the
     * template text or a file (relative to {@code baseDir}); {@code tokenizer_default_fallback_NAME} takes the
     * tokenizer's if it has one, else NAME.
     */
    static ChatTemplate template(DatasetConfig ds, TrainConfig cfg, Tokenizer tokenizer, Path baseDir) {
        DatasetFormat.Chat chat = (DatasetFormat.Chat) ds.format();
        String name = chat.chatTemplate().or(cfg::chatTemplate)
                .orElse(cfg.chatTemplateJinja().isPresent() ? "jinja" : "tokenizer_default_fallback_chatml");
        String fallback = "tokenizer_default_fallback_";
        if (name.startsWith(fallback)) {
            name = tokenizer.chatTemplate().isPresent() ? JinjaChatTemplate.NAME : name.substring(fallback.length());
        }
        if (name.equals("jinja")) {
            String source = cfg.chatTemplateJinja().orElseThrow(() -> new DatasetException(null, 0,
                    "dataset " + ds.path() + ": chat_template jinja needs chat_template_jinja (the template or its file)"));
            if (!source.contains("{{") && !source.contains("{%")) { // no Jinja tags: a file name
                Path file = baseDir.resolve(source.strip());
                try {
                    source = Files.readString(file);
                } catch (IOException e) {
                    throw new DatasetException(file, 0, "cannot read chat_template_jinja (given as a file, having no Jinja tags): "
                            + e.getMessage(), e);
                }
            }
            return new JinjaChatTemplate("chat_template_jinja", source, tokenizer.bosToken().orElse(null),
                    tokenizer.eosToken().orElse(null), java.util.List.of(), java.util.Map.of());
        }
        try {
            return ChatTemplates.byName(name, tokenizer);
        } catch (IllegalArgumentException e) {
            throw new DatasetException(null, 0, "dataset " + ds.path() + ": " + e.getMessage(), e);
        }
    }

    /** The messages of a row, roles mapped, system messages dropped if asked. */
    List<Message> messages(SourceRow row) {
        JsonNode o = Fields.object(row);
        String field = format.fieldMessages();
        JsonNode list = o.get(field);
        if (list == null) {
            throw row.error("field '" + field + "' missing (expected an array of messages)");
        }
        if (!list.isArray()) {
            throw row.error("field '" + field + "' is " + Fields.kind(list) + " (expected an array of messages)");
        }
        String roleKey = format.messageProperties().role();
        String contentKey = format.messageProperties().content();
        List<Message> out = new ArrayList<>(list.size());
        for (int i = 0; i < list.size(); i++) {
            String at = field + "[" + i + "]";
            JsonNode m = list.get(i);
            if (!m.isObject()) {
                throw row.error("field '" + at + "' is " + Fields.kind(m) + " (expected an object with '" + roleKey
                        + "' and '" + contentKey + "')");
            }
            String given = Fields.string(row, m, roleKey, at + "." + roleKey);
            String content = Fields.string(row, m, contentKey, at + "." + contentKey);
            String role = roleOf.isEmpty() ? DEFAULT_ROLES.getOrDefault(given, given) : roleOf.get(given);
            if (role == null || role.isBlank()) {
                throw row.error("field '" + at + "." + roleKey + "' is '" + given + "', not a known role (known: "
                        + String.join(", ", new TreeSet<>(roleOf.keySet())) + "; map it with roles:)");
            }
            if (format.dropSystemMessage() && role.equals(Message.SYSTEM)) {
                continue;
            }
            out.add(new Message(role, content));
        }
        if (out.isEmpty()) {
            throw row.error("field '" + field + "' holds no messages");
        }
        return out;
    }

    @Override
    public List<Sample> build(SourceRow row) {
        List<Message> messages = messages(row);
        RenderedChat chat;
        try {
            chat = template.render(messages, false);
        } catch (ChatTemplateException e) {
            throw row.error(template.name() + ": " + e.getMessage());
        }
        if (trainOnInputs) {
            return List.of(SampleBuilder.allTrained(tokenizer.encode(chat.text(), false)));
        }
        int lastMarked = -1;
        for (RenderedChat.Turn t : chat.turns()) {
            if (!t.marker().isEmpty()) {
                lastMarked = t.index();
            }
        }
        int last = lastMarked;
        TokenizedChat t = TokenizedChat.ofSpans(tokenizer, chat, turn -> {
            boolean content = format.rolesToTrain().contains(turn.role());
            boolean marker = switch (format.trainOnEos()) {
                case TURN -> content;
                case ALL -> true;
                case LAST -> turn.index() == last;
                case NONE -> false;
            };
            return turn.trained(content, marker);
        });
        return List.of(new Sample(t.inputIds(), t.labels()));
    }
}
