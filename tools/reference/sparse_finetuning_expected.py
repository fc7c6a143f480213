#!/usr/bin/env python3
"""Writes the sparse fixture checkpoint trainer/src/test/resources/fixtures/tiny-sparse-llama/ and
trainer/src/test/resources/fixtures/sparse_finetuning_expected.json for ConstantPruningTest: three steps of fp32 full
fine-tuning of that checkpoint under llm-compressor's ConstantPruningModifier, as Axolotl 067b021's
LLMCompressorPlugin runs it (src/axolotl/integrations/llm_compressor/plugin.py: the session initialized in
on_train_begin, OPTIM_POST_STEP fired in on_step_end, after the optimizer step).

The checkpoint: model/src/test/resources/fixtures/tiny-bf16-llama with its decoder layer 0 projections pruned 2:4
(in each row, each group of 4 consecutive inputs keeps its 2 largest |w|), layer 1's attention projections pruned
unstructured (|w| at or under the tensor's median zeroed), and in layer 1's MLP a few entries set to 5e-9 (under
llm-compressor's epsilon 1e-8: masked although not zero) and 2e-8 (kept); stored in bf16 as the original, with
max_position_embeddings 512 (room for the CLI tests' prompts).

No llm-compressor wheel is available offline, so its code is copied here from github.com/vllm-project/llm-compressor
tag 0.10.0 (commit bdb65473ba21ca6aaaf726ffe66c695f5608c953; Axolotl 067b021 pins llmcompressor>=0.10.0):
src/llmcompressor/utils/pytorch/module.py (match_targets: verbatim; match_layers_params: the params=True path,
verbatim, the __ALL__ shortcuts and class-name matching left out), src/llmcompressor/modifiers/pruning/constant/base.py
(on_start's mask, on_update's apply_masks: verbatim) and src/llmcompressor/modifiers/pruning/utils/pytorch/layer_mask.py
(add_mask's buffer, update_mask: verbatim, hooks left out: use_hooks is False).

The trainer around it is transformers' Trainer for an Axolotl config without an adapter in fp32: torch.optim.AdamW
(adamw_torch; foreach) with get_decay_parameter_names' groups, clip_grad_norm_(max_grad_norm), constant learning rate,
one micro-batch per step, eager attention.

    target/interop-venv/bin/python tools/reference/sparse_finetuning_expected.py   (torch 2.13 CPU)
"""
import json
import os
import random
import re
import shutil

import torch
import transformers
from safetensors.torch import save_file

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
BASE = os.path.join(ROOT, "model", "src", "test", "resources", "fixtures", "tiny-bf16-llama")
SPARSE = os.path.join(ROOT, "trainer", "src", "test", "resources", "fixtures", "tiny-sparse-llama")
OUT = os.path.join(ROOT, "trainer", "src", "test", "resources", "fixtures", "sparse_finetuning_expected.json")

LR, WD, MAX_NORM, STEPS, ROWS, LEN = 5e-3, 0.01, 1.0, 3, 2, 12
# The example's targets (examples/llama-3/sparse-finetuning.yaml at Axolotl 067b021).
TARGETS = ['re:.*q_proj.weight', 're:.*k_proj.weight', 're:.*v_proj.weight', 're:.*o_proj.weight',
           're:.*gate_proj.weight', 're:.*up_proj.weight', 're:.*down_proj.weight']


# --- the sparse checkpoint
def prune_2_4(w):
    rows, cols = w.shape
    g = w.reshape(rows, cols // 4, 4)
    keep = g.abs().argsort(dim=-1, descending=True)[..., :2]
    mask = torch.zeros_like(g, dtype=torch.bool).scatter_(-1, keep, True)
    return (g * mask).reshape(rows, cols)


base = transformers.AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.bfloat16)
state = {k: v.detach().clone() for k, v in base.state_dict().items()}
for name in list(state):
    w = state[name]
    if name.startswith("model.layers.0.") and name.endswith("proj.weight"):
        state[name] = prune_2_4(w.float()).to(torch.bfloat16)
    elif name.startswith("model.layers.1.self_attn.") and name.endswith("proj.weight"):
        f = w.float()
        state[name] = torch.where(f.abs() <= f.abs().median(), torch.zeros_like(f), f).to(torch.bfloat16)
    elif name.startswith("model.layers.1.mlp.") and name.endswith("proj.weight"):
        f = w.float().clone()
        f[0, 0], f[1, 1], f[2, 2] = 5e-9, -5e-9, 2e-8
        state[name] = f.to(torch.bfloat16)
os.makedirs(SPARSE, exist_ok=True)
for f in ("generation_config.json", "tokenizer.json", "tokenizer_config.json"):
    shutil.copy(os.path.join(BASE, f), os.path.join(SPARSE, f))
with open(os.path.join(BASE, "config.json")) as f:
    config = json.load(f)
# Room for a byte-level alpaca prompt in the CLI tests (llama3 RoPE scales by original_max_position_embeddings, so
# nothing else changes).
config["max_position_embeddings"] = 512
with open(os.path.join(SPARSE, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(SPARSE, "model.safetensors"),
          metadata={"format": "pt"})


# --- llm-compressor 0.10.0, src/llmcompressor/utils/pytorch/module.py
def match_targets(name, targets):
    if isinstance(targets, str):
        targets = [targets]

    for index, target in enumerate(targets):
        if target[:3] == "re:":
            pattern = target[3:]
            if re.match(pattern, name):
                return True, index
        elif name == target:
            return True, index

    return False, -1


def match_layers_params(targets, module, params=False):
    if isinstance(targets, str):
        targets = [targets]

    resolved = {}
    targets_found = [False for _ in range(len(targets))]

    for name, layer in module.named_modules():
        match, match_index = match_targets(name, targets)
        if match and not params:
            targets_found[match_index] = True
            resolved[name] = layer

        for param_name, param in layer.named_parameters():
            if "." in param_name:  # skip parameters of nested layers
                continue

            param_match, param_match_index = match_targets(
                f"{name}.{param_name}", targets
            )
            if param_match:
                targets_found[param_match_index] = True
                resolved[f"{name}"] = layer if not params else param

    missed = [target for found, target in zip(targets_found, targets) if not found]
    if len(missed) > 0:
        raise ValueError(f"Could not find targets {missed} in module {module}")

    return resolved


def param_mask_name():
    return "mask"


_epsilon = 10e-9  # ConstantPruningModifier._epsilon


def on_start(model):
    """ConstantPruningModifier.on_initialize (get_layers_params + add_mask) and on_start (update_mask)."""
    params = match_layers_params(TARGETS, model, params=True)
    layers = match_layers_params(TARGETS, model)
    for name, param in params.items():
        layer = layers[name]
        # LayerParamMasking.add_mask
        layer.register_buffer(param_mask_name(), torch.ones_like(param.data, dtype=torch.bool), persistent=False)
        # on_start: self.update_mask(layer_param_name, parameterized_layer.param.data.abs() > self._epsilon)
        mask_tensor = layer.get_buffer(param_mask_name())
        mask_tensor[:] = param.data.abs() > _epsilon
    return {name + ".weight": layers[name].get_buffer(param_mask_name()) for name in params}


@torch.no_grad()
def on_update_optim_post_step(model):
    """ConstantPruningModifier.on_update for EventType.OPTIM_POST_STEP (use_hooks False)."""
    def apply_masks(module):
        mask_name = param_mask_name()
        if hasattr(module, mask_name):
            mask = getattr(module, mask_name)
            if mask.device != module.weight.device:
                setattr(module, mask_name, mask.to(module.weight.device))
            module.weight *= getattr(module, mask_name)

    model.apply(apply_masks)


# --- the training
rng = random.Random(7)
ids = [[rng.randrange(3, 259) for _ in range(LEN)] for _ in range(ROWS)]
labels = [[-100] * 2 + row[2:] for row in ids]  # a masked prompt of two tokens
batches = [{"input_ids": ids, "labels": labels}] * STEPS


def train(masked):
    model = transformers.AutoModelForCausalLM.from_pretrained(SPARSE, dtype=torch.float32,
                                                              attn_implementation="eager")
    model.train()
    decay = set(transformers.Trainer.get_decay_parameter_names(None, model))
    named = list(model.named_parameters())
    opt = torch.optim.AdamW([
        {"params": [p for n, p in named if n in decay], "weight_decay": WD},
        {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
    ], lr=LR, foreach=True)
    masks = on_start(model) if masked else None  # on_train_begin: session initialize, start 0
    losses = []
    for b in batches:
        out = model(input_ids=torch.tensor(b["input_ids"]), labels=torch.tensor(b["labels"]))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if masked:
            on_update_optim_post_step(model)  # on_step_end: optim_pre_step, optim_post_step, batch_end
        losses.append(float(out.loss.detach()))
    return model, masks, losses


def bits(t):
    """fp32 bit patterns, row-major, 8 hex digits each."""
    return "".join("%08x" % (v & 0xFFFFFFFF) for v in t.detach().reshape(-1).contiguous().view(torch.int32).tolist())


def mask_bits(m):
    return "".join("1" if v else "0" for v in m.reshape(-1).tolist())


model, masks, losses = train(True)
dense, _, dense_losses = train(False)
start = {k: v.float() for k, v in state.items()}
named = dict(model.named_parameters())
result = {
    "torch_version": torch.__version__, "transformers_version": transformers.__version__,
    "llmcompressor": "0.10.0 (bdb65473ba21ca6aaaf726ffe66c695f5608c953), code copied",
    "targets": TARGETS, "lr": LR, "weight_decay": WD, "max_grad_norm": MAX_NORM,
    "batches": batches, "losses": losses, "dense_losses": dense_losses,
    # per targeted weight: "1" kept, "0" masked, row-major
    "masks": {n: mask_bits(m) for n, m in masks.items()},
    "masked_entries": {n: int((~m).sum()) for n, m in masks.items()},
    # every parameter after the three steps: fp32 bit patterns
    "final": {n: bits(p) for n, p in named.items()},
    # the same training without the modifier: how many masked positions are non-zero after it
    "dense_refilled": {n: int((dict(dense.named_parameters())[n].detach()[~m] != 0).sum()) for n, m in masks.items()},
}
with open(OUT, "w") as f:
    json.dump(result, f)
    f.write("\n")
print("wrote", os.path.relpath(OUT, ROOT), "and", os.path.relpath(SPARSE, ROOT), "losses", losses,
      "masked", sum(result["masked_entries"].values()), "refilled without masks", sum(result["dense_refilled"].values()))
