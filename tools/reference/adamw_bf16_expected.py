#!/usr/bin/env python3
"""Writes trainer/src/test/resources/fixtures/adamw_bf16_expected.json: torch.optim.AdamW and
torch.nn.utils.clip_grad_norm_ on bfloat16 parameters with bfloat16 gradients (what transformers' Trainer runs
when Axolotl loads a model in torch_dtype=bfloat16 for full fine-tuning: bf16 weights, bf16 .grad, and AdamW's
zeros_like moments in bf16), for Bf16AdamWTorchFixtureTest. Both of torch's non-fused paths are recorded
(foreach=False, the CPU default; foreach=True, the CUDA default); every number is a bf16 value written as a float.
Imports only torch and the standard library; deterministic.

    target/interop-venv/bin/python tools/reference/adamw_bf16_expected.py   # (tools/interop/check.sh builds it)
"""
import json
import os

import torch

torch.manual_seed(0)
bf = torch.bfloat16
p1 = torch.randn(3, 4).to(bf)
p2 = torch.randn(5).to(bf)
grads = [[(torch.randn(3, 4) * 0.5).to(bf), (torch.randn(5) * 0.5).to(bf)] for _ in range(4)]
lrs = [1e-2, 5e-3, 2e-3, 3e-2]


def flat(t):
    return [float(x) for x in t.detach().float().reshape(-1).tolist()]


def run(foreach):
    params = [p1.clone().requires_grad_(True), p2.clone().requires_grad_(True)]
    opt = torch.optim.AdamW([
        {"params": [params[0]], "weight_decay": 0.1},
        {"params": [params[1]], "weight_decay": 0.0},
    ], lr=lrs[0], betas=(0.9, 0.98), eps=1e-6, foreach=foreach)
    norms = []
    for step, lr in enumerate(lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        for p, g in zip(params, grads[step]):
            p.grad = g.clone()
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
        assert norm.dtype == bf
        norms.append(float(norm))
        opt.step()
    state = [opt.state[p] for p in params]
    assert all(s["exp_avg"].dtype == bf and s["exp_avg_sq"].dtype == bf for s in state)
    return {
        "grad_norms": norms,
        "final": [flat(p) for p in params],
        "exp_avg": [flat(s["exp_avg"]) for s in state],
        "exp_avg_sq": [flat(s["exp_avg_sq"]) for s in state],
    }


out = {
    "torch_version": torch.__version__,
    "betas": [0.9, 0.98], "eps": 1e-6, "weight_decay": [0.1, 0.0], "max_norm": 1.0, "lrs": lrs,
    "init": [flat(p1), flat(p2)],
    "shapes": [list(p1.shape), list(p2.shape)],
    "grads": [[flat(g) for g in gs] for gs in grads],
    "single_tensor": run(False),
    "foreach": run(True),
}
path = os.path.join(os.path.dirname(__file__), "..", "..", "trainer", "src", "test", "resources", "fixtures",
                    "adamw_bf16_expected.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", os.path.normpath(path))
print("foreach == single_tensor:", out["foreach"] == out["single_tensor"])
