/**
 * A Jinja2 interpreter for Hugging Face chat templates, written to give the same text as Python's Jinja2 in
 * the environment transformers' {@code apply_chat_template} sets up (see
 * {@link dev.jtune.data.template.jinja.JinjaTemplate}): the lexer's whitespace rules, Python's values and
 * string methods, the filters and tests templates use. Sandboxed by construction (no reflection: only the
 * listed functions, filters and methods exist) and capped in loop steps, recursion and output size.
 *
 * <p>Not supported (a clear {@link dev.jtune.data.template.jinja.JinjaException} at parse or render time):
 * template inheritance and includes ({@code extends}, {@code include}, {@code import}), recursive
 * {@code for} loops, {@code %}-formatting of strings, autoescaping.
 */
package dev.jtune.data.template.jinja;
