"""jtune's LoRA against real PEFT (0.21, from the local wheel mirror). Run by tools/interop/check.sh.

usage:
  peft_check.py jtune-adapter BASE ADAPTER MERGED INPUT ADAPTER_SCORES MERGED_SCORES
      ADAPTER (written by jtune, random B) must load into PeftModel.from_pretrained with every tensor taken;
      PEFT's NLL on INPUT must equal jtune's `score --lora-model-dir` output (ADAPTER_SCORES, rel 1e-5, fp32);
      PEFT's merge_and_unload() weights must equal jtune's `merge-lora` output MERGED (max abs diff <= 1e-6);
      transformers must load MERGED, and its NLL (and jtune's score of it, MERGED_SCORES) must agree.
  peft_check.py peft-adapter BASE OUT INPUT EXPECTED
      writes a PEFT adapter with random B (and a saved lm_head) to OUT and PEFT's NLL on INPUT to EXPECTED,
      for check.sh to score with jtune and compare.
"""
import json
import os
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_score import compare, score_rows  # noqa: E402


def peft_name(key):
    """The parameter a saved key loads into (PEFT inserts the adapter name `default`)."""
    if ".lora_A." in key or ".lora_B." in key:
        return key.replace(".lora_A.", ".lora_A.default.").replace(".lora_B.", ".lora_B.default.")
    return key[: -len(".weight")] + ".modules_to_save.default.weight"


def jtune_adapter(base, adapter, merged, input_path, adapter_scores, merged_scores):
    tok = AutoTokenizer.from_pretrained(base)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter)
    params = dict(model.named_parameters())
    saved = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    taken = set()
    for key, value in saved.items():
        name = peft_name(key)
        if name not in params:
            print(f"jtune adapter tensor {key} has no PEFT parameter {name}")
            return 1
        if not torch.equal(params[name].detach(), value):
            print(f"PEFT did not load {key} into {name}")
            return 1
        taken.add(name)
    trainable = {n for n, p in params.items() if "lora_" in n or "modules_to_save" in n}
    if trainable - taken:
        print(f"PEFT parameters the jtune adapter does not set: {sorted(trainable - taken)[:5]}")
        return 1
    if any(float(v.abs().max()) == 0 for k, v in saved.items() if "lora_B" in k):
        print("the jtune test adapter has an all-zero lora_B; the check would prove nothing")
        return 1
    print(f"  PeftModel.from_pretrained took all {len(saved)} jtune tensors")
    rows = score_rows(model, tok, input_path)
    if compare(rows, adapter_scores, 1e-5):
        return 1
    merged_peft = model.merge_and_unload().state_dict()
    ours = load_file(os.path.join(merged, "model.safetensors"))
    if set(ours) != set(merged_peft):
        print(f"merged tensor names differ: {sorted(set(ours) ^ set(merged_peft))[:5]}")
        return 1
    worst = max(float((ours[k].float() - merged_peft[k].float()).abs().max()) for k in ours)
    if worst > 1e-6:
        print(f"merged weights differ from PEFT's merge_and_unload by {worst:.3e} > 1e-6")
        return 1
    print(f"  merge-lora agrees with PEFT merge_and_unload over {len(ours)} tensors (max abs diff {worst:.1e})")
    hf_merged = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    merged_rows = score_rows(hf_merged, AutoTokenizer.from_pretrained(merged), input_path)
    for a, b in zip(merged_rows, rows):
        key = "mean_nll" if a.get("summary") else "nll"
        if abs(a[key] - b[key]) > 1e-5 * abs(b[key]):
            print(f"transformers on the merged directory: {a[key]} vs PeftModel {b[key]}")
            return 1
    print("  transformers loads the merged directory and matches the PeftModel")
    return compare(merged_rows, merged_scores, 1e-5)


def peft_adapter(base, out, input_path, expected):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, lora_dropout=0.1,
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj"],
                        modules_to_save=["lm_head"])
    model = get_peft_model(model, config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
            elif "modules_to_save" in name:
                p.add_(torch.randn_like(p) * 0.01)
    model.save_pretrained(out)
    tok = AutoTokenizer.from_pretrained(base)
    with open(expected, "w", encoding="utf-8") as f:
        for row in score_rows(model, tok, input_path):
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    sys.exit({"jtune-adapter": jtune_adapter, "peft-adapter": peft_adapter}[mode](*args))
