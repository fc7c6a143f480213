#!/usr/bin/env python3
"""Writes trainer/src/test/resources/fixtures/fp16_full_ft_expected.json: three steps of fp16 full fine-tuning of
model/src/test/resources/fixtures/tiny-bf16-llama with transformers and torch, as transformers' Trainer runs them
for an Axolotl config with float16: true (fp16: false, bf16: false) and no adapter: the model loaded in
torch_dtype=float16 (Axolotl's resolve_dtype), no AMP, no GradScaler (args.fp16 is False), trained in place — fp16
weights, fp16 .grad, torch.optim.AdamW (adamw_torch; foreach, CUDA's default) whose zeros_like moments are fp16 —
with clip_grad_norm_(max_grad_norm) and the Trainer's weight-decay groups. One micro-batch per step, constant
learning rate, eager attention. adam_epsilon is 1e-3: in fp16 (1 - beta2) * g * g underflows to 0 for |g| below
about 5.5e-3, most gradients of this model, and torch's update is then lr * m / eps: transformers' default 1e-8
rounds to 0 in fp16 (nan and inf after one step), 1e-6 moves those weights by ~25 (nan loss at step 2), 1e-4 by
~0.25. With 1e-3 the run is a sane one whose weights can be compared (Fp16AdamWTorchFixtureTest covers the eps
arithmetic itself, 1e-8 included).

Mostly a copy of bf16_full_ft_expected.py. For Fp16FullFineTuningTest. Deterministic (fixed seed, CPU, one thread).

    target/interop-venv/bin/python tools/reference/fp16_full_ft_expected.py   # (tools/interop/check.sh builds it)
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
OUT = os.path.join(ROOT, "trainer", "src", "test", "resources", "fixtures", "fp16_full_ft_expected.json")

LR, WD, MAX_NORM, STEPS, ROWS, LEN, EPS = 5e-3, 0.01, 1.0, 3, 2, 12, 1e-3

rng = random.Random(7)
ids = [[rng.randrange(3, 259) for _ in range(LEN)] for _ in range(ROWS)]
labels = [[-100] * 2 + row[2:] for row in ids]  # a masked prompt of two tokens
batches = [{"input_ids": ids, "labels": labels}] * STEPS  # the same batch each step: the loss must fall

model = transformers.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float16, attn_implementation="eager")
model.train()
assert all(p.dtype == torch.float16 for p in model.parameters())
decay = set(transformers.Trainer.get_decay_parameter_names(None, model))
named = list(model.named_parameters())
opt = torch.optim.AdamW([
    {"params": [p for n, p in named if n in decay], "weight_decay": WD},
    {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
], lr=LR, eps=EPS, foreach=True)
losses, norms, first = [], [], None
for b in batches:
    out = model(input_ids=torch.tensor(b["input_ids"]), labels=torch.tensor(b["labels"]))
    out.loss.backward()
    assert all(p.grad.dtype == torch.float16 for p in model.parameters())
    norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)))
    opt.step()
    opt.zero_grad(set_to_none=True)
    losses.append(float(out.loss.detach()))
    if first is None:
        first = {n: p.detach().clone() for n, p in named}
assert all(s["exp_avg"].dtype == torch.float16 for s in opt.state.values())


def bits(t):
    """The tensor's fp16 values, row-major, as one string of 4 hex digits each (the fp16 bit patterns)."""
    return "".join("%04x" % (v & 0xFFFF) for v in t.detach().reshape(-1).view(torch.int16).tolist())


initial = transformers.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float16)
before = dict(initial.named_parameters())
result = {
    "torch_version": torch.__version__, "transformers_version": transformers.__version__,
    "lr": LR, "weight_decay": WD, "max_grad_norm": MAX_NORM, "adam": {"betas": [0.9, 0.999], "eps": EPS},
    "decay": sorted(decay), "batches": batches, "losses": losses, "grad_norms": norms,
    # every trained tensor after the three steps: its fp16 bit patterns, 4 hex digits per value
    "final": {n: bits(p) for n, p in named},
    # and after the first step alone
    "after_first": {n: bits(p) for n, p in first.items()},
    "changed": {n: int((p.detach() != before[n].detach()).sum()) for n, p in named},
}
with open(OUT, "w") as f:
    json.dump(result, f)
    f.write("\n")
print("wrote", os.path.relpath(OUT, ROOT), "losses", losses, "grad norms", norms)
