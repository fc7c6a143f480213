package dev.jtune.data.template.jinja;

import dev.jtune.data.template.jinja.Ast.Expr;
import dev.jtune.data.template.jinja.Ast.Node;
import dev.jtune.data.template.jinja.Py.Callable;
import dev.jtune.data.template.jinja.Py.Namespace;
import dev.jtune.data.template.jinja.Py.Undefined;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Walks the parsed template once per render. The sandbox is structural: a template reaches only the values
 * it was given and the functions, filters, tests and methods written out below; nothing is looked up by
 * reflection, so it cannot reach Java classes, files or the network. Loops, macro calls, recursion depth and
 * output size are capped ({@link JinjaTemplate.Limits}); exceeding a cap is a {@link JinjaException}.
 */
final class Interpreter {

    /** A scope: {@code for} iterations and macro calls open one; {@code if} does not (as in Jinja2). */
    private static final class Frame {
        final Map<String, Object> vars = new HashMap<>();
        final Frame parent;

        Frame(Frame parent) {
            this.parent = parent;
        }

        Object lookup(String name) {
            for (Frame f = this; f != null; f = f.parent) {
                Object v = f.vars.get(name);
                if (v != null || f.vars.containsKey(name)) {
                    return v;
                }
            }
            return new Undefined("'" + name + "' is undefined");
        }
    }

    /** Jinja's {@code loop} variable. */
    static final class Loop {
        final List<Object> items;
        int index0;

        Loop(List<Object> items) {
            this.items = items;
        }

        Object attr(String name) {
            int n = items.size();
            return switch (name) {
                case "index0" -> (long) index0;
                case "index" -> (long) index0 + 1;
                case "revindex0" -> (long) (n - index0 - 1);
                case "revindex" -> (long) (n - index0);
                case "first" -> index0 == 0;
                case "last" -> index0 == n - 1;
                case "length" -> (long) n;
                case "depth" -> 1L;
                case "depth0" -> 0L;
                case "previtem" -> index0 > 0 ? items.get(index0 - 1) : new Undefined("there is no previous item");
                case "nextitem" -> index0 < n - 1 ? items.get(index0 + 1) : new Undefined("there is no next item");
                case "cycle" -> (Callable) (args, kw) -> {
                    if (args.isEmpty()) {
                        throw new JinjaException("loop.cycle() needs at least one argument");
                    }
                    return args.get(index0 % args.size());
                };
                default -> new Undefined("the loop has no attribute '" + name + "'");
            };
        }
    }

    private static final class BreakSignal extends RuntimeException {
        BreakSignal() {
            super(null, null, false, false);
        }
    }

    private static final class ContinueSignal extends RuntimeException {
        ContinueSignal() {
            super(null, null, false, false);
        }
    }

    private static final BreakSignal BREAK = new BreakSignal();
    private static final ContinueSignal CONTINUE = new ContinueSignal();

    private final JinjaTemplate.Limits limits;
    private final StringBuilder root;
    private final List<int[]> generationSpans = new ArrayList<>();
    private long steps;
    private int depth;

    Interpreter(JinjaTemplate.Limits limits, StringBuilder root) {
        this.limits = limits;
        this.root = root;
    }

    List<int[]> generationSpans() {
        return generationSpans;
    }

    void renderRoot(List<Node> body, Map<String, Object> variables) {
        Frame globals = new Frame(null);
        globals.vars.put("range", (Callable) this::range);
        globals.vars.put("namespace", (Callable) Interpreter::namespace);
        globals.vars.put("dict", (Callable) (args, kw) -> new LinkedHashMap<Object, Object>(kw));
        globals.vars.put("raise_exception", (Callable) (args, kw) -> {
            throw new JinjaException(args.isEmpty() ? "" : Py.str(args.get(0)), true);
        });
        globals.vars.put("strftime_now", (Callable) (args, kw) -> Strftime.now(Py.requireString(arg(args, kw, 0, "format"), "strftime_now's format")));
        Frame top = new Frame(globals);
        for (Map.Entry<String, Object> e : variables.entrySet()) {
            top.vars.put(e.getKey(), e.getValue());
        }
        render(body, top, root);
    }

    // ---- statements

    private void render(List<Node> body, Frame frame, StringBuilder out) {
        for (Node node : body) {
            switch (node) {
                case Ast.Text t -> append(out, t.text());
                case Ast.Output o -> append(out, Py.str(eval(o.expr(), frame)));
                case Ast.If i -> {
                    boolean done = false;
                    for (int k = 0; k < i.tests().size() && !done; k++) {
                        if (Py.truthy(eval(i.tests().get(k), frame))) {
                            render(i.bodies().get(k), frame, out);
                            done = true;
                        }
                    }
                    if (!done) {
                        render(i.orElse(), frame, out);
                    }
                }
                case Ast.For f -> renderFor(f, frame, out);
                case Ast.Set s -> assign(s, frame);
                case Ast.SetBlock s -> {
                    StringBuilder sb = new StringBuilder();
                    render(s.body(), frame, sb);
                    frame.vars.put(s.target(), sb.toString());
                }
                case Ast.Macro m -> frame.vars.put(m.name(), macro(m, frame));
                case Ast.CallBlock c -> {
                    Ast.Call call = (Ast.Call) c.call();
                    Callable caller = (args, kw) -> {
                        StringBuilder sb = new StringBuilder();
                        render(c.body(), new Frame(frame), sb);
                        return sb.toString();
                    };
                    Object fn = eval(call.fn(), frame);
                    List<Object> args = evalAll(call.args(), frame);
                    Map<String, Object> kw = evalKw(call.kwNames(), call.kwValues(), frame);
                    kw.put("caller", caller);
                    append(out, Py.str(callValue(fn, args, kw, c.line())));
                }
                case Ast.FilterBlock fb -> {
                    StringBuilder sb = new StringBuilder();
                    render(fb.body(), frame, sb);
                    Ast.Filter f = fb.filter();
                    append(out, Py.str(Filters.apply(this, f.name(), sb.toString(), evalAll(f.args(), frame),
                            evalKw(f.kwNames(), f.kwValues(), frame), f.line())));
                }
                case Ast.Break b -> throw BREAK;
                case Ast.Continue c -> throw CONTINUE;
                case Ast.Generation g -> {
                    int start = out.length();
                    render(g.body(), frame, out);
                    if (out == root) {
                        generationSpans.add(new int[] {start, out.length()});
                    }
                }
            }
        }
    }

    private void renderFor(Ast.For f, Frame frame, StringBuilder out) {
        List<Object> source = Py.iterate(eval(f.iterable(), frame));
        List<Object> items = source;
        if (f.filter() != null) {
            items = new ArrayList<>();
            for (Object item : source) {
                Frame probe = new Frame(frame);
                bindTargets(f.targets(), item, probe, f.line());
                if (Py.truthy(eval(f.filter(), probe))) {
                    items.add(item);
                }
            }
        }
        if (items.isEmpty()) {
            render(f.orElse(), frame, out);
            return;
        }
        Loop loop = new Loop(items);
        for (int i = 0; i < items.size(); i++) {
            step(f.line());
            loop.index0 = i;
            Frame it = new Frame(frame);
            it.vars.put("loop", loop);
            bindTargets(f.targets(), items.get(i), it, f.line());
            try {
                render(f.body(), it, out);
            } catch (ContinueSignal c) {
                // next item
            } catch (BreakSignal b) {
                break;
            }
        }
    }

    private void bindTargets(List<String> targets, Object item, Frame frame, int line) {
        if (targets.size() == 1) {
            frame.vars.put(targets.get(0), item);
            return;
        }
        List<Object> parts = Py.iterate(item);
        if (parts.size() != targets.size()) {
            throw new JinjaException("line " + line + ": cannot unpack " + parts.size() + " values into "
                    + targets.size() + " names");
        }
        for (int k = 0; k < targets.size(); k++) {
            frame.vars.put(targets.get(k), parts.get(k));
        }
    }

    private void assign(Ast.Set s, Frame frame) {
        Object value = eval(s.value(), frame);
        if (s.attr() != null) {
            Object target = frame.lookup(s.targets().get(0));
            if (!(target instanceof Namespace ns)) {
                throw new JinjaException("line " + s.line() + ": cannot assign attribute '" + s.attr() + "' of "
                        + Py.typeName(target) + " (only a namespace() takes attributes)");
            }
            ns.attrs.put(s.attr(), value);
            return;
        }
        bindTargets(s.targets(), value, frame, s.line());
    }

    private Callable macro(Ast.Macro m, Frame defining) {
        return (args, kw) -> {
            if (++depth > limits.maxDepth()) {
                throw new JinjaException("macro " + m.name() + ": calls nested deeper than " + limits.maxDepth());
            }
            try {
                step(0);
                Frame f = new Frame(defining);
                if (args.size() > m.params().size()) {
                    throw new JinjaException("macro " + m.name() + " takes " + m.params().size()
                            + " arguments, got " + args.size());
                }
                for (int i = 0; i < m.params().size(); i++) {
                    String p = m.params().get(i);
                    Object v;
                    if (i < args.size()) {
                        v = args.get(i);
                    } else if (kw.containsKey(p)) {
                        v = kw.get(p);
                    } else if (m.defaults().get(i) != null) {
                        v = eval(m.defaults().get(i), f);
                    } else {
                        v = new Undefined("macro " + m.name() + "'s argument '" + p + "' was not given");
                    }
                    f.vars.put(p, v);
                }
                for (String k : kw.keySet()) {
                    if (k.equals("caller")) {
                        f.vars.put("caller", kw.get(k));
                    } else if (!m.params().contains(k)) {
                        throw new JinjaException("macro " + m.name() + " takes no keyword argument '" + k + "'");
                    }
                }
                StringBuilder sb = new StringBuilder();
                render(m.body(), f, sb);
                return sb.toString();
            } finally {
                depth--;
            }
        };
    }

    // ---- expressions

    Object eval(Expr e, Frame frame) {
        return switch (e) {
            case Ast.Literal l -> l.value();
            case Ast.Name n -> frame.lookup(n.name());
            case Ast.Attr a -> Methods.attr(eval(a.target(), frame), a.name(), a.line());
            case Ast.Item i -> item(eval(i.target(), frame), eval(i.key(), frame), i.line());
            case Ast.Slice s -> Py.slice(eval(s.target(), frame), evalOrNull(s.start(), frame),
                    evalOrNull(s.stop(), frame), evalOrNull(s.step(), frame));
            case Ast.Call c -> call(c, frame);
            case Ast.Filter f -> Filters.apply(this, f.name(), eval(f.value(), frame), evalAll(f.args(), frame),
                    evalKw(f.kwNames(), f.kwValues(), frame), f.line());
            case Ast.Test t -> Tests.apply(t.name(), eval(t.value(), frame), evalAll(t.args(), frame), t.line()) != t.negated();
            case Ast.Binary b -> Ops.binary(b.op(), eval(b.left(), frame), eval(b.right(), frame), b.line());
            case Ast.Unary u -> Ops.unary(u.op(), eval(u.operand(), frame), u.line());
            case Ast.And a -> {
                Object l = eval(a.left(), frame);
                yield Py.truthy(l) ? eval(a.right(), frame) : l;
            }
            case Ast.Or o -> {
                Object l = eval(o.left(), frame);
                yield Py.truthy(l) ? l : eval(o.right(), frame);
            }
            case Ast.Not n -> !Py.truthy(eval(n.operand(), frame));
            case Ast.Compare c -> compare(c, frame);
            case Ast.Cond c -> Py.truthy(eval(c.test(), frame)) ? eval(c.then(), frame)
                    : c.orElse() == null ? new Undefined("the conditional expression had no else") : eval(c.orElse(), frame);
            case Ast.ListExpr l -> evalAll(l.items(), frame);
            case Ast.TupleExpr t -> evalAll(t.items(), frame);
            case Ast.DictExpr d -> {
                Map<Object, Object> m = new LinkedHashMap<>();
                for (int i = 0; i < d.keys().size(); i++) {
                    m.put(Py.mapKey(eval(d.keys().get(i), frame)), eval(d.values().get(i), frame));
                }
                yield m;
            }
        };
    }

    private Object evalOrNull(Expr e, Frame frame) {
        if (e == null) {
            return null;
        }
        Object v = eval(e, frame);
        return v instanceof Undefined ? null : v;
    }

    private List<Object> evalAll(List<Expr> exprs, Frame frame) {
        List<Object> out = new ArrayList<>(exprs.size());
        for (Expr x : exprs) {
            out.add(eval(x, frame));
        }
        return out;
    }

    private Map<String, Object> evalKw(List<String> names, List<Expr> values, Frame frame) {
        Map<String, Object> kw = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            kw.put(names.get(i), eval(values.get(i), frame));
        }
        return kw;
    }

    /** {@code x[key]}: Jinja tries the item, then (for a string key) the attribute. */
    private static Object item(Object target, Object key, int line) {
        if (target instanceof Undefined u) {
            throw new JinjaException("line " + line + ": " + Py.undefinedMessage(u) + " (looking up " + Py.repr(key) + ")");
        }
        Object v = Py.getItem(target, key);
        if (v instanceof Undefined && key instanceof String s && !(target instanceof Map<?, ?>)) {
            Object a = Methods.attr(target, s, line);
            return a;
        }
        if (v instanceof Undefined && target instanceof Map<?, ?>) {
            return new Undefined("'dict object' has no attribute " + Py.repr(key));
        }
        return v;
    }

    private Object call(Ast.Call c, Frame frame) {
        List<Object> args = evalAll(c.args(), frame);
        Map<String, Object> kw = evalKw(c.kwNames(), c.kwValues(), frame);
        if (c.fn() instanceof Ast.Attr a) {
            Object target = eval(a.target(), frame);
            if (target instanceof String || target instanceof Py.Markup || target instanceof List<?> || target instanceof Map<?, ?>) {
                return Methods.call(target, a.name(), args, kw, a.line());
            }
            return callValue(Methods.attr(target, a.name(), a.line()), args, kw, c.line());
        }
        return callValue(eval(c.fn(), frame), args, kw, c.line());
    }

    private static Object callValue(Object fn, List<Object> args, Map<String, Object> kw, int line) {
        if (fn instanceof Callable f) {
            return f.call(args, kw);
        }
        if (fn instanceof Undefined u) {
            throw new JinjaException("line " + line + ": " + Py.undefinedMessage(u) + " (called as a function)");
        }
        throw new JinjaException("line " + line + ": '" + Py.typeName(fn) + "' object is not callable");
    }

    private Object compare(Ast.Compare c, Frame frame) {
        Object left = eval(c.first(), frame);
        for (int i = 0; i < c.ops().size(); i++) {
            Object right = eval(c.rest().get(i), frame);
            boolean ok = switch (c.ops().get(i)) {
                case "==" -> Py.eq(left, right);
                case "!=" -> !Py.eq(left, right);
                case "<" -> Ops.order(left, right, c.line()) < 0;
                case "<=" -> Ops.order(left, right, c.line()) <= 0;
                case ">" -> Ops.order(left, right, c.line()) > 0;
                case ">=" -> Ops.order(left, right, c.line()) >= 0;
                case "in" -> Py.contains(right, left);
                case "notin" -> !Py.contains(right, left);
                default -> throw new IllegalStateException(c.ops().get(i));
            };
            if (!ok) {
                return false;
            }
            left = right;
        }
        return true;
    }

    // ---- globals and limits

    private Object range(List<Object> args, Map<String, Object> kw) {
        long start = 0;
        long stop;
        long step = 1;
        if (args.size() == 1) {
            stop = Py.toLong(args.get(0));
        } else if (args.size() == 2 || args.size() == 3) {
            start = Py.toLong(args.get(0));
            stop = Py.toLong(args.get(1));
            if (args.size() == 3) {
                step = Py.toLong(args.get(2));
            }
        } else {
            throw new JinjaException("range expected 1 to 3 arguments, got " + args.size());
        }
        if (step == 0) {
            throw new JinjaException("range() arg 3 must not be zero");
        }
        long n = step > 0 ? Math.max(0, (stop - start + step - 1) / step) : Math.max(0, (start - stop - step - 1) / -step);
        if (n > limits.maxRange()) {
            throw new JinjaException("range of " + n + " items is more than the sandbox allows (" + limits.maxRange() + ")");
        }
        List<Object> out = new ArrayList<>((int) n);
        for (long i = 0; i < n; i++) {
            out.add(start + i * step);
        }
        return out;
    }

    private static Object namespace(List<Object> args, Map<String, Object> kw) {
        Namespace ns = new Namespace();
        for (Object a : args) {
            if (a instanceof Map<?, ?> m) {
                ns.attrs.putAll(m);
            } else {
                throw new JinjaException("namespace() takes keyword arguments or a dict, not " + Py.typeName(a));
            }
        }
        ns.attrs.putAll(kw);
        return ns;
    }

    static Object arg(List<Object> args, Map<String, Object> kw, int index, String name) {
        if (index < args.size()) {
            return args.get(index);
        }
        if (kw.containsKey(name)) {
            return kw.get(name);
        }
        throw new JinjaException("missing argument '" + name + "'");
    }

    private void step(int line) {
        if (++steps > limits.maxSteps()) {
            throw new JinjaException((line > 0 ? "line " + line + ": " : "") + "more than " + limits.maxSteps()
                    + " loop iterations and macro calls in one render (the sandbox's limit)");
        }
    }

    private void append(StringBuilder out, String s) {
        out.append(s);
        if (out.length() > limits.maxOutputChars()) {
            throw new JinjaException("the rendering is longer than " + limits.maxOutputChars() + " characters (the sandbox's limit)");
        }
    }

    /** For filters that call back into the template's values (map, select with tests). */
    void countStep() {
        step(0);
    }
}
