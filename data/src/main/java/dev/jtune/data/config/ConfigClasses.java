package dev.jtune.data.config;

import java.util.Map;
import java.util.Optional;

/**
 * Axolotl's {@code cls_model_config} (loaders/utils.py {@code load_model_config}): the transformers config class that
 * reads base_model's config.json instead of {@code AutoConfig}. For the families jtune implements, the class
 * {@code AutoConfig} picks from config.json's {@code model_type} (transformers' {@code CONFIG_MAPPING}, 5.18) reads it
 * the same way, so naming that class changes nothing; the text class of a multimodal Gemma 3 checkpoint
 * ({@code Gemma3TextConfig}, whose {@code base_config_key} is {@code text_config}) reads the text part, which is what
 * jtune trains of such a checkpoint. Any other class is refused.
 */
public final class ConfigClasses {
    private ConfigClasses() {}

    /** transformers config class → the {@code model_type} it belongs to, for jtune's families. */
    public static final Map<String, String> MODEL_TYPES = Map.of(
            "LlamaConfig", "llama",
            "MistralConfig", "mistral",
            "Qwen2Config", "qwen2",
            "Qwen3Config", "qwen3",
            "Gemma2Config", "gemma2",
            "Gemma3TextConfig", "gemma3_text",
            "Phi3Config", "phi3");

    /** The {@code model_type} of a config class jtune knows. */
    public static Optional<String> modelType(String configClass) {
        return Optional.ofNullable(MODEL_TYPES.get(configClass));
    }

    /** The known classes, sorted, for messages. */
    public static String known() {
        return String.join(", ", new java.util.TreeSet<>(MODEL_TYPES.keySet()));
    }
}
