package dev.jtune.data.template;

/** A conversation a template cannot render (bad roles, a Jinja error, {@code raise_exception}, ...). */
public class ChatTemplateException extends RuntimeException {
    public ChatTemplateException(String message) {
        super(message);
    }

    public ChatTemplateException(String message, Throwable cause) {
        super(message, cause);
    }
}
