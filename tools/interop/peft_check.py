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
  peft_check.py families FIXTURES WORK CASE...
      for each family fixture FIXTURES/CASE, what check.sh wrote under WORK/CASE: fp32.jsonl and bf16.jsonl
      (jtune's scores of the fixture, against transformers at 1e-5 and 5e-3), lora/ lora.jsonl lora-merged/
      lora-merged.jsonl (as jtune-adapter), qlora/ qlora.jsonl (a QLoRA adapter, PEFT on the dense base; int8/
      int8.jsonl likewise for a LoRA adapter trained over the LLM.int8 base), and
      where there is one, peft-adapter/jtune-merged against peft-adapter/peft-merged (from peft-multimodal).
  peft_check.py peft-multimodal BASE OUT
      writes a PEFT adapter whose list target_modules wrap a multimodal model's vision tower too (OUT/adapter)
      and PEFT's merged model (OUT/peft-merged), for check.sh to merge with jtune and compare.
"""
import json
import os
import sys
import tempfile
import warnings

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from transformers import AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_score import compare, load_model, score_rows  # noqa: E402

# Said once per multimodal adapter by loaded_adapter instead (and checked there).
warnings.filterwarnings("ignore", message="Found missing adapter keys")


def peft_name(key):
    """The parameter a saved key loads into (PEFT inserts the adapter name `default`)."""
    if ".lora_A." in key or ".lora_B." in key:
        return key.replace(".lora_A.", ".lora_A.default.").replace(".lora_B.", ".lora_B.default.")
    return key[: -len(".weight")] + ".modules_to_save.default.weight"


def loaded_adapter(model, adapter):
    """PeftModel.from_pretrained(model, adapter), checked to have taken every saved tensor, to have no adapter
    parameter the file does not set, and a non-zero lora_B; None (after saying why) where it is not so."""
    model = PeftModel.from_pretrained(model, adapter)
    params = dict(model.named_parameters())
    saved = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    taken = set()
    for key, value in saved.items():
        name = peft_name(key)
        if name not in params:
            print(f"jtune adapter tensor {key} has no PEFT parameter {name}")
            return None
        if not torch.equal(params[name].detach(), value.to(params[name].dtype)):
            print(f"PEFT did not load {key} into {name}")
            return None
        taken.add(name)
    trainable = {n for n, p in params.items() if "lora_" in n or "modules_to_save" in n}
    # A list target_modules (q_proj, ...) makes PEFT wrap the vision tower's q/k/v_proj of a multimodal Gemma 3
    # too; jtune adapts the text model only, so PEFT leaves those at its init (B zero: the identity) and warns
    # "Found missing adapter keys". Accepted only there, and only with B zero.
    idle = {n for n in trainable - taken if ".vision_tower." in n}
    if any(float(params[n].abs().max()) != 0 for n in idle if ".lora_B." in n):
        print("PEFT's LoRA layers outside the text model are not the identity")
        return None
    if trainable - taken - idle:
        print(f"PEFT parameters the jtune adapter does not set: {sorted(trainable - taken - idle)[:5]}")
        return None
    if idle:
        print(f"  PEFT also wrapped {len(idle) // 2} vision-tower projections (lora_B zero: unchanged)")
    if any(float(v.abs().max()) == 0 for k, v in saved.items() if "lora_B" in k):
        print("the jtune adapter has an all-zero lora_B; the check would prove nothing")
        return None
    print(f"  PeftModel.from_pretrained took all {len(saved)} jtune tensors")
    return model


def same_merge(base, merged, peft_merged):
    """Whether jtune's merged directory MERGED holds what transformers saves for PEFT's merged model
    (merge_and_unload, then save_pretrained); 1 (after saying how) where it does not."""
    with tempfile.TemporaryDirectory() as tmp:
        # What transformers writes for the merged model: its tensor names (tied weights left out, Gemma 3's
        # multimodal checkpoint in its legacy layout) and dtypes are the reference for jtune's files.
        peft_merged.save_pretrained(tmp)
        theirs = load_file(os.path.join(tmp, "model.safetensors"))
    ours = load_file(os.path.join(merged, "model.safetensors"))
    if set(ours) != set(theirs):
        print(f"merged tensor names differ from PEFT's merge_and_unload + save_pretrained: "
              f"jtune only {sorted(set(ours) - set(theirs))[:5]}, PEFT only {sorted(set(theirs) - set(ours))[:5]}")
        return 1
    dtypes = {k for k in ours if ours[k].dtype != theirs[k].dtype}
    if dtypes:
        k = sorted(dtypes)[0]
        print(f"merged {k}: jtune {ours[k].dtype}, PEFT {theirs[k].dtype}")
        return 1
    worst, ties, total = 0.0, 0, 0
    for k in ours:
        diff = (ours[k].float() - theirs[k].float()).abs()
        total += diff.numel()
        if ours[k].dtype == torch.float32:
            worst = max(worst, float(diff.max()))
            continue
        # bf16/fp16: both add the fp32 delta in fp32 and round once, but PEFT's delta is torch's fp32 matmul and
        # jtune's a double dot product rounded once; where W + delta lies within that last-bit difference of a
        # rounding midpoint (measured: 1 element in ~10^5), the two round to neighbours. One ulp, no more.
        ulp = torch.finfo(ours[k].dtype).eps * torch.exp2(torch.floor(torch.log2(
            torch.maximum(ours[k].float().abs(), theirs[k].float().abs()).clamp_min(1e-30))))
        if bool((diff > ulp).any()):
            worst = max(worst, float(diff.max()))
        ties += int((diff > 0).sum())
    if worst > 1e-6 or ties > total // 1000:
        print(f"merged weights differ from PEFT's merge_and_unload: max abs diff {worst:.3e} beyond one ulp, "
              f"{ties} of {total} elements differ")
        return 1
    base_file = os.path.join(base, "model.safetensors")
    if os.path.exists(base_file):
        before = load_file(base_file)
        changed = sum(1 for k in ours if k in before and not torch.equal(ours[k], before[k]))
        if changed == 0:
            print("merge-lora changed no weight of the base; the check would prove nothing")
            return 1
    dtype = next(iter(ours.values())).dtype
    print(f"  merge-lora agrees with PEFT merge_and_unload over {len(ours)} {dtype} tensors ("
          + (f"{ties} of {total} elements one ulp apart, the rest bit-identical" if ties else f"max abs diff {worst:.1e}")
          + ")")
    return 0


def jtune_adapter(base, adapter, merged, input_path, adapter_scores, merged_scores, grown=False):
    tok = AutoTokenizer.from_pretrained(adapter if grown else base)

    def base_model(dtype):
        m = load_model(base, dtype)
        if grown:  # PEFT's way for an adapter trained with added tokens: resize the base to the tokenizer first
            m.resize_token_embeddings(len(tok))
        return m

    model = loaded_adapter(base_model(torch.float32), adapter)
    if model is None:
        return 1
    rows = score_rows(model, tok, input_path)
    if compare(rows, adapter_scores, 1e-5):
        return 1
    # PEFT merges into the weights in the checkpoint's own dtype (the delta in fp32, one rounding), as jtune's
    # merge-lora writes them: a bf16 base gives bf16 merged weights, so the merge is compared on that base.
    stored = base_model("auto")
    fp32 = stored.dtype == torch.float32
    peft_merged = model if fp32 else loaded_adapter(stored, adapter)
    if peft_merged is None:
        return 1
    peft_merged = peft_merged.merge_and_unload()
    if same_merge(base, merged, peft_merged):
        return 1
    hf_merged = load_model(merged, torch.float32)
    merged_rows = score_rows(hf_merged, AutoTokenizer.from_pretrained(merged), input_path)
    reference = rows if fp32 else score_rows(peft_merged.float(), tok, input_path)
    for a, b in zip(merged_rows, reference):
        key = "mean_nll" if a.get("summary") else "nll"
        if abs(a[key] - b[key]) > 1e-5 * abs(b[key]):
            print(f"transformers on the merged directory: {a[key]} vs PEFT's merged model {b[key]}")
            return 1
    print("  transformers loads the merged directory and matches PEFT's merged model")
    return compare(merged_rows, merged_scores, 1e-5)


def qlora_adapter(base, adapter, input_path, adapter_scores):
    """An adapter trained over the NF4 base, applied by PEFT to the dense (unquantized) base, against jtune
    scoring it over the same dense base. bitsandbytes has no CPU build here, so PEFT cannot load the 4-bit base;
    what is checked is that the QLoRA adapter is a PEFT adapter like any other."""
    tok = AutoTokenizer.from_pretrained(base)
    model = loaded_adapter(load_model(base, torch.float32), adapter)
    if model is None:
        return 1
    return compare(score_rows(model, tok, input_path), adapter_scores, 1e-5)


def peft_multimodal(base, out):
    """A PEFT adapter for a multimodal checkpoint with target_modules as a list of names, so that PEFT wraps the
    vision tower's q/k/v_proj too, every lora_B random; writes OUT/adapter and PEFT's merge (merge_and_unload in
    the checkpoint's dtype, save_pretrained) OUT/peft-merged, for jtune's merge-lora to reproduce."""
    torch.manual_seed(1)
    model = get_peft_model(load_model(base, "auto"), LoraConfig(
        task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    if not any(".vision_tower." in name for name, _ in model.named_parameters() if "lora_B" in name):
        print("PEFT wrapped no vision-tower projection; the check would not test it")
        return 1
    model.save_pretrained(os.path.join(out, "adapter"))
    model.merge_and_unload().save_pretrained(os.path.join(out, "peft-merged"))
    return 0


def families(fixtures, work, *cases):
    """Every family fixture, with what check.sh wrote for it under WORK/CASE: transformers' scores (fp32 1e-5,
    bf16 5e-3), the jtune LoRA adapter in PEFT with its merge, the jtune QLoRA adapter in PEFT."""
    failed = []
    for case in cases:
        base, out = os.path.join(fixtures, case), os.path.join(work, case)
        inputs = os.path.join(base, "inputs.jsonl")
        tok = AutoTokenizer.from_pretrained(base)
        steps = []
        for dtype, name, rtol in ((torch.float32, "fp32", 1e-5), (torch.bfloat16, "bf16", 5e-3)):
            steps.append((f"score {name}", lambda d=dtype, n=name, r=rtol: compare(
                score_rows(load_model(base, d), tok, inputs), os.path.join(out, f"{n}.jsonl"), r)))
        steps.append(("LoRA", lambda: jtune_adapter(base, os.path.join(out, "lora"), os.path.join(out, "lora-merged"),
                                                     inputs, os.path.join(out, "lora.jsonl"),
                                                     os.path.join(out, "lora-merged.jsonl"))))
        steps.append(("QLoRA", lambda: qlora_adapter(base, os.path.join(out, "qlora"), inputs,
                                                     os.path.join(out, "qlora.jsonl"))))
        if os.path.isdir(os.path.join(out, "int8")):
            # Trained over the LLM.int8 base (load_in_8bit); like QLoRA's, applied to the dense base on both sides.
            steps.append(("LoRA over the 8-bit base", lambda: qlora_adapter(base, os.path.join(out, "int8"), inputs,
                                                                        os.path.join(out, "int8.jsonl"))))
        def moved(adapter):
            """The adapter must move the scores (B far from zero), or agreeing would prove little."""
            summary = [json.loads(l) for l in open(os.path.join(out, f"{adapter}.jsonl")) if l.strip()][-1]
            plain = [json.loads(l) for l in open(os.path.join(out, "fp32.jsonl")) if l.strip()][-1]
            print(f"  the {adapter} adapter moves jtune's mean nll {plain['mean_nll']:.4f} -> {summary['mean_nll']:.4f}")
            return abs(summary["mean_nll"] - plain["mean_nll"]) < 1e-2
        steps.insert(2, ("adapters train", lambda: moved("lora") or moved("qlora")
                         or (os.path.isdir(os.path.join(out, "int8")) and moved("int8"))))
        multimodal = os.path.join(out, "peft-adapter")
        if os.path.isdir(multimodal):
            steps.append(("PEFT adapter (vision tower included) merged by jtune", lambda m=multimodal: same_merge(
                base, os.path.join(m, "jtune-merged"), load_model(os.path.join(m, "peft-merged"), "auto"))))
        for step, run in steps:
            print(f"interop: {case} {step}")
            if run():
                failed.append(f"{case} {step}")
    if failed:
        print(f"interop: FAILED: {', '.join(failed)}")
    return 1 if failed else 0


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
    model = load_model(base, torch.float32)
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
    sys.exit({"jtune-adapter": jtune_adapter, "peft-adapter": peft_adapter, "families": families,
              "peft-multimodal": peft_multimodal, "grown-adapter": grown_adapter}[mode](*args))
