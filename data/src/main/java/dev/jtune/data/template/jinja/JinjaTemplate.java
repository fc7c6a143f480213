package dev.jtune.data.template.jinja;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A Jinja2 template parsed once and rendered many times, with the environment transformers sets up for chat
 * templates: {@code trim_blocks}, {@code lstrip_blocks}, the immutable sandbox, the {@code loopcontrols}
 * extension, {@code {% generation %}}, and the globals {@code raise_exception}, {@code strftime_now},
 * {@code range}, {@code namespace}, {@code dict}, with transformers' {@code tojson}. Immutable and
 * thread-safe: each render has its own state.
 */
public final class JinjaTemplate {

    /**
     * The sandbox's caps on one render: loop iterations plus macro calls, macro nesting, characters of
     * output, items of one {@code range()}.
     */
    public record Limits(long maxSteps, int maxDepth, long maxOutputChars, long maxRange) {
        /** Generous for any chat (a million loop steps, 200 nested macro calls, 64M characters). */
        public static final Limits DEFAULT = new Limits(1_000_000, 200, 64L << 20, 100_000);
    }

    /** A rendering and the {@code [start, end)} character spans its {@code {% generation %}} blocks wrote. */
    public record Rendering(String text, List<int[]> generationSpans) {}

    private final String source;
    private final List<Ast.Node> body;
    private final Limits limits;

    private JinjaTemplate(String source, List<Ast.Node> body, Limits limits) {
        this.source = source;
        this.body = body;
        this.limits = limits;
    }

    /** @throws JinjaException naming the line, when the template does not parse */
    public static JinjaTemplate parse(String source) {
        return parse(source, Limits.DEFAULT);
    }

    public static JinjaTemplate parse(String source, Limits limits) {
        Objects.requireNonNull(source, "source");
        return new JinjaTemplate(source, List.copyOf(Parser.parse(source)), Objects.requireNonNull(limits, "limits"));
    }

    public String source() {
        return source;
    }

    /**
     * Renders with {@code variables} (strings, numbers, booleans, null, lists and maps of those).
     *
     * @throws JinjaException for a render error or a {@code raise_exception} call
     */
    public String render(Map<String, ?> variables) {
        return renderTracked(variables).text();
    }

    public Rendering renderTracked(Map<String, ?> variables) {
        Map<String, Object> vars = new LinkedHashMap<>();
        for (Map.Entry<String, ?> e : variables.entrySet()) {
            vars.put(e.getKey(), Py.fromJava(e.getValue()));
        }
        StringBuilder out = new StringBuilder();
        Interpreter in = new Interpreter(limits, out);
        in.renderRoot(body, vars);
        return new Rendering(out.toString(), new ArrayList<>(in.generationSpans()));
    }
}
