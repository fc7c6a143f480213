#!/usr/bin/env python3
"""Writes trainer/src/test/resources/fixtures/bf16_full_ft_expected.json: three steps of bf16 full fine-tuning of
model/src/test/resources/fixtures/tiny-bf16-llama with transformers and torch, as transformers' Trainer runs them
for an Axolotl config with bf16: true (or bfloat16: true) and no adapter: the model loaded in torch_dtype=bfloat16
(Axolotl's cfg.torch_dtype), trained in place — bf16 weights, bf16 .grad, torch.optim.AdamW (adamw_torch; foreach,
CUDA's default) whose zeros_like moments are bf16 — with clip_grad_norm_(max_grad_norm) and the Trainer's
weight-decay groups (get_decay_parameter_names: no decay for norm weights). One micro-batch per step, constant
learning rate. Eager attention, no autocast: the model holds only bf16 tensors (with flash attention or FSDP
Axolotl casts norms and embeddings back to bf16; see README "Precision").

For Bf16FullFineTuningTest. Deterministic (fixed seed, CPU, one thread).

    target/interop-venv/bin/python tools/reference/bf16_full_ft_expected.py   # (tools/interop/check.sh builds it)
"""
import json
import os
import random

import torch
import transformers

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
MODEL = os.path.join(ROOT, "model", "src", "test", "resources", "fixtures", "tiny-bf16-llama")
OUT = os.path.join(ROOT, "trainer", "src", "test", "resources", "fixtures", "bf16_full_ft_expected.json")

LR, WD, MAX_NORM, STEPS, ROWS, LEN = 5e-3, 0.01, 1.0, 3, 2, 12

rng = random.Random(7)
ids = [[rng.randrange(3, 259) for _ in range(LEN)] for _ in range(ROWS)]
labels = [[-100] * 2 + row[2:] for row in ids]  # a masked prompt of two tokens
batches = [{"input_ids": ids, "labels": labels}] * STEPS  # the same batch each step: the loss must fall

model = transformers.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16, attn_implementation="eager")
model.train()
assert all(p.dtype == torch.bfloat16 for p in model.parameters())
decay = set(transformers.Trainer.get_decay_parameter_names(None, model))
named = list(model.named_parameters())
opt = torch.optim.AdamW([
    {"params": [p for n, p in named if n in decay], "weight_decay": WD},
    {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
], lr=LR, foreach=True)
losses, norms, first = [], [], None
for b in batches:
    out = model(input_ids=torch.tensor(b["input_ids"]), labels=torch.tensor(b["labels"]))
    out.loss.backward()
    assert all(p.grad.dtype == torch.bfloat16 for p in model.parameters())
    norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)))
    opt.step()
    opt.zero_grad(set_to_none=True)
    losses.append(float(out.loss.detach()))
    if first is None:
        first = {n: p.detach().clone() for n, p in named}
assert all(s["exp_avg"].dtype == torch.bfloat16 for s in opt.state.values())


def bits(t):
    """The tensor's bf16 values, row-major, as one string of 4 hex digits each (the bf16 bit patterns)."""
    return "".join("%04x" % (v & 0xFFFF) for v in t.detach().reshape(-1).view(torch.int16).tolist())


initial = transformers.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16)
before = dict(initial.named_parameters())
result = {
    "torch_version": torch.__version__, "transformers_version": transformers.__version__,
    "lr": LR, "weight_decay": WD, "max_grad_norm": MAX_NORM, "adam": {"betas": [0.9, 0.999], "eps": 1e-8},
    "decay": sorted(decay), "batches": batches, "losses": losses, "grad_norms": norms,
    # every trained tensor after the three steps: its bf16 bit patterns, 4 hex digits per value
    "final": {n: bits(p) for n, p in named},
    # and after the first step alone
    "after_first": {n: bits(p) for n, p in first.items()},
    "changed": {n: int((p.detach() != before[n].detach()).sum()) for n, p in named},
}
with open(OUT, "w") as f:
    json.dump(result, f)
    f.write("\n")
print("wrote", os.path.relpath(OUT, ROOT), "losses", losses, "grad norms", norms)
