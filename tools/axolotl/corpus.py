#!/usr/bin/env python3
"""Axolotl's example configs as a measure of jtune (issue 12, part 3): which run as written.

For every examples/**/*.yml of axolotl-ai-cloud/axolotl at the commit that AxolotlKeys pins, substitutes only
  - base_model (and base_model_config / tokenizer_config when given): a tiny model of the config's family, from
    model/src/test/resources/fixtures/families/<family> (Llama: ./launch.sh init-model --preset tiny);
  - each datasets:/test_datasets: entry's path: generated rows in the layout its type asks for (data_files and
    name, which point into a Hub dataset, are dropped);
  - output_dir, dataset_prepared_path, and max_steps: 2;
runs ./launch.sh preprocess (and train, with --train, where preprocess passed; a config that declares
dp_shard_size/dp_replicate_size trains with that many processes, ./launch.sh --nproc-per-node N), and prints one row
per config:
passed, refused (the problems jtune named) or failed (anything else: a stack trace, an unknown key, a timeout).
Configs whose model family jtune does not implement are listed as "other family" and not run; RL (rl:), reward-model
(reward_model, process_reward_model, num_labels) and multimodal (processor_type, image keys, vision checkpoints)
examples, which issue 12 leaves aside, get their own outcome rows, are not run and stay out of the pass rate.
Each family's tiny tokenizer carries the special tokens of the real checkpoint's lineage (SPECIALS).

Usage: tools/axolotl/corpus.py AXOLOTL_GIT_DIR [--train] [--only SUBSTRING] [--out tools/axolotl/corpus-result.md]
Needs python3 with PyYAML; the jtune jar is built by ./launch.sh on first use.
"""
import argparse
import collections
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import yaml

COMMIT = "067b021c8b87a9e5e380b9173c704cf7340e30f5"  # AxolotlKeys.COMMIT
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "model/src/test/resources/fixtures/families")

# Model family by base_model name, first match wins; None: a family jtune does not implement.
FAMILIES = [
    (r"qwen3[._-]?5|qwen3-next|qwen3-vl|qwen2[._-]?5?-vl|qwen3-?moe|-a3b|-a22b|qwen2-?moe|qwen1\.5-moe", None),
    (r"qwen3", "qwen3"),
    (r"qwen2|qwq|deepseek-r1-distill-qwen|deepcoder-14b|cogito-v1-preview-qwen", "qwen2"),
    (r"gemma-?3n|gemma-?4|paligemma|shieldgemma", None),
    (r"gemma-?3-1b|gemma-?3-270m", "gemma3-text"),
    (r"gemma-?3", "gemma3-conditional"),
    (r"gemma-?2", "gemma2"),
    (r"phi-?3|phi-?4-mini", "phi3"),
    (r"mistral-?nemo|nemo-", "mistral-nemo"),
    # MistralForCausalLM: the Mistral-Nemo fixture is one (explicit head_dim), as tiny as the others.
    # Text-only MistralForCausalLM checkpoints (Magistral/Devstral Small of 2506/2507, Ministral-8B).
    (r"mistral-?7b|zephyr|openhermes-2|ministral-8b|magistral-small-250[67]|devstral-small-2507", "mistral-nemo"),
    (r"llama-?3\.2-\d+b-vision|llama-?4|llava|mllama|llama-3-vision", None),
    # LlamaForCausalLM under other names: Yi, Orpheus (Llama 3.2 3B).
    (r"llama|tinyllama|smollm|open_llama|openllama|codellama|vicuna|alpaca|01-ai/yi-|orpheus-3b", "llama"),
]


def family_of(base_model):
    name = str(base_model).lower()
    for pattern, family in FAMILIES:
        if re.search(pattern, name):
            return family
    return None


# The special tokens of a real checkpoint of each tokenizer lineage (bos, eos, pad, unk, then others), as its
# tokenizer_config.json on the Hub has them, so that a config's special_tokens:/tokens: naming one of them finds it
# (and the vocabulary does not grow, as it would not with the real model). Sources:
#   llama2  meta-llama/Llama-2-7b-hf (and CodeLlama, open_llama, TinyLlama, huggyllama): <s> </s> <unk>, no pad
#   llama3  meta-llama/Llama-3.1-8B: <|begin_of_text|> <|end_of_text|>, the reserved/header/eot ids of Meta's
#           tokenizer.py (special_tokens list), no pad, no unk; Llama-3 Instruct's eos is <|eot_id|>
#   yi      01-ai/Yi-34B-Chat: <|startoftext|> <|im_end|>, pad/unk <unk>, <|endoftext|> <|im_start|> <|im_sep|>
#   smollm  HuggingFaceTB/SmolLM2-135M: <|endoftext|> as bos/eos/unk, <|im_start|> <|im_end|>
#   orpheus canopylabs/orpheus-3b-0.1-pretrained: Llama 3.2's tokens plus <custom_token_N>
#   mistral mistralai/Mistral-7B-v0.1: <s> </s> <unk>, no pad (Nemo adds [INST] [/INST] and <pad>)
#   qwen2   Qwen/Qwen2.5-7B-Instruct: no bos, eos <|im_end|>, pad <|endoftext|>, <|im_start|>, tool tokens
#   qwen3   Qwen/Qwen3-8B: as Qwen2.5 plus <think> </think>
#   gemma   google/gemma-2-2b / gemma-3-1b-it: <bos> <eos> <pad> <unk> <start_of_turn> <end_of_turn>
#   phi3    microsoft/Phi-3-mini-4k-instruct: <s>, eos/pad <|endoftext|>, <unk>, <|user|> <|assistant|> <|end|> ...
LLAMA3_EXTRA = ["<|reserved_special_token_0|>", "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
                "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
                "<|python_tag|>"]
QWEN_EXTRA = ["<|endoftext|>", "<|im_start|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
              "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
              "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
              "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]
SPECIALS = {
    "llama2": dict(bos="<s>", eos="</s>", pad=None, unk="<unk>", extra=[]),
    "llama3": dict(bos="<|begin_of_text|>", eos="<|end_of_text|>", pad=None, unk=None, extra=LLAMA3_EXTRA),
    "llama3-instruct": dict(bos="<|begin_of_text|>", eos="<|eot_id|>", pad=None, unk=None,
                            extra=["<|end_of_text|>"] + LLAMA3_EXTRA),
    "orpheus": dict(bos="<|begin_of_text|>", eos="<|end_of_text|>", pad=None, unk=None,
                    extra=LLAMA3_EXTRA + [f"<custom_token_{i}>" for i in range(12)]),
    "yi": dict(bos="<|startoftext|>", eos="<|im_end|>", pad="<unk>", unk="<unk>",
               extra=["<|endoftext|>", "<|im_start|>", "<|im_sep|>"]),
    "smollm": dict(bos="<|endoftext|>", eos="<|endoftext|>", pad=None, unk="<|endoftext|>",
                   extra=["<|im_start|>", "<|im_end|>"]),
    "mistral": dict(bos="<s>", eos="</s>", pad=None, unk="<unk>", extra=[]),
    "mistral-nemo": dict(bos="<s>", eos="</s>", pad="<pad>", unk="<unk>",
                         extra=["[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]",
                                "[/TOOL_RESULTS]", "[TOOL_CALLS]"]),
    "qwen2": dict(bos=None, eos="<|im_end|>", pad="<|endoftext|>", unk=None, extra=QWEN_EXTRA),
    "qwen3": dict(bos=None, eos="<|im_end|>", pad="<|endoftext|>", unk=None,
                  extra=QWEN_EXTRA + ["<tool_response>", "</tool_response>", "<think>", "</think>"]),
    "gemma": dict(bos="<bos>", eos="<eos>", pad="<pad>", unk="<unk>",
                  extra=["<mask>", "<start_of_turn>", "<end_of_turn>"]),
    # Phi-3's checkpoints pad the embedding past the tokenizer (Phi-3-mini-4k-instruct: 32011 tokens, vocab_size
    # 32064, a multiple of 64), so that resize_token_embeddings_to_32x (32032) grows nothing there.
    "phi3": dict(bos="<s>", eos="<|endoftext|>", pad="<|endoftext|>", unk="<unk>",
                 extra=["<|assistant|>", "<|placeholder1|>", "<|placeholder2|>", "<|placeholder3|>",
                        "<|placeholder4|>", "<|system|>", "<|end|>", "<|placeholder5|>", "<|placeholder6|>",
                        "<|user|>"], rows_multiple=64),
}

# Tokenizer lineage by base_model name, first match wins (within the model family).
LINEAGES = [
    (r"orpheus", "orpheus"),
    (r"llama-?3(?!\d).*(instruct|-it\b)|cogito-v1-preview-llama", "llama3-instruct"),
    (r"llama-?3(?!\d)", "llama3"),  # not CodeLlama-34b
    (r"01-ai/yi-", "yi"),
    (r"smollm", "smollm"),
    (r"llama|codellama|vicuna|alpaca", "llama2"),
    (r"nemo|magistral|devstral|ministral", "mistral-nemo"),
    (r"mistral|zephyr|openhermes", "mistral"),
    (r"qwen3", "qwen3"),
    (r"qwen|qwq|deepcoder|cogito", "qwen2"),
    (r"gemma", "gemma"),
    (r"phi", "phi3"),
]


def lineage_of(base_model):
    name = str(base_model).lower()
    for pattern, lineage in LINEAGES:
        if re.search(pattern, name):
            return lineage
    return None


# tokenizer_use_mistral_common: true reads the model folder's tekken.json. The instruct version each checkpoint's
# tekken.json declares: Ministral-8B-Instruct-2410 v3 (the Nemo-era Tekken); Magistral-Small-2506 v11 (Axolotl's test
# of its tokenizer writes tool calls as [TOOL_CALLS]name[CALL_ID]id[ARGS]..., v11's form); Magistral-Small-2507 and
# Devstral-Small-2507 v13 ([THINK] tokens; tool calls without a call id in Axolotl's devstral_1_1 test).
TEKKEN_VERSIONS = [(r"ministral-8b", "v3"), (r"magistral-small-2506", "v11"),
                   (r"magistral-small-2507|devstral-small-2507", "v13")]
TEKKEN_FIXTURE = os.path.join(ROOT, "data", "src", "test", "resources", "mistral-common")


def tekken_version(config):
    if not config.get("tokenizer_use_mistral_common"):
        return None
    name = str(config.get("base_model")).lower()
    return next((v for pattern, v in TEKKEN_VERSIONS if re.search(pattern, name)), "v7")


def model_dir(family, lineage, work, tekken=None, width=None):
    """A tiny model of the family with the special tokens of the lineage's tokenizer, made once per run; with a
    tekken version, the folder holds that version's tekken.json instead of a tokenizer.json; with a width, every
    projection's input width is that (see widen)."""
    out = os.path.join(work, "models", f"{family}-{lineage}" if lineage else family)
    if tekken:
        out += f"-tekken-{tekken}"
    if width:
        out += f"-width-{width}"
    if not os.path.isdir(out):
        if family == "llama":
            subprocess.run([os.path.join(ROOT, "launch.sh"), "init-model", "--preset", "tiny", "--out", out],
                           check=True, capture_output=True)
        else:
            shutil.copytree(os.path.join(FIXTURES, family), out)
        if width:
            widen(out, width)
        if tekken:
            use_tekken(out, tekken)
        elif lineage:
            dress_tokenizer(out, SPECIALS[lineage])
    return out


def qat_width(config):
    """A config's qat.group_size where the tiny models' projections (64-128 wide) are narrower than it: the real
    checkpoints' widths are multiples of it (Qwen3-8B: 4096, 12288 for group 256), so the tiny stand-in is widened."""
    qat = config.get("qat")
    group = qat.get("group_size") if isinstance(qat, dict) else None
    return group if isinstance(group, int) and group > 64 else None


def widen(folder, width):
    """Re-initialises the folder's model (transformers, random weights, bf16) with hidden_size, every attention
    head's total width and intermediate_size/2 equal to width, keeping its tokenizer and everything else in config.json.
    Needs target/interop-venv (tools/interop/check.sh builds it)."""
    python = os.path.join(ROOT, "target", "interop-venv", "bin", "python")
    script = """
import json, sys, torch, transformers
folder, width = sys.argv[1], int(sys.argv[2])
path = folder + "/config.json"
c = json.load(open(path))
heads = c["num_attention_heads"]
c.update(hidden_size=width, intermediate_size=2 * width, head_dim=width // heads)
json.dump(c, open(path, "w"), indent=2)
torch.manual_seed(0)
config = transformers.AutoConfig.from_pretrained(folder)
model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
model.save_pretrained(folder)
"""
    subprocess.run([python, "-c", script, folder, str(width)], check=True, capture_output=True)


def use_tekken(folder, version):
    """The folder as Mistral publishes Magistral/Devstral: tekken.json, no tokenizer.json. The tekken.json is jtune's
    test fixture (data/src/test/resources/mistral-common, see its README): mistral-common's own Tekken vocabulary cut to
    1500 ranks behind the 1000 control tokens (<unk> <s> </s> [INST] [/INST] ... [SYSTEM_PROMPT] ... [THINK]), laid out
    as the released files of that version; the embedding grows to its 2500 rows."""
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if os.path.exists(os.path.join(folder, name)):
            os.remove(os.path.join(folder, name))
    shutil.copy(os.path.join(TEKKEN_FIXTURE, version, "tekken.json"), os.path.join(folder, "tekken.json"))
    with open(os.path.join(folder, "tekken.json")) as f:
        cfg = json.load(f)["config"]
    rows = cfg["default_vocab_size"]
    for name in ("config.json", "generation_config.json"):
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            c = json.load(f)
        if "vocab_size" in c:
            c["vocab_size"] = rows
        c.update({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 11})
        with open(path, "w") as f:
            json.dump(c, f, indent=2)
    grow_rows(os.path.join(folder, "model.safetensors"), rows)


def dress_tokenizer(folder, spec):
    """Renames the tiny tokenizer's three special tokens (ids 0-2: <s> </s> <pad>) to the lineage's bos, eos and
    pad (or unk), appends its other special tokens after the last id, and grows the embedding (and lm_head) by as
    many rows, so that the model has a row for every token, as a real checkpoint does (rounded up to the checkpoint's
    own multiple where it pads its embedding past the tokenizer: rows_multiple)."""
    tj_path, tc_path = os.path.join(folder, "tokenizer.json"), os.path.join(folder, "tokenizer_config.json")
    with open(tj_path) as f:
        tj = json.load(f)
    with open(tc_path) as f:
        tc = json.load(f)
    names = []
    for t in [spec["bos"], spec["eos"], spec["pad"], spec["unk"]] + spec["extra"]:
        if t and t not in names:
            names.append(t)
    slots = [spec["bos"], spec["eos"], spec["pad"] or spec["unk"]]
    rest = [t for t in names if t not in slots]
    slots = [t if t and slots.index(t) == i else None for i, t in enumerate(slots)]
    slots = [t if t else rest.pop(0) for t in slots]
    size = len(tj["model"]["vocab"])
    ids = {t: i for i, t in enumerate(slots)}
    for t in rest:
        ids[t] = size + len([x for x in ids if ids[x] >= size])
    old = {a["id"]: a["content"] for a in tj["added_tokens"]}
    vocab = tj["model"]["vocab"]
    for i, t in enumerate(slots):
        del vocab[old[i]]
    added = []
    for t, i in sorted(ids.items(), key=lambda kv: kv[1]):
        vocab[t] = i
        added.append({"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
    tj["added_tokens"] = added
    if spec["bos"]:
        bos = spec["bos"]
        tj["post_processor"] = {"type": "TemplateProcessing",
                                "single": [{"SpecialToken": {"id": bos, "type_id": 0}},
                                           {"Sequence": {"id": "A", "type_id": 0}}],
                                "pair": [{"SpecialToken": {"id": bos, "type_id": 0}},
                                         {"Sequence": {"id": "A", "type_id": 0}},
                                         {"SpecialToken": {"id": bos, "type_id": 1}},
                                         {"Sequence": {"id": "B", "type_id": 1}}],
                                "special_tokens": {bos: {"id": bos, "ids": [0], "tokens": [bos]}}}
    else:  # Qwen adds no BOS
        tj["post_processor"] = None
    tc["added_tokens_decoder"] = {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added}
    for key in ("bos", "eos", "pad", "unk"):
        tc[f"{key}_token"] = spec[key]
    tc["add_bos_token"] = bool(spec["bos"])
    with open(tj_path, "w") as f:
        json.dump(tj, f, ensure_ascii=False)
    with open(tc_path, "w") as f:
        json.dump(tc, f, ensure_ascii=False, indent=2)
    multiple = spec.get("rows_multiple", 1)  # embedding rows past the tokenizer, as the real checkpoint has
    rows = -(-(size + len(rest)) // multiple) * multiple
    special_ids = {"bos_token_id": ids.get(spec["bos"]), "eos_token_id": ids[spec["eos"]],
                   "pad_token_id": ids.get(spec["pad"])}
    for name in ("config.json", "generation_config.json"):
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            cfg = json.load(f)
        for c in [cfg] + ([cfg["text_config"]] if isinstance(cfg.get("text_config"), dict) else []):
            if "vocab_size" in c:
                c["vocab_size"] = rows
            for k, v in special_ids.items():
                if k in c or name == "generation_config.json":
                    c[k] = v
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
    grow_rows(os.path.join(folder, "model.safetensors"), rows)


def grow_rows(path, rows):
    """Appends rows to the embedding and lm_head tensors of a safetensors file (copies of the byte-token rows,
    so the new tokens start as ordinary ones)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = sorted(((k, v) for k, v in header.items() if k != "__metadata__"), key=lambda kv: kv[1]["data_offsets"][0])
    out, offset = [], 0
    for name, t in tensors:
        start, end = t["data_offsets"]
        chunk = data[start:end]
        if name.endswith("embed_tokens.weight") or name.endswith("lm_head.weight"):
            old_rows = t["shape"][0]
            row = (end - start) // old_rows
            extra = rows - old_rows
            chunk += b"".join(chunk[(3 + k % 256) * row:(4 + k % 256) * row] for k in range(extra))
            t["shape"] = [rows] + t["shape"][1:]
        t["data_offsets"] = [offset, offset + len(chunk)]
        offset += len(chunk)
        out.append(chunk)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(out))


WORDS = "the quick brown fox jumps over a lazy dog while seven small birds sing about rivers and hills".split()


def sentence(i, n=8):
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(n)).capitalize() + "."


def rows_for(entry, n=64):
    """Rows in the layout the entry's type asks for (Axolotl's field names and defaults, or the entry's own)."""
    t = entry.get("type")
    if t is None or t == "":  # no type: pre-tokenized rows (Axolotl's input_ids, attention_mask, labels)
        rows = []
        for i in range(n):
            ids = [3 + (i * 7 + k * 5) % 250 for k in range(12 + i % 9)]
            rows.append({"input_ids": ids, "attention_mask": [1] * len(ids),
                         "labels": [-100] * 4 + ids[4:]})
        return rows
    if isinstance(t, dict):  # user-defined prompt format
        fi, fin, fo = (t.get("field_instruction", "instruction"), t.get("field_input", "input"),
                       t.get("field_output", "output"))
        return [{fi: sentence(i), fin: sentence(i + 1, 4) if i % 2 else "", fo: sentence(i + 2, 10),
                 t.get("field_system", "system"): "Be brief."} for i in range(n)]
    t = str(t or "")
    if t == "pretrain":  # pretraining_dataset entries: Axolotl's PretrainingDataset reads text_column
        return [{entry.get("text_column") or "text": sentence(i, 30)} for i in range(n)]
    if t in ("completion", "") or t.startswith("completion"):
        return [{entry.get("field", "text"): sentence(i, 30)} for i in range(n)]
    if t.startswith("chat_template") or t.startswith("sharegpt"):
        sharegpt = t.startswith("sharegpt")
        field = entry.get("field_messages", "conversations" if sharegpt else "messages")
        props = entry.get("message_property_mappings") or {}
        role = props.get("role", entry.get("message_field_role", "from" if sharegpt else "role"))
        content = props.get("content", entry.get("message_field_content", "value" if sharegpt else "content"))
        roles = entry.get("roles") or {}
        user = (roles.get("user") or ["human" if sharegpt else "user"])[0]
        assistant = (roles.get("assistant") or ["gpt" if sharegpt else "assistant"])[0]
        return [{field: [{role: user, content: sentence(i)}, {role: assistant, content: sentence(i + 3, 12)},
                         {role: user, content: sentence(i + 5)}, {role: assistant, content: sentence(i + 1, 9)}]}
                for i in range(n)]
    if t.startswith("input_output"):
        seg = entry.get("field_segments", "segments")
        return [{seg: [{"label": False, "text": sentence(i) + " "}, {"label": True, "text": sentence(i + 2)}]}
                for i in range(n)]
    # alpaca and its relatives: instruction / input / output
    return [{"instruction": sentence(i), "input": sentence(i + 1, 4) if i % 2 else "", "output": sentence(i + 2, 10)}
            for i in range(n)]


def thinking_rows(entry, n=64):
    """Magistral's thinking layout (examples/magistral/think/README.md): contents as lists of parts, the assistant's
    a {type: thinking} part then a {type: text} part."""
    field = entry.get("field_messages", "messages")
    text = lambda t: [{"type": "text", "text": t}]
    return [{field: [{"role": "system", "content": text("Think, then answer.")},
                     {"role": "user", "content": text(sentence(i))},
                     {"role": "assistant", "content": [{"type": "thinking", "thinking": sentence(i + 2, 6)}]
                      + text(sentence(i + 3, 12))}]} for i in range(n)]


def substitute(config, work, name):
    base = config.get("base_model")
    family = family_of(base)
    if family is None:
        return None, family
    model = model_dir(family, lineage_of(base), work, tekken_version(config), qat_width(config))
    config["base_model"] = model
    for key in ("base_model_config", "tokenizer_config"):
        if config.get(key):
            config[key] = model
    data = os.path.join(work, "data", name)
    os.makedirs(data, exist_ok=True)
    for section in ("datasets", "test_datasets", "pretraining_dataset"):
        entries = config.get(section)
        if not isinstance(entries, list):
            continue
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            path = os.path.join(data, f"{section}-{i}.jsonl")
            # Axolotl's PretrainingDataset defaults type to pretrain
            shape = {"type": "pretrain", **entry} if section == "pretraining_dataset" else entry
            with open(path, "w") as f:
                for row in (thinking_rows(entry) if tekken_version(config) and "/think/" in name.replace("_", "/")
                            else rows_for(shape)):
                    f.write(json.dumps(row) + "\n")
            entry["path"] = path
            entry.pop("data_files", None)
            entry.pop("name", None)
            if entry.get("ds_type") not in (None, "json"):
                entry["ds_type"] = "json"
    config["output_dir"] = os.path.join(work, "out", name)
    if "dataset_prepared_path" in config:
        config["dataset_prepared_path"] = os.path.join(work, "prepared", name)
    config["max_steps"] = 2
    return config, family


def processes(config):
    """The processes a config's declared data-parallel degrees ask for (dp_shard_size x dp_replicate_size; jtune
    computes a tensor/context-parallel group's share in one process), 1 when it declares none."""
    shard, replicate = config.get("dp_shard_size"), config.get("dp_replicate_size")
    if not isinstance(shard, int) and not isinstance(replicate, int):
        return 1
    return (shard if isinstance(shard, int) else 1) * (replicate if isinstance(replicate, int) else 1)


def run(verb, cfg, timeout, nproc=1):
    command = [os.path.join(ROOT, "launch.sh"), verb, cfg]
    if verb == "train" and nproc > 1:  # the launcher's workers run train
        command = [os.path.join(ROOT, "launch.sh"), "--nproc-per-node", str(nproc), "--standalone", cfg]
    try:
        p = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return 124, "", f"timed out after {timeout} s"


PROBLEM = re.compile(r":\d+:\d+: (.*)$")


def problems(stderr):
    """The problems jtune named, one per line of its error (a ConfigException lists each with file:line:col)."""
    lines = [l for l in stderr.splitlines() if l.strip() and not l.startswith(("info: ", "warning: "))]
    named = []
    for l in lines:
        m = PROBLEM.search(l)
        if m:
            named.append(m.group(1))
    if not named:
        err = [l for l in lines if "error:" in l]
        named = [err[0].split("error:", 1)[1].strip()] if err else lines[-1:] or ["(no message)"]
    return named


SCHEMA_FIELDS = set()


def load_schema_fields(git):
    """Every field name declared in Axolotl's config models at COMMIT (schemas/ and the integrations' args.py):
    an "unknown key" is a failure only when Axolotl's schema has that key."""
    files = [f for f in subprocess.run(git + ["ls-tree", "-r", "--name-only", COMMIT, "src/axolotl"], check=True,
                                       capture_output=True, text=True).stdout.split()
             if f.endswith(".py") and ("/utils/schemas/" in f or (f.startswith("src/axolotl/integrations/")
                                                                    and f.endswith("args.py")))]
    for f in files:
        text = subprocess.run(git + ["show", f"{COMMIT}:{f}"], check=True, capture_output=True, text=True).stdout
        SCHEMA_FIELDS.update(re.findall(r"^\s+(\w+)\s*:\s*[\w\[\]|. ,\"']+(?:=|$)", text, re.M))


def verdict(stderr):
    text = stderr
    if "Exception" in text and "\tat " in text or "timed out" in text:
        return "failed"
    ps = problems(stderr)
    unknown = [m.group(1) for p in ps for m in [re.search(r"unknown key '([^']+)'", p)] if m]
    # a key outside Axolotl's schema is refused by policy (Axolotl drops it silently); one inside is jtune's gap
    if any(not SCHEMA_FIELDS or k in SCHEMA_FIELDS for k in unknown):
        return "failed"
    return "refused"


def short(problem):
    """A problem reduced to what it is about, for the tally: the key (and value for refusals)."""
    problem = re.sub(r"^\S+\.ya?ml: ", "", problem)  # an error from train names the file without a position
    m = re.match(r"(?:datasets\[\d+\](?:\.\S+)?: )?(\S+): (.+?) is not supported", problem)
    if m:
        return f"{m.group(1)}: {m.group(2)}"[:70]
    m = re.search(r"unknown key '([^']+)'", problem)
    if m:
        return f"unknown key {m.group(1)}"
    return problem[:120]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("axolotl")
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--out", default=os.path.join(ROOT, "tools/axolotl/corpus-result.md"))
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--cache", default="", help="a JSONL file of rows already measured (read, then appended to)")
    ap.add_argument("--first", default="", help="comma-separated substrings: configs naming one are measured first")
    ap.add_argument("--shard", default="", help="I/N: measure only every N-th config from the I-th (0-based), so that"
                    " N runs, each with its own --cache, share the work; a last run given all caches writes --out")
    args = ap.parse_args()
    git = ["git", "--git-dir", args.axolotl]
    load_schema_fields(git)
    files = [f for f in subprocess.run(git + ["ls-tree", "-r", "--name-only", COMMIT, "examples"], check=True,
                                       capture_output=True, text=True).stdout.split()
             if f.endswith((".yml", ".yaml")) and args.only in f]
    work = tempfile.mkdtemp(prefix="jtune-corpus-")
    results = []
    done = {}
    if args.cache and all(os.path.exists(c) for c in args.cache.split(",")):
        for cache in args.cache.split(","):
            with open(cache) as c:
                for line in c:
                    row = json.loads(line)
                    done[row[0]] = tuple(row)
    if args.first:  # measured first (stable order otherwise): what a change is expected to move
        files.sort(key=lambda f: not any(p in f for p in args.first.split(",")))
    if args.shard:
        i, n = (int(x) for x in args.shard.split("/"))
        files = [f for k, f in enumerate(files) if k % n == i or f in done]
    for f in files:
        if f in done:
            results.append(done[f])
            continue
        n = len(results)
        try:
            measure(f, git, work, args, results)
        except Exception as e:  # a bug here must not lose the rows measured so far
            results.append((f, "-", "corpus script error", "", repr(e)[:200]))
        if args.cache and len(results) > n:
            with open(args.cache.split(",")[0], "a") as c:
                c.write(json.dumps(results[-1]) + "\n")
    write(results, args, work)


# Outcomes of the examples issue 12 leaves out of its corpus ("RL, multimodal and reward-model examples left
# aside"): classified from the config, not run, and outside the in-family denominator.
ASIDE = ("RL (left aside)", "reward model (left aside)", "multimodal (left aside)")
# A config of a partial rerun that was not measured again (its cached row says what the earlier run found).
NOT_RERUN = "not rerun"
NOT_RUN = ("other family", "not a training config", "not YAML", NOT_RERUN) + ASIDE


def left_aside(config):
    """Which of the left-aside kinds a config is, or None for a plain SFT/LoRA/QLoRA config."""
    if config.get("rl"):
        return ASIDE[0]
    if config.get("reward_model") or config.get("process_reward_model") or config.get("num_labels"):
        return ASIDE[1]
    if (config.get("processor_type") or config.get("image_size") or config.get("image_resize_algorithm")
            or re.search(r"vision|-vl\b|llava|pixtral|voxtral", str(config.get("base_model", "")).lower())):
        return ASIDE[2]
    return None


def why_aside(config):
    keys = [k for k in ("rl", "reward_model", "process_reward_model", "num_labels", "processor_type", "image_size",
                        "image_resize_algorithm") if config.get(k)]
    return ", ".join(f"{k}: {config[k]}" for k in keys) or f"base_model: {config.get('base_model')}"


def measure(f, git, work, args, results):
    """One config: substituted, preprocessed, trained; its row appended to results."""
    text = subprocess.run(git + ["show", f"{COMMIT}:{f}"], check=True, capture_output=True, text=True).stdout
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f[len("examples/"):])
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as e:
        results.append((f, "-", "not YAML", "", str(e).splitlines()[0]))
        return
    if not isinstance(config, dict) or "base_model" not in config:
        results.append((f, "-", "not a training config", "", ""))
        return
    aside = left_aside(config)
    if aside:
        results.append((f, family_of(config.get("base_model")) or "-", aside, "", why_aside(config)))
        return
    config, family = substitute(config, work, name)
    if config is None:
        results.append((f, "-", "other family", "", str(yaml.safe_load(text).get("base_model"))))
        return
    cfg = os.path.join(work, name)
    with open(cfg, "w") as out:
        yaml.safe_dump(config, out, sort_keys=False)
    family = f"{family}/{lineage_of(yaml.safe_load(text).get('base_model'))}"
    rc, out_text, err = run("preprocess", cfg, args.timeout)
    if rc != 0:
        results.append((f, family, verdict(err), "", "; ".join(short(p) for p in problems(err))))
        print(f"{f}: preprocess {verdict(err)}", file=sys.stderr)
        return
    notes = sum(1 for l in err.splitlines() if l.startswith(("info: ", "warning: ")))
    if not args.train:
        results.append((f, family, "preprocess passed", "", f"{notes} info/warning lines"))
        print(f"{f}: preprocess passed", file=sys.stderr)
        return
    nproc = processes(config)
    rc, out_text, err = run("train", cfg, args.timeout, nproc)
    if rc == 0:
        results.append((f, family, "passed", "trained 2 steps" + (f" ({nproc} processes)" if nproc > 1 else ""),
                        f"{notes} info/warning lines"))
    else:
        results.append((f, family, "train " + verdict(err), "", "; ".join(short(p) for p in problems(err))))
    print(f"{f}: {results[-1][2]}", file=sys.stderr)


def write(results, args, work):
    counts = collections.Counter(r[2] for r in results)
    tally = collections.Counter()
    for r in results:
        if r[2] not in ("passed", "preprocess passed") + NOT_RUN:
            for p in re.sub(r" \[carried over [^]]*\]$", "", r[4]).split("; "):
                tally[p] += 1
    ran = [r for r in results if r[2] not in NOT_RUN]
    aside = [r for r in results if r[2] in ASIDE]
    passed = sum(1 for r in ran if r[2] in ("passed", "preprocess passed"))
    refused = sum(1 for r in ran if r[2] == "refused")
    carried = sum(1 for r in ran if "[carried over" in r[4])
    not_rerun = sum(1 for r in results if r[2] == NOT_RERUN)
    lines = [f"# Axolotl examples at {COMMIT[:7]} through jtune",
             "",
             f"Written by `tools/axolotl/corpus.py{' --train' if args.train else ''}`: {len(results)} example configs;"
             f" {len(aside)} RL, reward-model or multimodal ones left aside (as issue 12 does; not run);"
             f" {len(ran)} plain SFT/LoRA/QLoRA configs of a family jtune implements, run with a tiny model of that"
             " family (its tokenizer carrying the real checkpoint's special tokens), generated rows and max_steps: 2.",
             "",
             *([f"{not_rerun} in-family configs were not measured again (no time left in that session): their"
                 " rows give the earlier run's outcome and stay out of the rate below.", ""] if not_rerun else []),
             *([f"{carried} rows are carried over from an earlier run (marked in their detail): configs stopped"
                 " when the config loads, by keys the later change did not touch.", ""] if carried else []),
             f"**In-family SFT pass rate: {passed} of {len(ran)} ({100 * passed / max(1, len(ran)):.0f}%)"
             f" {'train 2 steps' if args.train else 'preprocess'}; {refused} refused with named reasons;"
             f" {len(ran) - passed - refused} failed otherwise.**",
             "",
             "| outcome | configs |", "|---|---|"]
    for k, v in counts.most_common():
        lines.append(f"| {k} | {v} |")
    lines += ["", "## What stopped them (each problem counted once per config)", "", "| problem | configs |",
              "|---|---|"]
    for k, v in tally.most_common():
        lines.append(f"| {k.replace('|', '/')} | {v} |")
    lines += ["", "## Each config", "", "| config | family | outcome | detail |", "|---|---|---|---|"]
    for f, fam, outcome, _, detail in results:
        lines.append(f"| {f} | {fam} | {outcome} | {detail.replace('|', '/')[:300]} |")
    with open(args.out, "w") as out:
        out.write("\n".join(lines) + "\n")
    print("\n".join(lines[:14 + len(counts)]))
    print(f"(work files in {work})", file=sys.stderr)


if __name__ == "__main__":
    main()
