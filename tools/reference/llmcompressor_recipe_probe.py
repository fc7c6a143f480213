#!/usr/bin/env python3
"""What Axolotl 067b021's LLMCompressorPlugin makes of an inline recipe, with llm-compressor's own code.

The plugin's callback (src/axolotl/integrations/llm_compressor/plugin.py) builds its recipe with
`Recipe.model_validate(recipe)` when the config gives a mapping. This script imports llm-compressor 0.10.0's Recipe
(the lowest version Axolotl's `llmcompressor>=0.10.0` allows) from source and prints what model_validate, and
create_instance on its result, give for the sparse-finetuning example's recipe, next to `Recipe.from_dict`.

Printed here (torch 2.13 CPU, transformers 5.18, pydantic 2.13):
    model_validate: Recipe(args={}, stage='default', modifiers=[])
    create_instance(model_validate): []
    from_dict: [ConstantPruningModifier(... group='finetuning', start=0.0, ... targets=['re:.*q_proj.weight'] ...)]
so the inline recipe initializes no modifier there and the run trains dense (llm-compressor 0.6.0's Recipe still had
a mode="before" validator that parsed stage mappings; 0.7.0 dropped it, 0.13.0 has only a mode="after" one).

No llm-compressor wheel is offline, so the sources come from git (llm-compressor tag 0.10.0, commit
bdb65473ba21ca6aaaf726ffe66c695f5608c953; compressed-tensors tag 0.14.0, its pin), with two import shims for
transformers 5.18 (utils/dev.py's TORCH_INIT_FUNCTIONS) and the missing generated version files:

    python3 -m venv --system-site-packages target/ref-venv    # + a .pth to target/interop-venv's site-packages
    target/ref-venv/bin/pip install --no-index --find-links <wheel mirror> pydantic loguru datasets
    git -C <llm-compressor clone> archive 0.10.0 src | tar -x -C target/src/lc
    git -C <compressed-tensors clone> archive 0.14.0 src | tar -x -C target/src/ct
    (then the shims below) PYTHONPATH=target/src/lc/src:target/src/ct/src target/ref-venv/bin/python THIS_FILE

Shims: target/src/lc/src/llmcompressor/version.py with __version__ = "0.10.0" (and version, version_base,
build_type, version_major/minor/patch); target/src/ct/src/compressed_tensors/version.py with version = "0.14.0" and
`from .version import __version__` appended to its __init__.py; in llmcompressor/utils/dev.py the import of
TORCH_INIT_FUNCTIONS replaced by `TORCH_INIT_FUNCTIONS = {}` (gone from transformers 5; only used when loading
models on the meta device, not by Recipe).
"""
from llmcompressor.recipe import Recipe

RECIPE = {"finetuning_stage": {"finetuning_modifiers": {"ConstantPruningModifier": {
    "targets": ["re:.*q_proj.weight"], "start": 0}}}}

r = Recipe.model_validate(RECIPE)
print("model_validate:", repr(r))
print("create_instance(model_validate):", Recipe.create_instance(path_or_modifiers=r).modifiers)
print("from_dict:", Recipe.from_dict(RECIPE).modifiers)
