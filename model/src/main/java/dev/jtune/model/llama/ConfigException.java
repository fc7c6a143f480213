package dev.jtune.model.llama;

/** A model's config.json is missing, malformed, or describes something jtune does not support. */
public final class ConfigException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
        super(message);
    }
}
