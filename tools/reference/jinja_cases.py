#!/usr/bin/env python3
"""Jinja2 features chat templates use, rendered by transformers' own chat-template environment (Python Jinja2,
trim_blocks, lstrip_blocks, sandboxed, loopcontrols, {% generation %}, its tojson), for jtune's interpreter test.

    target/interop-venv/bin/python tools/reference/jinja_cases.py > data/src/test/resources/chat-templates/jinja-cases.json
"""
import json
import sys

from transformers.utils.chat_template_utils import _compile_jinja_template

CASES = [
    # whitespace before a {% tag %} that is not alone on its line is kept (Jinjava dropped it)
    ("User: {{ q }} Bot: {% if a %}{{ a }}{% endif %}", {"q": "Q", "a": "A"}),
    ("{% for m in messages %}{{ m.role|title }}: {{ m.content }} {% if m.role == 'user' %}Bot:{% endif %} {% endfor %}",
     {"messages": [{"role": "user", "content": "Q"}]}),
    # Qwen3's: namespace() with keyword arguments, a reversed slice, loop.index0
    ("{% set ns = namespace(found=false, idx=-1) %}{% for m in messages[::-1] %}{% if not ns.found and m.role == 'user' %}"
     "{% set ns.found = true %}{% set ns.idx = messages|length - 1 - loop.index0 %}{% endif %}{% endfor %}{{ ns.idx }}",
     {"messages": [{"role": "user"}, {"role": "assistant"}, {"role": "user"}, {"role": "assistant"}]}),
    ("{{ '  a b  '.strip() }}|{{ 'x,y,,z'.split(',') }}|{{ 'abc'.upper() }}{{ 'ABC'.lower() }}|{{ 'hello world'.title() }}"
     "|{{ 'a-b'.replace('-', '+') }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x','c')) }}|{{ '\\n\\nx\\n'.lstrip('\\n') }}"
     "|{{ ' x '.rstrip() }}|{{ 'a b  c'.split() }}|{{ 'a</think>b'.split('</think>')[-1] }}", {}),
    ("{{ [1, 'a', none, true, 1.5, {'k': [2]}] }}|{{ 7 // 2 }}|{{ -7 % 3 }}|{{ 1 / 2 }}|{{ 2 ** 10 }}|{{ 'ab' * 2 }}"
     "|{{ 1e20 }}|{{ 0.1 + 0.2 }}|{{ 1e-5 }}|{{ 123456789.0 }}", {}),
    ("{{ x | tojson }}|{{ x | tojson(indent=2) }}|{{ x|tojson(separators=(',', ':'), sort_keys=true) }}|{{ x|tojson(ensure_ascii=true) }}",
     {"x": {"b": [1, 2.5, None, True], "a": "\u00e9\"\n\U0001F680"}}),
    ("{% macro f(a, b='d') %}[{{ a }}{{ b }}]{% endmacro %}{{ f(1) }}{{ f(2, b='x') }}{% for i in range(5) %}"
     "{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ loop.index }}{{ loop.first }}{{ loop.last }},{% endfor %}", {}),
    ("{% if x is defined %}d{% endif %}{% if y is not defined %}u{% endif %}{% if 3 is odd %}o{% endif %}{% if 'a' is string %}s{% endif %}"
     "{% if {} is mapping %}m{% endif %}{% if none is none %}n{% endif %}{{ 'yes' if x else 'no' }}{{ x is number }}{{ true is integer }}", {"x": 1}),
    ("  {%- if true %}\n    x\n  {% endif %}\n{# c #}\n  {{ 'y' }}  \n{%+ if true %}z{% endif %}\n\t{% if true %}w{% endif %}\n", {}),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d|length }}{{ d.get('q', 'dflt') }}{{ d['a'] }}{{ d.a }}"
     "{{ (d|dictsort)[0][0] }}{{ [3,1,2]|sort|join('-') }}{{ ['a','b']|map('upper')|list }}"
     "{{ [{'r':'u'},{'r':'s'}]|selectattr('r','equalto','s')|list|length }}{{ d.zz is defined }}", {"d": {"b": 2, "a": 1}}),
    ("{% generation %}gen{% endgeneration %}|{{ 'abc'[1:] }}{{ 'abc'[-1] }}{{ [1,2,3][::-1] }}{{ 'x' ~ 1 ~ none }}{{ none }}"
     "{{ 'caf\u00e9 \U0001F680'|length }}{{ 'a\U0001F680b'[1] }}", {}),
    ("{%- set x %}inner {{ 1 + 1 }}{% endset -%}\n [{{ x|trim }}] {{ '%d items'|replace('%d', '3') }} {{ 'ab'|first }}{{ [1,2]|last }}"
     "{{ ' '|join(['a','b']) }}{{ 'A b'|lower|capitalize }}{{ 'x'|default('d') }}{{ u|default('d') }}{{ ''|default('e', true) }}", {}),
    ("{{ strftime_now('%Y') is string }}{{ raise_exception is defined }}{% if messages[0]['content'] is string %}s{% endif %}"
     "{{ messages[0].content.startswith('<tool_response>') }}{% for m in messages if m.role != 'system' %}{{ loop.length }}{% else %}E{% endfor %}",
     {"messages": [{"role": "system", "content": "<tool_response>x"}, {"role": "user", "content": "y"}]}),
]


def main():
    out = []
    for source, variables in CASES:
        out.append({"template": source, "variables": variables,
                    "expected": _compile_jinja_template(source).render(**variables)})
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
