#!/usr/bin/env python3
"""Axolotl's example configs as a measure of jtune (issue 12, part 3): which run as written.

For every examples/**/*.yml of axolotl-ai-cloud/axolotl at the commit that AxolotlKeys pins, substitutes only
  - base_model (and base_model_config / tokenizer_config when given): a tiny model of the config's family, from
    model/src/test/resources/fixtures/families/<family> (Llama: ./launch.sh init-model --preset tiny);
  - each datasets:/test_datasets: entry's path: generated rows in the layout its type asks for (data_files and
    name, which point into a Hub dataset, are dropped);
  - output_dir, dataset_prepared_path, and max_steps: 2;
runs ./launch.sh preprocess (and train, with --train, where preprocess passed), and prints one row per config:
passed, refused (the problems jtune named) or failed (anything else: a stack trace, an unknown key, a timeout).
Configs whose model family jtune does not implement are listed as "other family" and not run.

Usage: tools/axolotl/corpus.py AXOLOTL_GIT_DIR [--train] [--only SUBSTRING] [--out tools/axolotl/corpus-result.md]
Needs python3 with PyYAML; the jtune jar is built by ./launch.sh on first use.
"""
import argparse
import collections
import json
import os
import re
import shutil
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


def model_dir(family, work):
    """A tiny model of the family, made once per run."""
    out = os.path.join(work, "models", family)
    if not os.path.isdir(out):
        if family == "llama":
            subprocess.run([os.path.join(ROOT, "launch.sh"), "init-model", "--preset", "tiny", "--out", out],
                           check=True, capture_output=True)
        else:
            shutil.copytree(os.path.join(FIXTURES, family), out)
    return out


WORDS = "the quick brown fox jumps over a lazy dog while seven small birds sing about rivers and hills".split()


def sentence(i, n=8):
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(n)).capitalize() + "."


def rows_for(entry, n=64):
    """Rows in the layout the entry's type asks for (Axolotl's field names and defaults, or the entry's own)."""
    t = entry.get("type")
    if isinstance(t, dict):  # user-defined prompt format
        fi, fin, fo = (t.get("field_instruction", "instruction"), t.get("field_input", "input"),
                       t.get("field_output", "output"))
        return [{fi: sentence(i), fin: sentence(i + 1, 4) if i % 2 else "", fo: sentence(i + 2, 10),
                 t.get("field_system", "system"): "Be brief."} for i in range(n)]
    t = str(t or "")
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


def substitute(config, work, name):
    base = config.get("base_model")
    family = family_of(base)
    if family is None:
        return None, family
    model = model_dir(family, work)
    config["base_model"] = model
    for key in ("base_model_config", "tokenizer_config"):
        if config.get(key):
            config[key] = model
    data = os.path.join(work, "data", name)
    os.makedirs(data, exist_ok=True)
    for section in ("datasets", "test_datasets"):
        entries = config.get(section)
        if not isinstance(entries, list):
            continue
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            path = os.path.join(data, f"{section}-{i}.jsonl")
            with open(path, "w") as f:
                for row in rows_for(entry):
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


def run(verb, cfg, timeout):
    try:
        p = subprocess.run([os.path.join(ROOT, "launch.sh"), verb, cfg], capture_output=True, text=True,
                           timeout=timeout)
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


def verdict(stderr):
    text = stderr
    if "Exception" in text and "\tat " in text or "timed out" in text:
        return "failed"
    ps = problems(stderr)
    if any("unknown key" in p for p in ps):
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
    args = ap.parse_args()
    git = ["git", "--git-dir", args.axolotl]
    files = [f for f in subprocess.run(git + ["ls-tree", "-r", "--name-only", COMMIT, "examples"], check=True,
                                       capture_output=True, text=True).stdout.split()
             if f.endswith((".yml", ".yaml")) and args.only in f]
    work = tempfile.mkdtemp(prefix="jtune-corpus-")
    results = []
    done = {}
    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as c:
            for line in c:
                row = json.loads(line)
                done[row[0]] = tuple(row)
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
            with open(args.cache, "a") as c:
                c.write(json.dumps(results[-1]) + "\n")
    write(results, args, work)


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
    config, family = substitute(config, work, name)
    if config is None:
        results.append((f, "-", "other family", "", str(yaml.safe_load(text).get("base_model"))))
        return
    cfg = os.path.join(work, name)
    with open(cfg, "w") as out:
        yaml.safe_dump(config, out, sort_keys=False)
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
    rc, out_text, err = run("train", cfg, args.timeout)
    if rc == 0:
        results.append((f, family, "passed", "trained 2 steps", f"{notes} info/warning lines"))
    else:
        results.append((f, family, "train " + verdict(err), "", "; ".join(short(p) for p in problems(err))))
    print(f"{f}: {results[-1][2]}", file=sys.stderr)


def write(results, args, work):
    counts = collections.Counter(r[2] for r in results)
    tally = collections.Counter()
    for r in results:
        if r[2] not in ("passed", "preprocess passed", "other family", "not a training config", "not YAML"):
            for p in r[4].split("; "):
                tally[p] += 1
    ran = [r for r in results if r[1] != "-"]
    lines = [f"# Axolotl examples at {COMMIT[:7]} through jtune",
             "",
             f"Written by `tools/axolotl/corpus.py{' --train' if args.train else ''}`: {len(results)} example configs,"
             f" {len(ran)} of a family jtune implements (tiny model of that family, generated rows, max_steps: 2).",
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
    print("\n".join(lines[:12 + len(counts)]))
    print(f"(work files in {work})", file=sys.stderr)


if __name__ == "__main__":
    main()
