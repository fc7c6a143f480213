#!/usr/bin/env python3
"""Writes trainer/src/test/resources/fixtures/mixed_full_ft_expected.json: three steps of full fine-tuning with fp32
master weights in bf16 and in fp16 compute, of model/src/test/resources/fixtures/tiny-bf16-llama, as accelerate runs
an Axolotl config with bf16: true (or fp16: true), fsdp and no adapter:

- Axolotl loads the model in torch_dtype=bfloat16 (float16); accelerate (1.15: Accelerator.prepare_model for FSDP1,
  fsdp2_prepare_model for FSDP2) upcasts the trainable parameters to fp32, the master weights;
- FSDP's MixedPrecision(param_dtype=bf16|fp16) casts the parameters to the compute dtype for forward and backward;
  the gradients of the cast parameters come back in the compute dtype and are cast to fp32 (FSDP1's
  _cast_grad_to_param_dtype); one process, one micro-batch per step: no reduction, no accumulation;
- clip_grad_norm_(max_grad_norm) and torch.optim.AdamW on the fp32 parameters (fp32 moments), with the Trainer's
  weight-decay groups (no decay for norm weights); fp16: torch's GradScaler (init_scale 2**16, growth 2 every 2000
  steps, backoff 0.5), unscale before clipping, the step skipped on inf/nan.

The compute-dtype copy is a second model whose parameters are set from the masters before every step, which is what
FSDP's all-gather of the cast shards produces. Eager attention, no autocast (FSDP already made every parameter bf16).
One micro-batch per step, constant learning rate. Deterministic (fixed seed, CPU, one thread).

Stored: the losses, grad norms, and for a few tensors the fp32 master values after step 1 and after step 3 (base64 of
little-endian float32), enough to see a bf16 master copy, bf16 moments or an fp32 forward (each moves most values by
about lr).

    target/interop-venv/bin/python tools/reference/mixed_full_ft_expected.py   # (tools/interop/check.sh builds it)
"""
import base64
import copy
import json
import os
import random

import numpy as np
import torch
import transformers

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
MODEL = os.path.join(ROOT, "model", "src", "test", "resources", "fixtures", "tiny-bf16-llama")
OUT = os.path.join(ROOT, "trainer", "src", "test", "resources", "fixtures", "mixed_full_ft_expected.json")

LR, WD, MAX_NORM, STEPS, ROWS, LEN = 5e-3, 0.01, 1.0, 3, 2, 12
KEPT = ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight",
        "model.layers.1.post_attention_layernorm.weight", "model.norm.weight"]

rng = random.Random(7)
ids = [[rng.randrange(3, 259) for _ in range(LEN)] for _ in range(ROWS)]
labels = [[-100] * 2 + row[2:] for row in ids]  # a masked prompt of two tokens
batches = [{"input_ids": ids, "labels": labels}] * STEPS  # the same batch each step: the loss must fall


def f32(t):
    return base64.b64encode(t.detach().to(torch.float32).reshape(-1).numpy().astype("<f4").tobytes()).decode()


def run(compute, norm_scale=1.0, steps=STEPS):
    loaded = getattr(torch, {"bf16": "bfloat16", "fp16": "float16"}[compute])
    master = transformers.AutoModelForCausalLM.from_pretrained(MODEL, dtype=loaded, attn_implementation="eager")
    master = master.to(torch.float32)  # accelerate's upcast: fp32 master weights
    with torch.no_grad():
        master.model.norm.weight.mul_(norm_scale)  # > 1: fp16 gradients that overflow at the first loss scales
    work = copy.deepcopy(master).to(loaded)  # what FSDP's mixed precision computes with
    master.train()
    work.train()
    decay = set(transformers.Trainer.get_decay_parameter_names(None, master))
    named = list(master.named_parameters())
    opt = torch.optim.AdamW([
        {"params": [p for n, p in named if n in decay], "weight_decay": WD},
        {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
    ], lr=LR, foreach=False)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                                  growth_interval=2000) if compute == "fp16" else None
    wp = dict(work.named_parameters())
    losses, norms, first, skipped = [], [], None, 0
    for b in [batches[0]] * steps:
        with torch.no_grad():
            for n, p in named:
                wp[n].copy_(p.to(loaded))
        out = work(input_ids=torch.tensor(b["input_ids"]), labels=torch.tensor(b["labels"]))
        loss = out.loss.float()
        (scaler.scale(loss) if scaler else loss).backward()
        for n, p in named:
            p.grad = wp[n].grad.to(torch.float32)  # FSDP casts the reduced gradient to the parameter's dtype
            wp[n].grad = None
        if scaler:
            scaler.unscale_(opt)
        norm = float(torch.nn.utils.clip_grad_norm_(master.parameters(), MAX_NORM))
        norms.append(norm if norm == norm and abs(norm) != float("inf") else None)  # None: inf/nan (skipped)
        if scaler:
            before = scaler.get_scale()
            scaler.step(opt)
            scaler.update()
            skipped += int(scaler.get_scale() < before)
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if first is None:
            first = {n: p.detach().clone() for n, p in named}
    assert all(s["exp_avg"].dtype == torch.float32 for s in opt.state.values())
    params = dict(named)
    return {
        "losses": losses, "grad_norms": norms, "skipped_steps": skipped,
        # after step 1 for bf16 only (the fixture stays small); after step 3 for both
        **({"after_first": {n: f32(first[n]) for n in KEPT}} if compute == "bf16" else {}),
        "final": {n: f32(params[n]) for n in KEPT},
    }


result = {
    "torch_version": torch.__version__, "transformers_version": transformers.__version__,
    "lr": LR, "weight_decay": WD, "max_grad_norm": MAX_NORM, "adam": {"betas": [0.9, 0.999], "eps": 1e-8},
    "batches": batches, "bf16": run("bf16"), "fp16": run("fp16"),
    # the final norm's weight times 256: the scaled fp16 gradients overflow, GradScaler skips steps and halves its
    # scale until they fit (no weights stored: the skipped steps, losses and norms say it)
    "fp16_overflow": {"norm_scale": 256.0, **{k: v for k, v in run("fp16", 256.0, 12).items()
                                              if k in ("losses", "grad_norms", "skipped_steps")}},
}
with open(OUT, "w") as f:
    json.dump(result, f)
    f.write("\n")
print("wrote", os.path.relpath(OUT, ROOT), {k: (result[k]["losses"], result[k]["grad_norms"], result[k]["skipped_steps"])
                                            for k in ("bf16", "fp16", "fp16_overflow")})
