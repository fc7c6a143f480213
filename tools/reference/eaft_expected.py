#!/usr/bin/env python3
"""Writes trainer/src/test/resources/fixtures/eaft_expected.json for EaftTest: Axolotl's EAFT loss (use_eaft,
eaft_alpha, eaft_k) as Axolotl 067b021 computes it.

eaft_loss below is src/axolotl/monkeypatch/loss/eaft.py at axolotl-ai-cloud/axolotl 067b021c8b87a9e5e380b9173c704cf7340e30f5,
verbatim (docstring shortened). Axolotl passes it to transformers' Trainer as compute_loss_func
(core/builders/causal.py, functools.partial with alpha=eaft_alpha, k=eaft_k); transformers 5.18's Trainer calls it
with num_items_in_batch = the non-ignored labels[..., 1:] over every micro-batch of the optimizer step, summed over
ranks (average_tokens_across_devices defaults to True; the loss is then multiplied by the world size, which DDP's
gradient averaging undoes), and with num_items_in_batch=None in evaluation (prediction_step -> compute_loss).

1. "kernel": the loss and d loss / d logits on random logits [2, 7, 24] with masked labels, for (alpha, k) in
   (1.0, 20), (0.5, 5), (2.0, 50 > vocab 24: capped), with num_items_in_batch as transformers counts it.
2. "training": two optimizer steps of model/src/test/resources/fixtures/tiny-bf16-llama loaded in fp32, each step
   two micro-batches of one row (gradient accumulation 2, different masks so the micro-batches' counts differ),
   loss = eaft_loss(outputs, labels, N) per micro-batch as Trainer.training_step does with compute_loss_func, then
   clip_grad_norm_(1.0) and torch.optim.AdamW (adamw_torch, weight decay 0, constant lr); the logged loss of a step
   is the sum of its micro-batches' losses. The plain run (the model's own loss with num_items_in_batch) is written
   beside it.

    target/interop-venv/bin/python tools/reference/eaft_expected.py   (torch 2.13 CPU, transformers 5.18)
"""
import json
import os
import random

import torch
import torch.nn.functional as F
import transformers

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
MODEL = os.path.join(ROOT, "model", "src", "test", "resources", "fixtures", "tiny-bf16-llama")
OUT = os.path.join(ROOT, "trainer", "src", "test", "resources", "fixtures", "eaft_expected.json")


# --- axolotl src/axolotl/monkeypatch/loss/eaft.py @ 067b021 (verbatim)
def eaft_loss(outputs, labels, num_items_in_batch=None, alpha=1.0, k=20):
    logits = outputs.logits

    shift_logits = logits[..., :-1, :].contiguous()
    shift_labels = labels[..., 1:].contiguous()

    vocab_size = shift_logits.size(-1)
    shift_logits_view = shift_logits.view(-1, vocab_size)
    shift_labels_view = shift_labels.view(-1)

    mask = shift_labels_view != -100

    with torch.no_grad():
        top_k_logits, _ = torch.topk(
            shift_logits_view[mask].float(), k=min(k, vocab_size), dim=-1
        )
        top_k_probs = F.softmax(top_k_logits, dim=-1)
        entropy = -(top_k_probs * torch.log(top_k_probs + 1e-10)).sum(dim=-1)
        weights = torch.pow(entropy, alpha)

    loss_fct = torch.nn.CrossEntropyLoss(reduction="none")
    per_token_loss = loss_fct(shift_logits_view[mask], shift_labels_view[mask])
    weighted_loss = per_token_loss * weights

    if num_items_in_batch is not None:
        loss = weighted_loss.sum() / num_items_in_batch
    else:
        loss = weighted_loss.mean()

    return loss
# ---


class Out:
    def __init__(self, logits):
        self.logits = logits


def num_items(labels_list):
    # transformers 5.18 Trainer._get_num_items_in_batch for a causal LM: labels[..., 1:].ne(-100)
    return int(sum(l[..., 1:].ne(-100).sum() for l in labels_list))


g = torch.Generator().manual_seed(11)
B, T, V = 2, 7, 24
logits0 = (torch.randn(B, T, V, generator=g) * 3).tolist()
labels = torch.randint(0, V, (B, T), generator=g)
labels[0, :2] = -100
labels[1, 0] = -100
labels[1, 4] = -100
labels[1, 6] = -100
n = num_items([labels])
kernel = []
for alpha, k in [(1.0, 20), (0.5, 5), (2.0, 50)]:
    x = torch.tensor(logits0, requires_grad=True)
    loss = eaft_loss(Out(x), labels, num_items_in_batch=n, alpha=alpha, k=k)
    loss.backward()
    plain = F.cross_entropy(x[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), reduction="sum") / n
    kernel.append({"alpha": alpha, "k": k, "loss": float(loss), "plain_loss": float(plain),
                   "grad": x.grad.reshape(-1).tolist()})

rng = random.Random(5)
LEN, LR, STEPS = 10, 5e-3, 2
rows = [[rng.randrange(3, 259) for _ in range(LEN)] for _ in range(2 * STEPS)]
masks = [3, 6, 2, 5]  # prompt tokens masked in each row
row_labels = [[-100] * m + r[m:] for r, m in zip(rows, masks)]


def train(eaft):
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="eager")
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0, foreach=True)
    losses = []
    for s in range(STEPS):
        micro = [(torch.tensor([rows[2 * s + i]]), torch.tensor([row_labels[2 * s + i]])) for i in range(2)]
        total = num_items([l for _, l in micro])
        logged = 0.0
        for ids, lab in micro:
            if eaft:
                out = model(input_ids=ids)
                loss = eaft_loss(out, lab, num_items_in_batch=total, alpha=1.0, k=20)
            else:
                loss = model(input_ids=ids, labels=lab, num_items_in_batch=total).loss
            loss.backward()
            logged += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(logged)
    return losses


result = {
    "torch_version": torch.__version__, "transformers_version": transformers.__version__,
    "axolotl_commit": "067b021c8b87a9e5e380b9173c704cf7340e30f5",
    "kernel": {"shape": [B, T, V], "logits": torch.tensor(logits0).reshape(-1).tolist(),
               "labels": labels.tolist(), "num_items_in_batch": n, "cases": kernel},
    "training": {"lr": LR, "max_grad_norm": 1.0, "gradient_accumulation_steps": 2, "alpha": 1.0, "k": 20,
                 "rows": rows, "labels": row_labels, "eaft_losses": train(True), "plain_losses": train(False)},
}
with open(OUT, "w") as f:
    json.dump(result, f)
    f.write("\n")
print("wrote", os.path.relpath(OUT, ROOT), [c["loss"] for c in kernel], result["training"]["eaft_losses"],
      result["training"]["plain_losses"])
