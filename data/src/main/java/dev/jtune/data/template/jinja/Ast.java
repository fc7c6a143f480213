package dev.jtune.data.template.jinja;

import java.util.List;

/** The parsed template: statements ({@link Node}) and expressions ({@link Expr}), each with its line. */
final class Ast {
    private Ast() {}

    sealed interface Node permits Text, Output, If, For, Set, SetBlock, Macro, CallBlock, FilterBlock, Break,
            Continue, Generation {}

    record Text(String text) implements Node {}

    record Output(Expr expr, int line) implements Node {}

    /** {@code if}/{@code elif} branches in order, then the {@code else} body (empty when absent). */
    record If(List<Expr> tests, List<List<Node>> bodies, List<Node> orElse) implements Node {}

    record For(List<String> targets, Expr iterable, Expr filter, List<Node> body, List<Node> orElse, int line)
            implements Node {}

    /** {@code set a = x}, {@code set a, b = x}, or {@code set ns.attr = x} (attr non-null). */
    record Set(List<String> targets, String attr, Expr value, int line) implements Node {}

    record SetBlock(String target, List<Node> body) implements Node {}

    record Macro(String name, List<String> params, List<Expr> defaults, List<Node> body) implements Node {}

    /** {@code {% call macro(args) %}body{% endcall %}}: the body is the macro's {@code caller()}. */
    record CallBlock(Expr call, List<Node> body, int line) implements Node {}

    record FilterBlock(Filter filter, List<Node> body) implements Node {}

    record Break(int line) implements Node {}

    record Continue(int line) implements Node {}

    /** transformers' {@code {% generation %}...{% endgeneration %}}: renders its body, records its span. */
    record Generation(List<Node> body) implements Node {}

    sealed interface Expr permits Literal, Name, Attr, Item, Slice, Call, Filter, Test, Binary, Unary, And, Or,
            Not, Compare, Cond, ListExpr, TupleExpr, DictExpr {}

    record Literal(Object value) implements Expr {}

    record Name(String name, int line) implements Expr {}

    record Attr(Expr target, String name, int line) implements Expr {}

    record Item(Expr target, Expr key, int line) implements Expr {}

    record Slice(Expr target, Expr start, Expr stop, Expr step, int line) implements Expr {}

    record Call(Expr fn, List<Expr> args, List<String> kwNames, List<Expr> kwValues, int line) implements Expr {}

    /** {@code value | name(args)}; value is null for a {@code {% filter %}} block's filter. */
    record Filter(Expr value, String name, List<Expr> args, List<String> kwNames, List<Expr> kwValues, int line)
            implements Expr {}

    record Test(Expr value, String name, List<Expr> args, boolean negated, int line) implements Expr {}

    record Binary(String op, Expr left, Expr right, int line) implements Expr {}

    record Unary(String op, Expr operand, int line) implements Expr {}

    record And(Expr left, Expr right) implements Expr {}

    record Or(Expr left, Expr right) implements Expr {}

    record Not(Expr operand) implements Expr {}

    /** Chained comparisons: {@code first ops[0] rest[0] ops[1] rest[1] ...}. */
    record Compare(Expr first, List<String> ops, List<Expr> rest, int line) implements Expr {}

    /** {@code then if test else orElse}; orElse null when absent (undefined). */
    record Cond(Expr test, Expr then, Expr orElse) implements Expr {}

    record ListExpr(List<Expr> items) implements Expr {}

    record TupleExpr(List<Expr> items) implements Expr {}

    record DictExpr(List<Expr> keys, List<Expr> values) implements Expr {}
}
