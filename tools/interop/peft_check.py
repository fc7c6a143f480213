"""jtune's LoRA against real PEFT (0.21, from the local wheel mirror). Run by tools/interop/check.sh.

usage:
  peft_check.py jtune-adapter BASE ADAPTER MERGED INPUT ADAPTER_SCORES MERGED_SCORES
      ADAPTER (written by jtune, random B) must load into PeftModel.from_pretrained with every tensor taken;
      PEFT's NLL on INPUT must equal jtune's `score --lora-model-dir` output (ADAPTER_SCORES, rel 1e-5, fp32);
      PEFT's merge_and_unload() weights must equal jtune's `merge-lora` output MERGED (max abs diff <= 1e-6);
      transformers must load MERGED, and its NLL (and jtune's score of it, MERGED_SCORES) must agree.
  peft_check.py grown-adapter BASE ADAPTER MERGED INPUT ADAPTER_SCORES MERGED_SCORES NEW_TOKENS_JSON PAD_TOKEN
      as jtune-adapter for an adapter trained with added tokens: the adapter folder's tokenizer (transformers) has
      the new tokens whole and the new pad token, PEFT loads the adapter after base.resize_token_embeddings(
      len(tokenizer)), and the merged model (grown vocab_size, grown tokenizer) loads in transformers.
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


def jtune_adapter(base, adapter, merged, input_path, adapter_scores, merged_scores, grown=False):
    tok = AutoTokenizer.from_pretrained(adapter if grown else base)
    base_model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if grown:  # PEFT's way for an adapter trained with added tokens: resize the base to the tokenizer first
        base_model.resize_token_embeddings(len(tok))
    model = PeftModel.from_pretrained(base_model, adapter)
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


def grown_adapter(base, adapter, merged, input_path, adapter_scores, merged_scores, new_tokens, pad_token):
    """An adapter trained by jtune with added tokens: its folder's tokenizer is the grown one (transformers gives
    the ids jtune gave), PEFT loads it after resize_token_embeddings(len(tokenizer)), and jtune's merge has the
    grown vocabulary."""
    base_tok = AutoTokenizer.from_pretrained(base)
    tok = AutoTokenizer.from_pretrained(adapter)
    tokens = json.loads(new_tokens)
    want = len(base_tok) + len([t for t in tokens + [pad_token] if t not in base_tok.get_vocab()])
    if len(tok) != want:
        print(f"the grown tokenizer has {len(tok)} tokens, expected {want}")
        return 1
    if tok.pad_token != pad_token or tok.pad_token_id < len(base_tok):
        print(f"pad token {tok.pad_token!r} (id {tok.pad_token_id}), expected the new {pad_token!r}")
        return 1
    for t in tokens:
        ids = tok(t, add_special_tokens=False)["input_ids"]
        if len(ids) != 1 or ids[0] < len(base_tok):
            print(f"transformers splits the added token {t!r} into {ids}")
            return 1
    print(f"  AutoTokenizer.from_pretrained(adapter folder): {len(tok)} tokens, added tokens whole, pad {pad_token!r}")
    saved = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    rows = saved["base_model.model.model.embed_tokens.weight"].shape[0]
    if rows != len(tok):
        print(f"the adapter's embed_tokens copy has {rows} rows, the tokenizer {len(tok)}")
        return 1
    with open(os.path.join(merged, "config.json")) as f:
        if json.load(f)["vocab_size"] != len(tok):
            print("merged config.json vocab_size is not the grown size")
            return 1
    if len(AutoTokenizer.from_pretrained(merged)) != len(tok):
        print("the merged folder's tokenizer is not the grown one")
        return 1
    return jtune_adapter(base, adapter, merged, input_path, adapter_scores, merged_scores, grown=True)


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
    sys.exit({"jtune-adapter": jtune_adapter, "peft-adapter": peft_adapter,
              "grown-adapter": grown_adapter}[mode](*args))
