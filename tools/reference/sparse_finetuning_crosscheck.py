#!/usr/bin/env python3
"""Cross-check of sparse_finetuning_expected.py's copied code against llm-compressor 0.10.0 itself.

Runs the fixture's three steps with llm-compressor's own session (create_session, session.initialize with the recipe
parsed by Recipe.from_dict, start 0) and the callbacks Axolotl 067b021's LLMCompressorCallbackHandler fires
(batch_start in on_step_begin; optim_pre_step, optim_post_step, batch_end in on_step_end, after the optimizer step),
and compares the weights and masks with trainer/src/test/resources/fixtures/sparse_finetuning_expected.json.

Printed here (torch 2.13 CPU):
    llm-compressor 0.10.0 itself vs the fixture: 21 of 21 tensors bit-identical
    masks identical: True 14

Set up llm-compressor 0.10.0 from source as tools/reference/llmcompressor_recipe_probe.py says, then from the
repository root:
    PYTHONPATH=target/src/lc/src:target/src/ct/src target/ref-venv/bin/python tools/reference/sparse_finetuning_crosscheck.py
"""
import json, os, torch, transformers
from llmcompressor.recipe import Recipe
from llmcompressor import create_session, active_session
from llmcompressor.core import callbacks
torch.set_num_threads(1)
ROOT = os.getcwd()
SPARSE = os.path.join(ROOT, "trainer/src/test/resources/fixtures/tiny-sparse-llama")
fx = json.load(open(os.path.join(ROOT, "trainer/src/test/resources/fixtures/sparse_finetuning_expected.json")))
recipe = Recipe.from_dict({"finetuning_stage": {"finetuning_modifiers": {"ConstantPruningModifier": {"targets": fx["targets"], "start": 0}}}})
model = transformers.AutoModelForCausalLM.from_pretrained(SPARSE, dtype=torch.float32, attn_implementation="eager")
model.train()
decay = set(transformers.Trainer.get_decay_parameter_names(None, model))
named = list(model.named_parameters())
opt = torch.optim.AdamW([{"params": [p for n, p in named if n in decay], "weight_decay": fx["weight_decay"]},
    {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0}], lr=fx["lr"], foreach=True)
create_session()
active_session().initialize(model=model, optimizer=opt, start=0, recipe=recipe)
for b in fx["batches"]:
    callbacks.batch_start()
    out = model(input_ids=torch.tensor(b["input_ids"]), labels=torch.tensor(b["labels"]))
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), fx["max_grad_norm"])
    opt.step(); opt.zero_grad(set_to_none=True)
    callbacks.optim_pre_step(); callbacks.optim_post_step(); callbacks.batch_end()
def bits(t):
    return "".join("%08x" % (v & 0xFFFFFFFF) for v in t.detach().reshape(-1).contiguous().view(torch.int32).tolist())
same = sum(bits(p) == fx["final"][n] for n, p in model.named_parameters())
print("llm-compressor 0.10.0 itself vs the fixture: %d of %d tensors bit-identical" % (same, len(named)))
masks = {n: m for n, m in ((n + ".weight", mod.get_buffer("mask")) for n, mod in model.named_modules() if hasattr(mod, "mask"))}
print("masks identical:", all("".join("1" if v else "0" for v in m.reshape(-1).tolist()) == fx["masks"][n] for n, m in masks.items()), len(masks))
active_session().finalize()
