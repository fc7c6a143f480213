/**
 * A Jinja2 interpreter for Hugging Face chat templates, written to give the same text as Python's Jinja2 in
 * the environment transformers' {@code apply_chat_template} sets up (see
 * {@link dev.jtune.data.template.jinja.JinjaTemplate}): the lexer's whitespace rules ({@code trim_blocks},
 * {@code lstrip_blocks}, {@code -}/{@code +} control), Python's values, operators, {@code str()}/{@code repr()}
 * and string methods, {@code namespace()}, slices with steps, {@code loop.*}, macros and call blocks,
 * {@code break}/{@code continue}, tests, the filters templates use, transformers' {@code tojson},
 * {@code raise_exception}, {@code strftime_now}, {@code {% generation %}}, MarkupSafe's escaping on
 * {@code |safe + str}, and generators from {@code map}/{@code select} (no length, no JSON, always true).
 * Checked against transformers' own environment on the published templates of the two chat-template test corpora
 * ({@code chat-templates/renderings}: 28 templates' texts; {@code chat-templates/corpus}: 14 templates' texts,
 * token ids and labels).
 *
 * <p>Why an interpreter of jtune's own: Jinjava (used before) is another language that looks like Jinja — it
 * cannot parse Qwen3's template ({@code namespace(...)} with keywords, {@code [::-1]}) and renders Llama 3.1's
 * with different whitespace — and no maintained JVM library follows Python Jinja2; running CPython (GraalPy,
 * Jython 2) would add a large runtime for the sake of ~2,000 lines. Hugging Face did the same in JavaScript
 * ({@code @huggingface/jinja}) and llama.cpp in C++ ({@code minja}). Measured render speed on the Llama-3.1
 * template ({@code bench/chat.sh}, 52,000 three-turn conversations with a system line, one thread; figures and
 * load in bench/README.md): 56,826 rows per CPU second (84.3M characters in 0.92 CPU s) against Jinjava's 2,219,
 * and Jinjava's text was not transformers' on that template. Rendering is then ~1.5% of a {@code chat_template}
 * dataset's preprocessing: the tokenizer takes ~70%.
 *
 * <p>Sandboxed by construction: a template reaches only the values given to it and the functions, filters,
 * tests and methods written out here (no reflection, no Java classes, no files, no network); the mutating
 * methods the immutable sandbox refuses ({@code list.append}, {@code dict.update}, ...) are refused; loop
 * steps, macro nesting, output size and {@code range()} are capped ({@link dev.jtune.data.template.jinja.JinjaTemplate.Limits}).
 *
 * <p>Not supported (a clear {@link dev.jtune.data.template.jinja.JinjaException} at parse or render time):
 * template inheritance and includes ({@code extends}, {@code block}, {@code include}, {@code import}),
 * recursive {@code for} loops and {@code loop.changed}, {@code %}-formatting and {@code str.format},
 * {@code *args}/{@code **kwargs} in calls and macros, autoescaping (transformers does not enable it), and the
 * rarely used filters not in {@code Filters} ({@code truncate}, {@code wordwrap}, {@code urlize}, ...).
 */
package dev.jtune.data.template.jinja;
