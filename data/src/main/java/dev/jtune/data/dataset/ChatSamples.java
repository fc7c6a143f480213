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
        if (name.equals(JinjaChatTemplate.NAME) && tokenizer.chatTemplate().isPresent()) {
            try {
                return new JinjaChatTemplate(JinjaChatTemplate.NAME, tokenizer.chatTemplate().get(),
                        tokenizer.bosToken().orElse(null), tokenizer.eosToken().orElse(null), cfg.eotTokens(),
                        cfg.chatTemplateKwargs());
            } catch (ChatTemplateException e) {
                throw new DatasetException(null, 0, "dataset " + ds.path() + ": " + e.getMessage(), e);
            }
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
            try {
                return new JinjaChatTemplate("chat_template_jinja", source, tokenizer.bosToken().orElse(null),
                        tokenizer.eosToken().orElse(null), cfg.eotTokens(), cfg.chatTemplateKwargs());
            } catch (ChatTemplateException e) {
                throw new DatasetException(null, 0, "dataset " + ds.path() + ": " + e.getMessage(), e);
            }
        }
        try {
            return ChatTemplates.byName(name, tokenizer, cfg.eotTokens(), cfg.chatTemplateKwargs());
        } catch (IllegalArgumentException e) {
            throw new DatasetException(null, 0, "dataset " + ds.path() + ": " + e.getMessage(), e);
        }
    }

    /** The messages of a row, roles mapped, system messages dropped if asked. */
    List<Message> messages(SourceRow row) {
        return parse(row).messages();
    }

    /**
     * A row's conversation: the messages, and per message its {@code message_field_training} flag (null when
     * absent) and {@code message_field_training_detail} ({begin, end exclusive, train} over the content; null
     * when absent); the row's tools (null when none).
     */
    record Conversation(List<Message> messages, List<Boolean> training, List<List<int[]>> detail, List<?> tools) {}

    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();

    Conversation parse(SourceRow row) {
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
        DatasetFormat.MessageExtras extras = format.extras();
        String trainingKey = extras.fieldTraining().orElse(null);
        String detailKey = extras.fieldTrainingDetail().orElse(null);
        List<Message> out = new ArrayList<>(list.size());
        List<Boolean> training = new ArrayList<>(list.size());
        List<List<int[]>> details = new ArrayList<>(list.size());
        for (int i = 0; i < list.size(); i++) {
            String at = field + "[" + i + "]";
            JsonNode m = list.get(i);
            if (!m.isObject()) {
                throw row.error("field '" + at + "' is " + Fields.kind(m) + " (expected an object with '" + roleKey
                        + "' and '" + contentKey + "')");
            }
            String given = Fields.string(row, m, roleKey, at + "." + roleKey);
            JsonNode c = m.get(contentKey);
            // a tool-call turn may have no content (null or missing): it renders as the template writes tool calls
            String content = (c == null || c.isNull()) && m.has("tool_calls") ? ""
                    : c != null && c.isArray() ? contentParts(row, c, at + "." + contentKey)
                    : Fields.string(row, m, contentKey, at + "." + contentKey);
            String role = roleOf.isEmpty() ? DEFAULT_ROLES.getOrDefault(given, given) : roleOf.get(given);
            if (role == null || role.isBlank()) {
                throw row.error("field '" + at + "." + roleKey + "' is '" + given + "', not a known role (known: "
                        + String.join(", ", new TreeSet<>(roleOf.keySet())) + "; map it with roles:)");
            }
            if (format.dropSystemMessage() && role.equals(Message.SYSTEM)) {
                continue;
            }
            Map<String, Object> fields = new java.util.LinkedHashMap<>();
            var names = m.fieldNames();
            while (names.hasNext()) {
                String k = names.next();
                if (!k.equals(roleKey) && !k.equals(contentKey) && !k.equals(trainingKey) && !k.equals(detailKey)
                        && !k.equals("role") && !k.equals("content")) {
                    fields.put(k, JSON.convertValue(m.get(k), Object.class));
                }
            }
            if (extras.splitThinking() && role.equals(Message.ASSISTANT)) {
                int open = content.indexOf("<think>");
                int close = content.indexOf("</think>");
                if (close >= 0 && (open < 0 || open < close)) {
                    fields.put("reasoning_content", content.substring(open < 0 ? 0 : open + 7, close).strip());
                    content = content.substring(close + 8).stripLeading();
                }
            }
            Boolean train = null;
            if (trainingKey != null && m.has(trainingKey) && !m.get(trainingKey).isNull()) {
                if (!m.get(trainingKey).isBoolean()) {
                    throw row.error("field '" + at + "." + trainingKey + "' is " + Fields.kind(m.get(trainingKey))
                            + " (expected true or false)");
                }
                train = m.get(trainingKey).asBoolean();
            }
            List<int[]> detail = null;
            if (detailKey != null && m.has(detailKey) && !m.get(detailKey).isNull()) {
                detail = trainingDetail(row, m.get(detailKey), at + "." + detailKey, content);
            }
            out.add(new Message(role, content, fields));
            training.add(train);
            details.add(detail);
        }
        if (out.isEmpty()) {
            throw row.error("field '" + field + "' holds no messages");
        }
        JsonNode t = o.get(extras.fieldTools());
        List<?> tools = t == null || t.isNull() ? null : JSON.convertValue(t, List.class);
        if (t != null && !t.isNull() && !t.isArray()) {
            throw row.error("field '" + extras.fieldTools() + "' is " + Fields.kind(t) + " (expected an array of tool schemas)");
        }
        return new Conversation(out, training, details, tools);
    }

    /**
     * A content given as a list of parts, as Axolotl's {@code _convert_content_parts} reads it: the parts' {@code text}
     * (else {@code content}, else {@code value}) joined with nothing between; a part with none of them (a
     * {@code type: thinking} part) adds nothing. Per-part {@code train}/{@code weight} flags are refused.
     */
    static String contentParts(SourceRow row, JsonNode parts, String at) {
        StringBuilder sb = new StringBuilder();
        for (int k = 0; k < parts.size(); k++) {
            JsonNode part = parts.get(k);
            if (!part.isObject()) {
                continue; // Axolotl skips what is not a dict
            }
            if (part.has("train") || part.has("weight")) {
                throw row.error("field '" + at + "[" + k + "]' has a per-part train/weight flag, which jtune does not"
                        + " implement for list contents; give message_field_training_detail instead");
            }
            for (String key : List.of("text", "content", "value")) {
                JsonNode v = part.get(key);
                if (v != null && v.isTextual() && !v.asText().isEmpty()) {
                    sb.append(v.asText());
                    break;
                }
                if (v != null && !v.isNull() && !v.isTextual()) {
                    throw row.error("field '" + at + "[" + k + "]." + key + "' is " + Fields.kind(v) + " (expected a string)");
                }
            }
        }
        return sb.toString();
    }

    /** Axolotl's training_detail: [{begin_offset, end_offset (inclusive), train}] over the content. */
    private static List<int[]> trainingDetail(SourceRow row, JsonNode list, String at, String content) {
        if (!list.isArray()) {
            throw row.error("field '" + at + "' is " + Fields.kind(list) + " (expected an array of {begin_offset, end_offset, train})");
        }
        List<int[]> out = new ArrayList<>();
        for (int k = 0; k < list.size(); k++) {
            JsonNode d = list.get(k);
            String where = at + "[" + k + "]";
            JsonNode b = d.get("begin_offset");
            JsonNode e = d.get("end_offset");
            JsonNode tr = d.get("train");
            if (b == null || !b.isInt() || e == null || !e.isInt() || tr == null || !tr.isBoolean()) {
                throw row.error("field '" + where + "' needs integer begin_offset and end_offset and boolean train");
            }
            int begin = b.asInt();
            int end = e.asInt() + 1;
            if (begin < 0 || end < begin || end > content.length()) {
                throw row.error("field '" + where + "' spans [" + begin + ", " + e.asInt() + "], outside the content's "
                        + content.length() + " characters");
            }
            out.add(new int[] {begin, end, tr.asBoolean() ? 1 : 0});
        }
        return out;
    }

    @Override
    public List<Sample> build(SourceRow row) {
        Conversation conv = parse(row);
        List<Message> messages = conv.messages();
        RenderedChat chat;
        try {
            chat = template instanceof JinjaChatTemplate j ? j.render(messages, false, conv.tools())
                    : template.render(messages, false);
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
            Boolean flag = conv.training().get(turn.index());
            boolean content = flag != null ? flag : format.rolesToTrain().contains(turn.role());
            boolean marker = switch (format.trainOnEos()) {
                case TURN -> content;
                case ALL -> true;
                case LAST -> turn.index() == last;
                case NONE -> false;
            };
            List<int[]> detail = conv.detail().get(turn.index());
            if (detail == null || !content) {
                return turn.trained(content, marker);
            }
            return detailSpans(row, turn, chat.text(), messages.get(turn.index()).content(), detail, marker);
        });
        return List.of(new Sample(t.inputIds(), t.labels()));
    }

    /** The trained parts of a content by training_detail (offsets into the content as given), then the marker. */
    private static List<RenderedChat.Span> detailSpans(SourceRow row, RenderedChat.Turn turn, String text, String content,
            List<int[]> detail, boolean marker) {
        String rendered = text.substring(turn.contentStart(), turn.contentEnd());
        int shift = content.indexOf(rendered); // the template may strip the content
        if (rendered.isEmpty() || shift < 0) {
            throw row.error("message " + turn.index() + ": training_detail needs the template to write the content"
                    + " as given (it wrote " + rendered.length() + " of its " + content.length() + " characters)");
        }
        List<RenderedChat.Span> out = new ArrayList<>();
        for (int[] d : detail) {
            int b = Math.max(d[0] - shift, 0);
            int e = Math.min(d[1] - shift, rendered.length());
            if (d[2] == 1 && e > b) {
                out.add(new RenderedChat.Span(turn.contentStart() + b, turn.contentStart() + e));
            }
        }
        out.sort(java.util.Comparator.comparingInt(RenderedChat.Span::start));
        if (marker && !turn.marker().isEmpty()) {
            out.add(turn.marker());
        }
        return out;
    }
}
