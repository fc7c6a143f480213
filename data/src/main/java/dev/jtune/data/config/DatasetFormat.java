package dev.jtune.data.config;

import java.util.List;
import java.util.Map;
import java.util.Optional;

/** How the rows of a dataset are laid out and turned into prompts: one record per family of types. */
public sealed interface DatasetFormat {
    /** The {@code type:} this format was read from. */
    DatasetType type();

    /**
     * Instruction rows formatted with Axolotl's Alpaca prompter: {@code kind} says which columns hold each part
     * and which system line the prompter writes, {@code style} the turn formats. For {@link InstructionKind#ALPACA}
     * the field names say which columns hold the instruction, the input and the output (jtune reads
     * {@code field_*} there; the other kinds read Axolotl's fixed columns, and {@code field_*} is refused with them).
     */
    record Alpaca(InstructionKind kind, PromptStyle style, String fieldInstruction, String fieldInput, String fieldOutput)
            implements DatasetFormat {
        public static final Alpaca DEFAULT = new Alpaca("instruction", "input", "output");

        /** {@code type: alpaca} with these columns, in the default ({@code instruct}) style. */
        public Alpaca(String fieldInstruction, String fieldInput, String fieldOutput) {
            this(InstructionKind.ALPACA, PromptStyle.INSTRUCT, fieldInstruction, fieldInput, fieldOutput);
        }

        @Override
        public DatasetType type() {
            return DatasetType.ALPACA;
        }
    }

    /**
     * {@code pretraining_dataset} entry of {@code type: pretrain} (Axolotl's prompt_strategies/pretrain.py): the
     * text of column {@code textColumn} in overlapping windows of {@code sequence_len - 1} tokens, EOS appended to each.
     */
    record Pretrain(String textColumn) implements DatasetFormat {
        public static final Pretrain DEFAULT = new Pretrain("text");

        @Override
        public DatasetType type() {
            return DatasetType.PRETRAIN;
        }
    }

    /** Raw text in one column. */
    record Completion(String field) implements DatasetFormat {
        public static final Completion DEFAULT = new Completion("text");

        @Override
        public DatasetType type() {
            return DatasetType.COMPLETION;
        }
    }

    /**
     * Conversations ({@code sharegpt} or {@code chat_template}) rendered with a chat template.
     *
     * @param fieldMessages column holding the list of turns
     * @param messageProperties which keys of a turn hold its role and its content
     * @param rolesToTrain roles (after {@code roles} mapping) whose turns are labels
     * @param trainOnEos which end-of-turn tokens are labels
     * @param roles target role to the role names in the data that mean it, e.g. {@code assistant: [gpt]};
     *     empty means roles are taken as they are
     * @param chatTemplate this dataset's template, overriding the top-level {@code chat_template}
     * @param dropSystemMessage leave out system turns
     */
    record Chat(DatasetType type, String fieldMessages, MessageProperties messageProperties, List<String> rolesToTrain,
            TrainOnEos trainOnEos, Map<String, List<String>> roles, Optional<String> chatTemplate,
            boolean dropSystemMessage, MessageExtras extras) implements DatasetFormat {
        public Chat {
            if (type != DatasetType.SHAREGPT && type != DatasetType.CHAT_TEMPLATE) {
                throw new IllegalArgumentException("not a conversation type: " + type);
            }
            rolesToTrain = List.copyOf(rolesToTrain);
            roles = Map.copyOf(roles);
        }

        public Chat(DatasetType type, String fieldMessages, MessageProperties messageProperties, List<String> rolesToTrain,
                TrainOnEos trainOnEos, Map<String, List<String>> roles, Optional<String> chatTemplate,
                boolean dropSystemMessage) {
            this(type, fieldMessages, messageProperties, rolesToTrain, trainOnEos, roles, chatTemplate,
                    dropSystemMessage, MessageExtras.DEFAULT);
        }
    }

    /**
     * Axolotl's per-message keys of a chat dataset.
     *
     * @param fieldTraining {@code message_field_training}: a message's boolean that overrides
     *     {@code roles_to_train} for it
     * @param fieldTrainingDetail {@code message_field_training_detail}: a message's list of
     *     {@code {begin_offset, end_offset, train}} (character offsets in its content, end inclusive): only the
     *     parts with {@code train: true} of that content are trained
     * @param splitThinking {@code split_thinking}: an assistant content {@code <think>R</think>C} becomes
     *     {@code reasoning_content: R} and content {@code C}, for templates that write reasoning themselves
     * @param fieldTools {@code field_tools}: the row's list of tool schemas passed to the template as {@code tools}
     */
    record MessageExtras(Optional<String> fieldTraining, Optional<String> fieldTrainingDetail, boolean splitThinking,
            String fieldTools) {
        public static final MessageExtras DEFAULT = new MessageExtras(Optional.empty(), Optional.empty(), false, "tools");
    }

    /** No {@code type:}: rows already tokenized ({@code input_ids}, {@code attention_mask}, {@code labels}). */
    record PreTokenized() implements DatasetFormat {
        @Override
        public DatasetType type() {
            return DatasetType.PRE_TOKENIZED;
        }
    }

    /** {@code type: input_output}: template-free segments, each {@code {text, label}}. */
    record InputOutput(String fieldSegments) implements DatasetFormat {
        @Override
        public DatasetType type() {
            return DatasetType.INPUT_OUTPUT;
        }
    }

    /**
     * Axolotl's user-defined prompt format: the prompt is {@code system_format} with {@code {system}} (the row's
     * system field, else {@code system_prompt}; nothing when both are empty), then {@code format} with
     * {@code {instruction}} and {@code {input}} ({@code no_input_format} when the input is empty); the output
     * follows, trained, with EOS.
     */
    record UserDefined(String fieldInstruction, String fieldInput, String fieldOutput, String fieldSystem, String format,
            String noInputFormat, String systemPrompt, String systemFormat) implements DatasetFormat {
        @Override
        public DatasetType type() {
            return DatasetType.USER_DEFINED;
        }
    }

    /** The keys of one turn that hold its role and its content ({@code message_property_mappings}). */
    record MessageProperties(String role, String content) {
        /** {@code chat_template} layout. */
        public static final MessageProperties ROLE_CONTENT = new MessageProperties("role", "content");
        /** ShareGPT layout. */
        public static final MessageProperties FROM_VALUE = new MessageProperties("from", "value");
    }
}
