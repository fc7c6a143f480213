#!/usr/bin/env python3
"""Renderings of Axolotl's named chat templates (data/src/main/resources/dev/jtune/data/template/axolotl, copied
from Axolotl at the pinned commit) by transformers' own chat-template environment, for jtune's test
(AxolotlTemplatesTest): text, or the error Python raises.

    target/interop-venv/bin/python tools/reference/axolotl_template_renderings.py \
        > data/src/test/resources/chat-templates/axolotl-renderings.json
"""
import glob
import json
import os
import sys

from transformers.utils.chat_template_utils import _compile_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.path.join(HERE, "..", "..", "data", "src", "main", "resources", "dev", "jtune", "data", "template", "axolotl")

CONVERSATIONS = [
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there!"},
     {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": " 4 "}],
    [{"role": "user", "content": "ping"}, {"role": "assistant", "content": "pong"}],
]


def main():
    out = []
    for path in sorted(glob.glob(os.path.join(DIR, "*.jinja"))):
        source = open(path, encoding="utf-8").read()
        for messages in CONVERSATIONS:
            for gen in (False, True):
                variables = {"messages": messages, "bos_token": "<s>", "eos_token": "</s>",
                             "add_generation_prompt": gen, "tools": None, "documents": None}
                case = {"name": os.path.basename(path)[:-len(".jinja")], "variables": variables}
                try:
                    case["text"] = _compile_jinja_template(source).render(**variables)
                except Exception as e:  # the template rejects this conversation
                    case["error"] = f"{type(e).__name__}: {e}"
                out.append(case)
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
