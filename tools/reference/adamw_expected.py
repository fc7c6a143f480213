#!/usr/bin/env python3
"""Writes trainer/src/test/resources/fixtures/adamw_expected.json: torch.optim.AdamW (PyTorch's own
implementation, default single-tensor path) and torch.nn.utils.clip_grad_norm_ applied to fixed parameters
and gradients, for AdamWTorchFixtureTest. Imports only torch and the standard library; deterministic.

    /usr/bin/python3 tools/reference/adamw_expected.py
"""
import json
import math
import os

import torch

torch.manual_seed(0)
p1 = torch.randn(3, 4)
p2 = torch.randn(5)
params = [p1.clone().requires_grad_(True), p2.clone().requires_grad_(True)]
grads = [[torch.randn(3, 4) * 0.5, torch.randn(5) * 0.5] for _ in range(4)]
lrs = [1e-2, 5e-3, 2e-3, 3e-2]
opt = torch.optim.AdamW([
    {"params": [params[0]], "weight_decay": 0.1},
    {"params": [params[1]], "weight_decay": 0.0},
], lr=lrs[0], betas=(0.9, 0.98), eps=1e-6, foreach=False)
norms = []
for step, lr in enumerate(lrs):
    for group in opt.param_groups:
        group["lr"] = lr
    for p, g in zip(params, grads[step]):
        p.grad = g.clone()
    norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)))
    opt.step()

def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]

out = {
    "torch_version": torch.__version__,
    "betas": [0.9, 0.98], "eps": 1e-6, "weight_decay": [0.1, 0.0], "max_norm": 1.0, "lrs": lrs,
    "init": [flat(p1), flat(p2)],
    "shapes": [list(p1.shape), list(p2.shape)],
    "grads": [[flat(g) for g in gs] for gs in grads],
    "grad_norms": norms,
    "final": [flat(p) for p in params],
}
path = os.path.join(os.path.dirname(__file__), "..", "..", "trainer", "src", "test", "resources", "fixtures",
                    "adamw_expected.json")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", os.path.normpath(path))
