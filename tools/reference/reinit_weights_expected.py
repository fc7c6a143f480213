#!/usr/bin/env python3
"""What transformers' fresh initialisation gives each tensor, for jtune's ReinitWeightsTest (reinit_weights: true).

    /work/main/target/interop-venv/bin/python tools/reference/reinit_weights_expected.py \
        model/src/test/resources/fixtures/families model/src/test/resources/reinit

Axolotl 067b021's reinit_weights (loaders/model.py `_load_model_from_config`) builds the model from the checkpoint's
config with `from_config`, so every module gets PreTrainedModel._init_weights (transformers 5.18 modeling_utils.py:
nn.Linear / nn.Embedding weight N(0, initializer_range), the embedding's padding_idx row zero, biases zero,
*RMSNorm weights one; Gemma's _init_weights overrides the norms to zero since they scale by 1 + weight).
For each family fixture's config.json, with initializer_range set to 0.05 so that the range is seen to be read, this
writes <out>/<family>/config.json and expected.json: per tensor of the state dict (tied lm_head left out, as the
checkpoint leaves it out) its shape, min, max, mean, std, and the indices of rows that are all zero.
"""
import json
import os
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def main():
    src, out = sys.argv[1], sys.argv[2]
    for family in ("qwen2", "gemma2", "llama-rope-params"):
        config = AutoConfig.from_pretrained(os.path.join(src, family))
        config.initializer_range = 0.05
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        dest = os.path.join(out, family)
        os.makedirs(dest, exist_ok=True)
        config.save_pretrained(dest)
        tensors = {}
        tied = getattr(config, "tie_word_embeddings", False)
        for name, t in model.state_dict().items():
            if tied and name == "lm_head.weight":
                continue
            t = t.float()
            zero_rows = [] if t.dim() != 2 else [i for i in range(t.shape[0]) if bool((t[i] == 0).all())]
            tensors[name] = {"shape": list(t.shape), "min": t.min().item(), "max": t.max().item(),
                             "mean": t.mean().item(), "std": t.std().item() if t.numel() > 1 else 0.0,
                             "zero_rows": zero_rows}
        with open(os.path.join(dest, "expected.json"), "w") as f:
            json.dump({"initializer_range": 0.05, "tensors": tensors}, f, indent=1)


if __name__ == "__main__":
    main()
