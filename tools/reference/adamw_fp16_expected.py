#!/usr/bin/env python3
"""Writes trainer/src/test/resources/fixtures/adamw_fp16_expected.json: torch.optim.AdamW and
torch.nn.utils.clip_grad_norm_ on float16 parameters with float16 gradients, for Fp16AdamWTorchFixtureTest.

This is what transformers' Trainer runs for Axolotl's `float16: true` (with fp16: false, bf16: false): Axolotl's
resolve_dtype sets torch_dtype=float16, the model is loaded in fp16, the Trainer runs no AMP and no GradScaler (args.fp16
is False), so .grad is fp16, AdamW's moments are zeros_like(p) (fp16), and clip_grad_norm_ computes fp16 norms. Both of
torch's non-fused paths are recorded (foreach=False, the CPU default; foreach=True, the CUDA default).

Cases:
  - "plain": two tensors (one weight-decayed), eps 1e-6, max_norm 1.0, four steps;
  - "default_eps": transformers' default eps 1e-8, which is below fp16's smallest subnormal (2^-24): denom =
    sqrt(v)/bc2 + eps rounds to 0 where v underflowed (a zero or tiny gradient), and p.addcdiv_(m, denom) makes
    nan (0/0) or inf there: torch's arithmetic, recorded as it is;
  - "overflow": the gradients' global norm overflows fp16 (every value finite, the norm above 65504): the norm is inf,
    the clip coefficient max_norm/(inf + 1e-6) = 0, the gradients become 0 and the step still runs (the moments decay,
    Adam keeps moving on them); then an inf gradient value: inf * 0 = nan in that gradient, nan in the weights.
Every number is written as float32 bits (base64), nan and inf included.

    target/interop-venv/bin/python tools/reference/adamw_fp16_expected.py   # (tools/interop/check.sh builds it)
"""
import base64
import json
import os
import struct

import torch

h = torch.float16


def b64(t):
    v = t.detach().float().reshape(-1).tolist()
    return base64.b64encode(struct.pack("<%df" % len(v), *v)).decode()


def run(init, grads, lrs, wds, eps, max_norm, foreach):
    params = [p.clone().requires_grad_(True) for p in init]
    opt = torch.optim.AdamW([{"params": [p], "weight_decay": wd} for p, wd in zip(params, wds)], lr=lrs[0],
                            betas=(0.9, 0.98), eps=eps, foreach=foreach)
    norms = []
    steps = []
    for step, lr in enumerate(lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        for p, g in zip(params, grads[step]):
            p.grad = g.clone()
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm=max_norm)
        assert norm.dtype == h
        norms.append(float(norm))
        clipped = [b64(p.grad) for p in params]
        opt.step()
        state = [opt.state[p] for p in params]
        assert all(s["exp_avg"].dtype == h and s["exp_avg_sq"].dtype == h for s in state)
        steps.append({"clipped_grads": clipped, "params": [b64(p) for p in params],
                      "exp_avg": [b64(s["exp_avg"]) for s in state],
                      "exp_avg_sq": [b64(s["exp_avg_sq"]) for s in state]})
    return {"grad_norms": b64(torch.tensor(norms)), "steps": steps}


def case(init, grads, lrs, wds, eps, max_norm):
    return {
        "eps": eps, "weight_decay": wds, "max_norm": max_norm, "lrs": lrs,
        "init": [b64(p) for p in init], "shapes": [list(p.shape) for p in init],
        "grads": [[b64(g) for g in gs] for gs in grads],
        "single_tensor": run(init, grads, lrs, wds, eps, max_norm, False),
        "foreach": run(init, grads, lrs, wds, eps, max_norm, True),
    }


torch.manual_seed(1)
cases = {}
init = [torch.randn(3, 4).to(h), torch.randn(5).to(h)]
grads = [[(torch.randn(3, 4) * 0.5).to(h), (torch.randn(5) * 0.5).to(h)] for _ in range(4)]
cases["plain"] = case(init, grads, [1e-2, 5e-3, 2e-3, 3e-2], [0.1, 0.0], 1e-6, 1.0)

init = [torch.randn(4, 8).to(h)]
g = [(torch.randn(4, 8) * 0.5).to(h) for _ in range(3)]
for gs in g:
    gs[0, :4] = 0.0      # no gradient: v stays 0, denom = 0 + 1e-8 rounds to 0 in fp16, m/denom = 0/0
    gs[1, :4] = 3e-3     # g*g*(1-beta2) underflows fp16: v = 0, m/0 = inf
cases["default_eps"] = case(init, [[x] for x in g], [1e-3, 1e-3, 1e-3], [0.0], 1e-8, 1.0)

init = [torch.randn(64, 64).to(h) * 0.1, torch.randn(8).to(h)]
big = (torch.randn(64, 64) * 3000).to(h)      # every value finite; the norm ~ 192000 > 65504
small = (torch.randn(8) * 0.5).to(h)
inf_g = (torch.randn(64, 64) * 0.5).to(h)
inf_g[3, 5] = float("inf")
ok = (torch.randn(64, 64) * 0.5).to(h)
steps = [[(torch.randn(64, 64) * 0.5).to(h), small], [big, small], [ok, small], [inf_g, small]]
assert torch.isfinite(big).all() and float(torch.linalg.vector_norm(big.float())) > 65504
cases["overflow"] = case(init, steps, [1e-3, 1e-3, 1e-3, 1e-3], [0.1, 0.0], 1e-6, 1.0)

out = {"torch_version": torch.__version__, "betas": [0.9, 0.98], "cases": cases}
path = os.path.join(os.path.dirname(__file__), "..", "..", "trainer", "src", "test", "resources", "fixtures",
                    "adamw_fp16_expected.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", os.path.normpath(path))
for name, c in cases.items():
    print(name, "foreach == single_tensor:", c["foreach"] == c["single_tensor"])
