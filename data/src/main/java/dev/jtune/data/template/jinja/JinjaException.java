package dev.jtune.data.template.jinja;

/**
 * A template that does not parse or fails while rendering (an undefined attribute of an undefined value, a
 * type error, a sandbox limit), or that called {@code raise_exception} ({@link #raised()} true, the message
 * being the template's own).
 */
public class JinjaException extends RuntimeException {
    private final boolean raised;

    public JinjaException(String message) {
        this(message, false);
    }

    JinjaException(String message, boolean raised) {
        super(message);
        this.raised = raised;
    }

    /** True when the template itself called {@code raise_exception(message)}. */
    public boolean raised() {
        return raised;
    }
}
