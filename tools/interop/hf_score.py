"""Score a JSONL file with Hugging Face transformers, printing the same JSON lines as `./launch.sh score`.

Independent of jtune: tokenization by transformers' AutoTokenizer (tokenizer.json), the forward pass by the
transformers class config.json names (load_model). Used by tools/interop/check.sh to compare jtune against
transformers.

usage: python hf_score.py MODEL_DIR INPUT.jsonl DTYPE [JTUNE_OUTPUT.jsonl RTOL]
With JTUNE_OUTPUT and RTOL, compares line by line (tokens equal, nll within RTOL relative) and exits 1 on
a mismatch instead of printing.
"""
import json
import math
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoTokenizer


def main():
    model_dir, input_path = sys.argv[1], sys.argv[2]
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
        sys.argv[3] if len(sys.argv) > 3 else "fp32"]
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = load_model(model_dir, dtype)
    rows = score_rows(model, tok, input_path)
    if len(sys.argv) > 5:
        sys.exit(compare(rows, sys.argv[4], float(sys.argv[5])))
    for row in rows:
        print(json.dumps(row))


def load_model(model_dir, dtype):
    """The checkpoint as transformers loads it: a multimodal *ForConditionalGeneration (Gemma 3 with its vision
    tower) through AutoModelForImageTextToText, every other family through AutoModelForCausalLM. Always eager
    attention: sdpa silently ignores Gemma 2's attn_logit_softcapping (eager is the faithful path)."""
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        architecture = (json.load(f).get("architectures") or [""])[0]
    auto = AutoModelForImageTextToText if architecture.endswith("ForConditionalGeneration") else AutoModelForCausalLM
    return auto.from_pretrained(model_dir, dtype=dtype, attn_implementation="eager")


def score_rows(model, tok, input_path):
    """Per-line {"tokens", "nll", "mean_nll"} and a summary row, as `./launch.sh score` prints them."""
    model.eval()
    rows = []
    total_tokens, total_nll = 0, 0.0
    with open(input_path, encoding="utf-8") as f, torch.no_grad():
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            if "text" in row:
                ids = tok(row["text"])["input_ids"]
                first = 1
            else:
                ids = tok(row["prompt"] + row["completion"])["input_ids"]
                alone = tok(row["prompt"])["input_ids"]
                first = 0
                while first < len(alone) and first < len(ids) and alone[first] == ids[first]:
                    first += 1
                first = max(first, 1)
            logits = model(torch.tensor([ids])).logits[0].float()
            logp = torch.log_softmax(logits.double(), dim=-1)
            nll = -sum(logp[t - 1, ids[t]].item() for t in range(first, len(ids)))
            n = len(ids) - first
            total_tokens += n
            total_nll += nll
            rows.append({"tokens": n, "nll": nll, "mean_nll": nll / n if n else None})
    mean = total_nll / total_tokens
    rows.append({"summary": True, "tokens": total_tokens, "nll": total_nll, "mean_nll": mean,
                 "perplexity": math.exp(mean)})
    return rows


def compare(ours, jtune_path, rtol):
    with open(jtune_path, encoding="utf-8") as f:
        theirs = [json.loads(l) for l in f if l.strip()]
    if len(theirs) != len(ours):
        print(f"line count differs: transformers {len(ours)}, jtune {len(theirs)}")
        return 1
    worst = 0.0
    for i, (a, b) in enumerate(zip(ours, theirs)):
        key = "mean_nll" if a.get("summary") else "nll"
        if a["tokens"] != b["tokens"]:
            print(f"line {i + 1}: tokens transformers {a['tokens']} jtune {b['tokens']}")
            return 1
        rel = abs(a[key] - b[key]) / max(abs(a[key]), 1e-12)
        worst = max(worst, rel)
        if rel > rtol:
            print(f"line {i + 1}: {key} transformers {a[key]} jtune {b[key]} (relative {rel:.2e} > {rtol})")
            return 1
    print(f"  {len(ours) - 1} lines agree; worst relative difference {worst:.2e} (tolerance {rtol})")
    return 0


if __name__ == "__main__":
    main()
