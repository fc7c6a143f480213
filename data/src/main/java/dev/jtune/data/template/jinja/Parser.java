package dev.jtune.data.template.jinja;

import dev.jtune.data.template.jinja.Ast.Expr;
import dev.jtune.data.template.jinja.Ast.Node;
import dev.jtune.data.template.jinja.Lexer.Kind;
import dev.jtune.data.template.jinja.Lexer.Token;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * A recursive-descent parser for the Jinja2 grammar chat templates use, with Jinja2's operator precedence
 * (loosest first): {@code x if c else y}, {@code or}, {@code and}, {@code not}, comparisons and {@code in},
 * {@code + -}, {@code ~}, {@code * / // %}, {@code **}, unary {@code - +}, then filters and tests
 * ({@code |f}, {@code is t}) and postfix {@code .a [i] [a:b:c] (args)}.
 */
final class Parser {
    private final List<Token> tokens;
    private int pos;

    private Parser(List<Token> tokens) {
        this.tokens = tokens;
    }

    static List<Node> parse(String source) {
        Parser p = new Parser(Lexer.tokenize(source));
        List<Node> body = p.statements(Set.of());
        if (p.peek().kind() != Kind.EOF) {
            Token t = p.peek2();
            throw p.error(t, "unexpected '" + t.text() + "' (no block is open)");
        }
        return body;
    }

    // ---- statements

    /** Statements until EOF or a block tag whose name is in {@code ends} (left unconsumed). */
    private List<Node> statements(Set<String> ends) {
        List<Node> out = new ArrayList<>();
        while (true) {
            Token t = peek();
            switch (t.kind()) {
                case EOF -> {
                    if (!ends.isEmpty()) {
                        throw error(t, "unexpected end of template, expected one of " + ends);
                    }
                    return out;
                }
                case TEXT -> {
                    pos++;
                    out.add(new Ast.Text(t.text()));
                }
                case VAR_BEGIN -> {
                    pos++;
                    Expr e = expression();
                    expect(Kind.VAR_END, "}}");
                    out.add(new Ast.Output(e, t.line()));
                }
                case BLOCK_BEGIN -> {
                    Token name = tokens.get(pos + 1);
                    if (name.kind() != Kind.NAME) {
                        throw error(name, "expected a statement name after {%");
                    }
                    if (ends.contains(name.text())) {
                        return out;
                    }
                    pos += 2;
                    out.add(statement(name));
                }
                default -> throw error(t, "unexpected '" + t.text() + "'");
            }
        }
    }

    private Node statement(Token name) {
        int line = name.line();
        switch (name.text()) {
            case "if" -> {
                List<Expr> tests = new ArrayList<>();
                List<List<Node>> bodies = new ArrayList<>();
                tests.add(expression());
                blockEnd();
                bodies.add(statements(Set.of("elif", "else", "endif")));
                List<Node> orElse = List.of();
                while (true) {
                    String tag = endTag();
                    if (tag.equals("elif")) {
                        tests.add(expression());
                        blockEnd();
                        bodies.add(statements(Set.of("elif", "else", "endif")));
                    } else if (tag.equals("else")) {
                        blockEnd();
                        orElse = statements(Set.of("endif"));
                    } else {
                        blockEnd();
                        return new Ast.If(tests, bodies, orElse);
                    }
                }
            }
            case "for" -> {
                List<String> targets = new ArrayList<>();
                do {
                    targets.add(name());
                } while (acceptOp(","));
                if (!peek().isName("in")) {
                    throw error(peek(), "expected 'in' in the for loop");
                }
                pos++;
                Expr iterable = condExpr(false);
                Expr filter = null;
                if (peek().isName("if")) {
                    pos++;
                    filter = expression();
                }
                if (peek().isName("recursive")) {
                    throw error(peek(), "recursive for loops are not supported");
                }
                blockEnd();
                List<Node> body = statements(Set.of("else", "endfor"));
                List<Node> orElse = List.of();
                if (endTag().equals("else")) {
                    blockEnd();
                    orElse = statements(Set.of("endfor"));
                    endTag();
                }
                blockEnd();
                return new Ast.For(targets, iterable, filter, body, orElse, line);
            }
            case "set" -> {
                String first = name();
                if (acceptOp(".")) {
                    String attr = name();
                    expectOp("=");
                    Expr value = tupleOrExpression();
                    blockEnd();
                    return new Ast.Set(List.of(first), attr, value, line);
                }
                List<String> targets = new ArrayList<>(List.of(first));
                while (acceptOp(",")) {
                    targets.add(name());
                }
                if (peek().kind() == Kind.BLOCK_END && targets.size() == 1) {
                    blockEnd();
                    List<Node> body = statements(Set.of("endset"));
                    endTag();
                    blockEnd();
                    return new Ast.SetBlock(first, body);
                }
                expectOp("=");
                Expr value = tupleOrExpression();
                blockEnd();
                return new Ast.Set(targets, null, value, line);
            }
            case "macro" -> {
                String macro = name();
                expectOp("(");
                List<String> params = new ArrayList<>();
                List<Expr> defaults = new ArrayList<>();
                while (!acceptOp(")")) {
                    params.add(name());
                    defaults.add(acceptOp("=") ? expression() : null);
                    if (!peek().isOp(")")) {
                        expectOp(",");
                    }
                }
                blockEnd();
                List<Node> body = statements(Set.of("endmacro"));
                endTag();
                blockEnd();
                return new Ast.Macro(macro, params, defaults, body);
            }
            case "call" -> {
                Expr call = expression();
                if (!(call instanceof Ast.Call)) {
                    throw error(name, "{% call %} needs a macro call");
                }
                blockEnd();
                List<Node> body = statements(Set.of("endcall"));
                endTag();
                blockEnd();
                return new Ast.CallBlock(call, body, line);
            }
            case "filter" -> {
                Ast.Filter f = filterCall(null, name());
                blockEnd();
                List<Node> body = statements(Set.of("endfilter"));
                endTag();
                blockEnd();
                return new Ast.FilterBlock(f, body);
            }
            case "break" -> {
                blockEnd();
                return new Ast.Break(line);
            }
            case "continue" -> {
                blockEnd();
                return new Ast.Continue(line);
            }
            case "generation" -> {
                blockEnd();
                List<Node> body = statements(Set.of("endgeneration"));
                endTag();
                blockEnd();
                return new Ast.Generation(body);
            }
            default -> throw error(name, "unknown tag '" + name.text() + "'");
        }
    }

    /** Consumes {@code {% name} of an end/intermediate tag, returns the name. */
    private String endTag() {
        expect(Kind.BLOCK_BEGIN, "{%");
        return name();
    }

    private void blockEnd() {
        expect(Kind.BLOCK_END, "%}");
    }

    // ---- expressions

    private Expr tupleOrExpression() {
        Expr first = expression();
        if (!peek().isOp(",")) {
            return first;
        }
        List<Expr> items = new ArrayList<>(List.of(first));
        while (acceptOp(",")) {
            items.add(expression());
        }
        return new Ast.TupleExpr(items);
    }

    Expr expression() {
        return condExpr(true);
    }

    private Expr condExpr(boolean withCondition) {
        Expr e = or();
        while (withCondition && peek().isName("if")) {
            pos++;
            Expr test = or();
            Expr orElse = null;
            if (peek().isName("else")) {
                pos++;
                orElse = condExpr(true);
            }
            e = new Ast.Cond(test, e, orElse);
        }
        return e;
    }

    private Expr or() {
        Expr e = and();
        while (peek().isName("or")) {
            pos++;
            e = new Ast.Or(e, and());
        }
        return e;
    }

    private Expr and() {
        Expr e = not();
        while (peek().isName("and")) {
            pos++;
            e = new Ast.And(e, not());
        }
        return e;
    }

    private Expr not() {
        if (peek().isName("not")) {
            pos++;
            return new Ast.Not(not());
        }
        return compare();
    }

    private Expr compare() {
        int line = peek().line();
        Expr first = math1();
        List<String> ops = new ArrayList<>();
        List<Expr> rest = new ArrayList<>();
        while (true) {
            Token t = peek();
            if (t.kind() == Kind.OP && Set.of("==", "!=", "<", "<=", ">", ">=").contains(t.text())) {
                pos++;
                ops.add(t.text());
            } else if (t.isName("in")) {
                pos++;
                ops.add("in");
            } else if (t.isName("not") && tokens.get(pos + 1).isName("in")) {
                pos += 2;
                ops.add("notin");
            } else {
                break;
            }
            rest.add(math1());
        }
        return ops.isEmpty() ? first : new Ast.Compare(first, ops, rest, line);
    }

    private Expr math1() {
        Expr e = concat();
        while (peek().isOp("+") || peek().isOp("-")) {
            Token t = tokens.get(pos++);
            e = new Ast.Binary(t.text(), e, concat(), t.line());
        }
        return e;
    }

    private Expr concat() {
        Expr e = math2();
        while (peek().isOp("~")) {
            Token t = tokens.get(pos++);
            e = new Ast.Binary("~", e, math2(), t.line());
        }
        return e;
    }

    private Expr math2() {
        Expr e = pow();
        while (peek().isOp("*") || peek().isOp("/") || peek().isOp("//") || peek().isOp("%")) {
            Token t = tokens.get(pos++);
            e = new Ast.Binary(t.text(), e, pow(), t.line());
        }
        return e;
    }

    private Expr pow() {
        Expr e = unary();
        while (peek().isOp("**")) {
            Token t = tokens.get(pos++);
            e = new Ast.Binary("**", e, unary(), t.line());
        }
        return e;
    }

    private Expr unary() {
        return unary(true);
    }

    /** As Jinja2: {@code -x|f} is {@code (-x)|f}. */
    private Expr unary(boolean withFilters) {
        Token t = peek();
        Expr e;
        if (t.isOp("-") || t.isOp("+")) {
            pos++;
            e = postfix(new Ast.Unary(t.text(), unary(false), t.line()));
        } else {
            e = postfix(primary());
        }
        return withFilters ? filtersAndTests(e) : e;
    }

    private Expr filtersAndTests(Expr e) {
        while (true) {
            Token t = peek();
            if (t.isOp("|")) {
                pos++;
                e = postfix(filterCall(e, name()));
            } else if (t.isName("is")) {
                pos++;
                boolean negated = false;
                if (peek().isName("not")) {
                    pos++;
                    negated = true;
                }
                String test = testName();
                List<Expr> args = new ArrayList<>();
                Token n = peek();
                if (n.isOp("(")) {
                    pos++;
                    List<String> kwNames = new ArrayList<>();
                    callArgs(args, kwNames, new ArrayList<>());
                } else if (n.kind() == Kind.STRING || n.kind() == Kind.INT || n.kind() == Kind.FLOAT
                        || n.isOp("[") || n.isOp("{")
                        || (n.kind() == Kind.NAME && !Set.of("else", "or", "and", "if", "is", "in", "not").contains(n.text()))) {
                    args.add(postfix(primary()));
                }
                e = new Ast.Test(e, test, args, negated, t.line());
            } else {
                return e;
            }
        }
    }

    /** A test's name: a name, or a keyword/operator Jinja allows there ({@code none}, {@code ==}, ...). */
    private String testName() {
        Token t = tokens.get(pos++);
        if (t.kind() == Kind.NAME) {
            return t.text();
        }
        throw error(t, "expected a test name after 'is'");
    }

    private Ast.Filter filterCall(Expr value, String name) {
        int line = tokens.get(pos - 1).line();
        List<Expr> args = new ArrayList<>();
        List<String> kwNames = new ArrayList<>();
        List<Expr> kwValues = new ArrayList<>();
        if (acceptOp("(")) {
            callArgs(args, kwNames, kwValues);
        }
        return new Ast.Filter(value, name, args, kwNames, kwValues, line);
    }

    /** Arguments after '(' up to and including ')'. */
    private void callArgs(List<Expr> args, List<String> kwNames, List<Expr> kwValues) {
        while (!acceptOp(")")) {
            if (peek().kind() == Kind.NAME && tokens.get(pos + 1).isOp("=")) {
                kwNames.add(tokens.get(pos).text());
                pos += 2;
                kwValues.add(expression());
            } else {
                if (!kwNames.isEmpty()) {
                    throw error(peek(), "a positional argument after keyword arguments");
                }
                args.add(expression());
            }
            if (!peek().isOp(")")) {
                expectOp(",");
            }
        }
    }

    private Expr postfix(Expr e) {
        while (true) {
            Token t = peek();
            if (t.isOp(".")) {
                pos++;
                Token n = tokens.get(pos++);
                if (n.kind() == Kind.NAME) {
                    e = new Ast.Attr(e, n.text(), n.line());
                } else if (n.kind() == Kind.INT) {
                    e = new Ast.Item(e, new Ast.Literal(n.value()), n.line());
                } else {
                    throw error(n, "expected an attribute name after '.'");
                }
            } else if (t.isOp("[")) {
                pos++;
                e = subscript(e, t.line());
            } else if (t.isOp("(")) {
                pos++;
                List<Expr> args = new ArrayList<>();
                List<String> kwNames = new ArrayList<>();
                List<Expr> kwValues = new ArrayList<>();
                callArgs(args, kwNames, kwValues);
                e = new Ast.Call(e, args, kwNames, kwValues, t.line());
            } else {
                return e;
            }
        }
    }

    private Expr subscript(Expr target, int line) {
        Expr[] parts = new Expr[3];
        int part = 0;
        boolean slice = false;
        while (!acceptOp("]")) {
            if (acceptOp(":")) {
                slice = true;
                part++;
                if (part > 2) {
                    throw error(peek(), "too many ':' in a slice");
                }
            } else {
                if (parts[part] != null) {
                    throw error(peek(), "expected ':' or ']' in a subscript");
                }
                parts[part] = expression();
            }
        }
        if (!slice) {
            if (parts[0] == null) {
                throw error(peek(), "empty subscript");
            }
            return new Ast.Item(target, parts[0], line);
        }
        return new Ast.Slice(target, parts[0], parts[1], parts[2], line);
    }

    private Expr primary() {
        Token t = tokens.get(pos++);
        switch (t.kind()) {
            case STRING -> {
                StringBuilder sb = new StringBuilder(t.text());
                while (peek().kind() == Kind.STRING) { // adjacent literals concatenate, as in Python
                    sb.append(tokens.get(pos++).text());
                }
                return new Ast.Literal(sb.toString());
            }
            case INT, FLOAT -> {
                return new Ast.Literal(t.value());
            }
            case NAME -> {
                return switch (t.text()) {
                    case "true", "True" -> new Ast.Literal(Boolean.TRUE);
                    case "false", "False" -> new Ast.Literal(Boolean.FALSE);
                    case "none", "None" -> new Ast.Literal(null);
                    default -> new Ast.Name(t.text(), t.line());
                };
            }
            case OP -> {
                switch (t.text()) {
                    case "(" -> {
                        if (acceptOp(")")) {
                            return new Ast.TupleExpr(List.of());
                        }
                        Expr first = expression();
                        if (acceptOp(")")) {
                            return first;
                        }
                        List<Expr> items = new ArrayList<>(List.of(first));
                        while (acceptOp(",")) {
                            if (peek().isOp(")")) {
                                break;
                            }
                            items.add(expression());
                        }
                        expectOp(")");
                        return new Ast.TupleExpr(items);
                    }
                    case "[" -> {
                        List<Expr> items = new ArrayList<>();
                        while (!acceptOp("]")) {
                            items.add(expression());
                            if (!peek().isOp("]")) {
                                expectOp(",");
                            }
                        }
                        return new Ast.ListExpr(items);
                    }
                    case "{" -> {
                        List<Expr> keys = new ArrayList<>();
                        List<Expr> values = new ArrayList<>();
                        while (!acceptOp("}")) {
                            keys.add(expression());
                            expectOp(":");
                            values.add(expression());
                            if (!peek().isOp("}")) {
                                expectOp(",");
                            }
                        }
                        return new Ast.DictExpr(keys, values);
                    }
                    default -> throw error(t, "unexpected '" + t.text() + "'");
                }
            }
            default -> throw error(t, "unexpected " + describe(t));
        }
    }

    // ---- helpers

    private Token peek() {
        return tokens.get(pos);
    }

    private Token peek2() {
        return pos + 1 < tokens.size() ? tokens.get(pos + 1) : tokens.get(pos);
    }

    private String name() {
        Token t = tokens.get(pos++);
        if (t.kind() != Kind.NAME) {
            throw error(t, "expected a name, got " + describe(t));
        }
        return t.text();
    }

    private boolean acceptOp(String op) {
        if (peek().isOp(op)) {
            pos++;
            return true;
        }
        return false;
    }

    private void expectOp(String op) {
        Token t = tokens.get(pos);
        if (!t.isOp(op)) {
            throw error(t, "expected '" + op + "', got " + describe(t));
        }
        pos++;
    }

    private void expect(Kind kind, String what) {
        Token t = tokens.get(pos);
        if (t.kind() != kind) {
            throw error(t, "expected '" + what + "', got " + describe(t));
        }
        pos++;
    }

    private static String describe(Token t) {
        return switch (t.kind()) {
            case EOF -> "the end of the template";
            case TEXT -> "text";
            case STRING -> "a string";
            case BLOCK_END -> "'%}'";
            case VAR_END -> "'}}'";
            default -> "'" + t.text() + "'";
        };
    }

    private JinjaException error(Token t, String message) {
        return new JinjaException("line " + t.line() + ": " + message);
    }
}
