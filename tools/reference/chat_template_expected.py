#!/usr/bin/env python3
"""Expected chat-template renderings and token ids from Hugging Face transformers, for jtune's ChatTemplate tests.

    /path/to/python tools/reference/chat_template_expected.py data/target/published-tokenizers \
        > data/src/test/resources/chat-templates/expected.json

TOKENIZERS_DIR holds the npm-published tokenizers the data tests fetch (data/src/test/resources/fetch-tokenizers.sh):
llama2 (Mistral-7B's SentencePiece BPE, <s> </s>) and llama3_1 (Llama-3.1 Instruct, with its chat_template).
For each conversation below the script records, from `tokenizer.apply_chat_template`:
  - llama3_1:       the tokenizer's own chat_template (text and ids)
  - chatml:         the usual ChatML Jinja template (CHATML below) with the llama3_1 tokenizer (text and ids)
  - llama2:         transformers' Llama-2 chat Jinja template (LLAMA2 below) with the llama2 tokenizer
                    (text and ids; only for conversations that alternate user/assistant)
Needs only transformers (with tokenizers); the output is deterministic.
"""
import json
import sys

from transformers import AutoTokenizer

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
    "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

CONVERSATIONS = [
    {"name": "system_user_assistant", "add_generation_prompt": False, "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."}]},
    {"name": "multi_turn", "add_generation_prompt": False, "messages": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Hi there!"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Say 2+2 =  ?\nThen stop. "},
        {"role": "assistant", "content": " 4.\n\nDone, caf\u00e9 \u2713 "}]},
    {"name": "user_generation_prompt", "add_generation_prompt": True, "messages": [
        {"role": "user", "content": "Write a haiku about the JVM."}]},
    {"name": "multi_turn_generation_prompt", "add_generation_prompt": True, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "Two."},
        {"role": "user", "content": "Three?"}]},
    {"name": "no_system", "add_generation_prompt": False, "messages": [
        {"role": "user", "content": "ping"},
        {"role": "assistant", "content": "pong"}]},
]


def alternates(messages):
    rest = messages[1:] if messages[0]["role"] == "system" else messages
    return all((m["role"] == "user") == (i % 2 == 0) for i, m in enumerate(rest))


def apply(tok, messages, gen, template=None):
    kwargs = {"add_generation_prompt": gen}
    if template is not None:
        kwargs["chat_template"] = template
    text = tok.apply_chat_template(messages, tokenize=False, **kwargs)
    ids = tok.apply_chat_template(messages, tokenize=True, **kwargs)
    if hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return {"text": text, "ids": [int(i) for i in ids]}


def main():
    root = sys.argv[1]
    llama3_1 = AutoTokenizer.from_pretrained(f"{root}/llama3_1")
    llama2 = AutoTokenizer.from_pretrained(f"{root}/llama2")
    out = {"chatml_template": CHATML, "llama2_template": LLAMA2, "conversations": []}
    for conv in CONVERSATIONS:
        messages, gen = conv["messages"], conv["add_generation_prompt"]
        entry = dict(conv)
        entry["llama3_1"] = apply(llama3_1, messages, gen)
        entry["chatml"] = apply(llama3_1, messages, gen, CHATML)
        if alternates(messages):
            entry["llama2"] = apply(llama2, messages, gen, LLAMA2)
        out["conversations"].append(entry)
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
