#!/usr/bin/env python3
"""Two steps of Axolotl's Muon (optimizer: muon) on small tensors, for jtune's MuonTest.

    /work/main/target/interop-venv/bin/python tools/reference/muon_expected.py > trainer/src/test/resources/muon/expected.json

Axolotl 067b021 (core/builders/base.py) builds `optimizer: muon` with axolotl-contribs-mit's MuonOptimizerFactory
(DistMuonOptimizerFactory under a device mesh: the same update). Axolotl pins axolotl-contribs-mit==0.0.6, which is
not in the mirror this was written from; the code below is restated from its repository at 8d21692 (the PR #2 merge
that made muon/ a package: muon/axolotl_.py, muon/muon.py, dion/scalar_opts.py; dist_muon.py at 159e59f has the same
arithmetic), a port of Microsoft's dion Muon:
- parameter groups (axolotl_.py): names containing embed_tokens or lm_head -> AdamW with weight decay 0; other
  tensors of fewer than 2 dimensions -> AdamW, with weight decay where transformers' get_decay_parameter_names says
  (not biases, not norms); matrices -> Muon, with weight decay where decay names say;
  lr = learning_rate for all; mu 0.95; nesterov True; adjust_lr "spectral_norm"; betas (adam_beta1, adam_beta2) only
  when both are set, else (0.9, 0.95); epsilon 1e-8.
- Muon (muon.py): M = mu*M + G; U = mu*M + G (nesterov); U to bf16; Newton-Schulz in bf16: transpose when rows >
  cols, X / (||X||_F + epsilon), five steps A = X X^T, B = b A + c A A, X = a X + B X with the coefficients below;
  X *= 1 - lr*wd; X -= (lr * sqrt(fan_out / fan_in)) * U.
- AdamW (scalar_opts.py adamw_update_foreach): lerp moments, bias corrections, X *= 1 - lr*wd,
  X -= lr/bc1 * M / (sqrt(V)/sqrt(bc2) + eps).
Run eagerly on CPU (Axolotl compiles these with torch.compile and runs a Triton Newton-Schulz on GPU: the same
arithmetic, with bf16 roundings placed differently); MuonTest's tolerance is set by that bf16 step.
"""
import json
import math
import sys

import torch

NS = [(4.0848, -6.8946, 2.9270), (3.9505, -6.3029, 2.6377), (3.7418, -5.5913, 2.3037),
      (2.8769, -3.1427, 1.2046), (2.8366, -3.0525, 1.2012)]


def zeropower_via_newtonschulz5(G, epsilon=1e-7):
    X = G.to(dtype=torch.bfloat16)
    if G.size(-2) > G.size(-1):
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + epsilon)
    for a, b, c in NS:
        A = X @ X.mT
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    if G.size(-2) > G.size(-1):
        X = X.mT
    return X


def muon_step(X, G, M, lr, mu, wd, eps, nesterov=True):
    M.mul_(mu).add_(G.to(M.dtype))
    U = (M * mu + G) if nesterov else M
    U = U.to(torch.bfloat16)
    U = zeropower_via_newtonschulz5(U, epsilon=eps)
    adjusted = lr * math.sqrt(X.shape[0] / X.shape[1])
    X.mul_(1 - lr * wd)
    X.sub_(U * torch.tensor(adjusted))


def adamw_step(X, G, M, V, lr, b1, b2, wd, step, eps):
    M.lerp_(G, 1 - b1)
    V.lerp_(G * G, 1 - b2)
    bc1 = 1 - b1 ** step
    bc2 = 1 - b2 ** step
    denom = V.sqrt() / math.sqrt(bc2) + eps
    X.mul_(1 - lr * wd)
    X.sub_(M / denom * (lr / bc1))


def main():
    torch.manual_seed(0)
    shapes = {"model.embed_tokens.weight": [40, 16], "model.layers.0.self_attn.q_proj.weight": [16, 16],
              "model.layers.0.mlp.up_proj.weight": [24, 16], "model.layers.0.mlp.down_proj.weight": [16, 24],
              "model.layers.0.self_attn.q_proj.bias": [16], "model.layers.0.input_layernorm.weight": [16],
              "lm_head.weight": [40, 16]}
    lr, wd, mu, eps, b1, b2 = 0.02, 0.1, 0.95, 1e-8, 0.9, 0.95
    params = {n: torch.randn(s) * 0.1 for n, s in shapes.items()}
    grads = [{n: torch.randn(s) for n, s in shapes.items()} for _ in range(2)]
    out = {"lr": lr, "weight_decay": wd, "params": {n: p.flatten().tolist() for n, p in params.items()},
           "shapes": shapes, "grads": [{n: g.flatten().tolist() for n, g in gs.items()} for gs in grads]}
    state = {n: (torch.zeros_like(p), torch.zeros_like(p)) for n, p in params.items()}
    for step, gs in enumerate(grads, start=1):
        for n, p in params.items():
            M, V = state[n]
            if "embed_tokens" in n or "lm_head" in n:
                adamw_step(p, gs[n], M, V, lr, b1, b2, 0.0, step, eps)
            elif p.ndim < 2:  # biases and norms: no decay (transformers' get_decay_parameter_names)
                adamw_step(p, gs[n], M, V, lr, b1, b2, 0.0, step, eps)
            else:
                muon_step(p, gs[n], M, lr, mu, wd, eps)
    out["expected"] = {n: p.flatten().tolist() for n, p in params.items()}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
