#!/usr/bin/env python3
"""Writes trainer/src/test/resources/fixtures/resize_embeddings_expected.json: what transformers'
resize_token_embeddings does to a tiny LlamaForCausalLM's embed_tokens and lm_head, for VocabGrowthTest.
Needs transformers (the interop venv: target/interop-venv, built by tools/interop/check.sh):

    target/interop-venv/bin/python tools/reference/resize_embeddings_expected.py

Cases (old rows, hidden 8, untied head, initializer_range 0.02):
- "mean_full_rank": 40 old rows grown to 45 with mean_resizing=True (covariance positive definite: new rows are
  draws from N(mean, 1e-9 * cov), within a few 1e-5 of the mean);
- "mean_rank_deficient": 6 old rows grown to 9 with mean_resizing=True (covariance singular: new rows are the mean);
- "normal": 40 old rows grown to 2040 with mean_resizing=False (Axolotl's default): new rows N(0, 0.02^2); only
  their statistics are comparable, so the file keeps mean and std of the new values.
"""
import json
import os

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM


def model(vocab, seed):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False,
                      initializer_range=0.02, pad_token_id=None)
    m = LlamaForCausalLM(cfg)
    with torch.no_grad():  # non-trivial old rows: a shifted, anisotropic cloud
        for w in (m.model.embed_tokens.weight, m.lm_head.weight):
            w.copy_(torch.randn(vocab, 8) * torch.linspace(0.05, 0.5, 8) + torch.linspace(-0.3, 0.3, 8))
    return m


def rows(t):
    return [[float(x) for x in r] for r in t.tolist()]


out = {"transformers": transformers.__version__, "torch": torch.__version__, "cases": {}}
for name, old, new, mean in [("mean_full_rank", 40, 45, True), ("mean_rank_deficient", 6, 9, True)]:
    m = model(old, 7)
    e0 = m.model.embed_tokens.weight.detach().clone()
    h0 = m.lm_head.weight.detach().clone()
    m.resize_token_embeddings(new, mean_resizing=mean)
    out["cases"][name] = {
        "old_rows": old, "new_rows": new, "mean_resizing": mean,
        "embed_old": rows(e0), "head_old": rows(h0),
        "embed_new": rows(m.model.embed_tokens.weight.detach()), "head_new": rows(m.lm_head.weight.detach()),
        "config_vocab_size": m.config.vocab_size,
    }
m = model(40, 7)
e0 = m.model.embed_tokens.weight.detach().clone()
m.resize_token_embeddings(2040, mean_resizing=False)
e = m.model.embed_tokens.weight.detach()
h = m.lm_head.weight.detach()
out["cases"]["normal"] = {
    "old_rows": 40, "new_rows": 2040, "mean_resizing": False, "initializer_range": 0.02,
    "old_rows_kept": bool(torch.equal(e[:40], e0)),
    "embed_new_mean": float(e[40:].mean()), "embed_new_std": float(e[40:].std()),
    "head_new_mean": float(h[40:].mean()), "head_new_std": float(h[40:].std()),
}
path = os.path.join(os.path.dirname(__file__), "..", "..", "trainer", "src", "test", "resources", "fixtures",
                    "resize_embeddings_expected.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", os.path.normpath(path))
