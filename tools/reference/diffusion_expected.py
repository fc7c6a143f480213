#!/usr/bin/env python3
"""Writes trainer/src/test/resources/fixtures/diffusion_expected.json for DiffusionTest: Axolotl's DiffusionPlugin
objective (plugins: [axolotl.integrations.diffusion.DiffusionPlugin], the diffusion: block) as Axolotl 067b021
computes it.

The functions between the "verbatim" markers are src/axolotl/integrations/diffusion/trainer.py
(DiffusionTrainer._forward_process, DiffusionTrainer._compute_diffusion_loss) and utils.py
(create_bidirectional_attention_mask, shift_logits_to_input_positions) at axolotl-ai-cloud/axolotl
067b021c8b87a9e5e380b9173c704cf7340e30f5, copied unchanged (importing axolotl needs its whole dependency tree,
which the offline wheel mirror does not hold); only `self` is a stand-in carrying axolotl_cfg, _special_token_ids
and a no-op store_metrics. How transformers 5.18's Trainer runs Axolotl's trainer: AxolotlTrainer.__init__ sets
model_accepts_loss_kwargs = False (LlamaModel.forward has no num_items_in_batch parameter), so training_step divides
each micro-batch's loss by gradient_accumulation_steps before backward and the logged loss is their sum.

The random draws: _forward_process calls torch.rand(batch_size) then torch.rand((batch_size, seq_len)) on torch's
global generator; here torch.manual_seed(k) precedes each call and the same two draws are replayed right after it,
so the fixture holds the exact t and u each micro-batch used (jtune's test injects them: DiffusionDraw).

1. "micro": one micro-batch of model/src/test/resources/fixtures/tiny-bf16-llama (fp32, sdpa) with a row packing
   two samples and padding and a row with one sample and padding; prompt tokens labelled -100; bos 0, eos 1 and pad 2
   in the rows (never masked). For (eps, importance_weighting) in (1e-3, true), (0.3, false): the loss, the masked
   positions, the gradient norm of every parameter and three gradients in full (7 significant digits).
2. "training": two optimizer steps of two micro-batches each (gradient accumulation 2), clip_grad_norm_(1.0),
   torch.optim.AdamW (weight decay 0, constant lr), the logged loss of each step.

    target/interop-venv/bin/python tools/reference/diffusion_expected.py   (torch 2.13 CPU, transformers 5.18)
"""
import json
import os
import random
from types import SimpleNamespace
from typing import Any, Optional

import torch
import torch.nn.functional as F
import transformers

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
MODEL = os.path.join(ROOT, "model", "src", "test", "resources", "fixtures", "tiny-bf16-llama")
OUT = os.path.join(ROOT, "trainer", "src", "test", "resources", "fixtures", "diffusion_expected.json")


# --- axolotl src/axolotl/integrations/diffusion/utils.py @ 067b021 (verbatim, docstrings shortened)
def create_bidirectional_attention_mask(
    input_ids: torch.Tensor,
    attention_mask: Optional[torch.Tensor] = None,
    sample_packing: bool = False,
) -> torch.Tensor:
    """Create bidirectional attention mask to override default causal masking."""
    batch_size, seq_len = input_ids.shape
    device = input_ids.device

    # Without an attention mask every position is valid -> full all-to-all.
    if attention_mask is None:
        return torch.ones(
            batch_size, 1, seq_len, seq_len, dtype=torch.bool, device=device
        )

    mask_i = attention_mask.unsqueeze(2)  # [batch_size, seq_len, 1]
    mask_j = attention_mask.unsqueeze(1)  # [batch_size, 1, seq_len]

    # Tokens attend to each other only if they share the same non-zero id. For
    # a binary padding mask this keeps valid<->valid and drops padding; for
    # packed segment ids it additionally blocks cross-sample attention.
    bidirectional_mask = (mask_i == mask_j) & (mask_i > 0)

    # Add head dimension: [batch_size, 1, seq_len, seq_len]
    return bidirectional_mask.unsqueeze(1)


def shift_logits_to_input_positions(logits: torch.Tensor) -> torch.Tensor:
    """Align next-token logits with their input token positions for diffusion."""
    if logits.size(1) <= 1:
        return logits
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
# ---


class DiffusionTrainerStandIn:
    def __init__(self, cfg, special_token_ids):
        self.axolotl_cfg = cfg
        self._special_token_ids = special_token_ids

    def store_metrics(self, metrics, train_eval="train"):
        self.metrics = metrics

    # --- axolotl src/axolotl/integrations/diffusion/trainer.py @ 067b021 (verbatim, docstrings shortened)
    def _forward_process(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        eps: float = 1e-3,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forward noising process."""
        batch_size, seq_len = input_ids.shape
        device = input_ids.device

        # Sample random timesteps for each sample in batch
        t = torch.rand(batch_size, device=device)
        p_mask = (1 - eps) * t + eps  # [batch_size]
        p_mask = p_mask[:, None].repeat(1, seq_len)  # [batch_size, seq_len]

        # Don't mask padding tokens if attention_mask is provided
        if attention_mask is not None:
            valid_mask = attention_mask.bool()
            p_mask = p_mask * valid_mask.float()

        # Create mask to exclude special tokens
        special_token_mask = torch.zeros_like(input_ids, dtype=torch.bool)
        if self._special_token_ids:
            for token_id in self._special_token_ids:
                special_token_mask |= input_ids == token_id

        # Create random mask based on p_mask
        masked_indices = torch.rand((batch_size, seq_len), device=device) < p_mask
        masked_indices = masked_indices & ~special_token_mask
        if attention_mask is not None:
            masked_indices = masked_indices & attention_mask.bool()

        # For SFT data, only mask answer tokens
        if labels is not None:
            answer_mask = labels != -100
            masked_indices = masked_indices & answer_mask

        # Create masked input
        mask_token_id = int(self.axolotl_cfg.diffusion.mask_token_id)
        mask_value = torch.full_like(input_ids, mask_token_id)
        noisy_batch = torch.where(masked_indices, mask_value, input_ids)

        return noisy_batch, masked_indices, p_mask

    def _compute_diffusion_loss(
        self,
        model,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | Any]:
        """Compute diffusion loss."""
        # Short-circuit empty sequences
        if input_ids is None or input_ids.numel() == 0 or input_ids.shape[1] == 0:
            zero = torch.tensor(
                0.0,
                device=(input_ids.device if input_ids is not None else None),
                requires_grad=True,
            )
            return zero, {}

        # If an attention_mask is provided and all positions are padding for every
        # sample in this batch, skip the step.
        if attention_mask is not None:
            if attention_mask.dim() == 2 and (attention_mask.sum(dim=1) == 0).all():
                zero = torch.tensor(0.0, device=input_ids.device, requires_grad=True)
                return zero, {}

        # Apply forward process
        noisy_batch, masked_indices, p_mask = self._forward_process(
            input_ids, attention_mask, labels, self.axolotl_cfg.diffusion.eps
        )

        # Create bidirectional attention mask
        bidirectional_mask = create_bidirectional_attention_mask(
            input_ids, attention_mask, sample_packing=self.axolotl_cfg.sample_packing
        )

        # Forward pass
        outputs = model(
            input_ids=noisy_batch.long(),
            attention_mask=bidirectional_mask,
        )
        logits = shift_logits_to_input_positions(outputs.logits)

        if masked_indices.sum() > 0:
            valid_indices = torch.where(masked_indices)
            batch_indices, seq_indices = valid_indices

            masked_logits = logits[batch_indices, seq_indices]
            masked_targets = input_ids[batch_indices, seq_indices]
            masked_p_mask = p_mask[batch_indices, seq_indices]

            # Compute cross-entropy loss without reduction
            token_loss = F.cross_entropy(
                masked_logits.float(), masked_targets, reduction="none"
            )

            if self.axolotl_cfg.diffusion.importance_weighting:
                masked_p_mask = masked_p_mask.float()
                weighted_loss = token_loss / masked_p_mask
            else:
                weighted_loss = token_loss

            if labels is not None:
                # For SFT data: normalize by answer token count per sample
                answer_mask = labels != -100
                answer_lengths = answer_mask.sum(dim=1).float()  # [batch_size]

                # Get batch indices for masked tokens
                masked_batch_indices = batch_indices

                # Sum losses per sample and divide by answer length
                batch_size = input_ids.shape[0]
                loss_per_sample = torch.zeros(batch_size, device=input_ids.device)
                for i in range(batch_size):
                    sample_mask = masked_batch_indices == i
                    if sample_mask.sum() > 0:
                        sample_loss = weighted_loss[sample_mask].sum()
                        denom = answer_lengths[i].clamp(min=1.0)
                        loss_per_sample[i] = sample_loss / denom

                loss = loss_per_sample.mean()
            else:
                # Non-SFT: when importance weighting is enabled, use unbiased estimator
                # (sum(loss/p) / total_tokens). Otherwise, average over masked tokens
                # for stable scaling across varying mask ratios.
                if self.axolotl_cfg.diffusion.importance_weighting:
                    loss = weighted_loss.sum() / (
                        input_ids.shape[0] * input_ids.shape[1]
                    )
                else:
                    loss = weighted_loss.mean()

            ce_loss = token_loss.mean()

            # Compute accuracy on masked tokens
            with torch.no_grad():
                pred_tokens = masked_logits.argmax(dim=-1)
                accuracy = (pred_tokens == masked_targets).float().mean()
        else:
            loss = torch.tensor(0.0, device=input_ids.device, requires_grad=True)
            accuracy = torch.tensor(0.0, device=input_ids.device)
            ce_loss = torch.tensor(0.0, device=input_ids.device)
            masked_p_mask = torch.tensor(1.0, device=input_ids.device)

        avg_p_mask = (
            p_mask[masked_indices].mean().item() if masked_indices.any() else 0.0
        )
        metrics = {
            "loss": loss.item(),
            "accuracy": accuracy.item(),
            "mask_ratio": masked_indices.float().mean().item(),
            "num_masked_tokens": (masked_indices.sum().item(), "sum"),
            "avg_p_mask": avg_p_mask,
            "ce_loss": ce_loss.item(),
        }

        # If doing SFT training, log answer-specific metrics
        if self.axolotl_cfg.datasets is not None:
            with torch.no_grad():
                answer_mask = labels != -100
                answer_lengths = answer_mask.sum(dim=1).float()  # type: ignore
                total_answer_tokens = answer_mask.sum().item()  # type: ignore
                total_tokens = labels.numel()  # type: ignore
                metrics["answer_ratio"] = total_answer_tokens / max(total_tokens, 1)
                metrics["avg_answer_length"] = answer_lengths.mean().item()

        if self.axolotl_cfg.diffusion.importance_weighting:
            metrics["importance_weight_avg"] = (1.0 / masked_p_mask).mean().item()

        train_eval = "train" if model.training else "eval"
        self.store_metrics(metrics, train_eval=train_eval)

        return loss, outputs
    # ---


BOS, EOS, PAD, MASK = 0, 1, 2, 200
# Gradients written in full (the rest as norms): attention weights read bidirectional attention, the norm every token.
FULL_GRADS = ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight", "model.norm.weight"]
SPECIAL = {BOS, EOS, PAD}


def cfg(eps, importance):
    return SimpleNamespace(diffusion=SimpleNamespace(eps=eps, importance_weighting=importance, mask_token_id=MASK),
                           sample_packing=True, datasets=[{}])


def sample(rng, prompt, answer):
    ids = [BOS] + [rng.randrange(3, 259) for _ in range(prompt + answer - 2)] + [EOS]
    return ids, [-100] * prompt + ids[prompt:]


def collate(rows):
    """Axolotl's packed collation: ids padded with PAD, labels -100, attention_mask the 1-based sample id (0: pad)."""
    length = max(sum(len(s[0]) for s in row) for row in rows)
    ids, labels, segs = [], [], []
    for row in rows:
        i, l, m = [], [], []
        for k, (si, sl) in enumerate(row):
            i += si
            l += sl
            m += [k + 1] * len(si)
        pad = length - len(i)
        ids.append(i + [PAD] * pad)
        labels.append(l + [-100] * pad)
        segs.append(m + [0] * pad)
    return torch.tensor(ids), torch.tensor(labels), torch.tensor(segs)


def load():
    return transformers.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="sdpa")


def draws(seed, b, t):
    torch.manual_seed(seed)
    return torch.rand(b).tolist(), torch.rand((b, t)).reshape(-1).tolist()


def loss_with_seed(trainer, model, ids, labels, segs, seed):
    torch.manual_seed(seed)
    loss, _ = trainer._compute_diffusion_loss(model, ids, segs, labels)
    return loss


rng = random.Random(7)
micro_rows = [[sample(rng, 3, 6), sample(rng, 2, 5)], [sample(rng, 4, 6)]]
ids, labels, segs = collate(micro_rows)
micro_cases = []
for eps, importance, seed in [(1e-3, True, 8), (0.3, False, 6)]:
    model = load()
    model.train()
    trainer = DiffusionTrainerStandIn(cfg(eps, importance), SPECIAL)
    loss = loss_with_seed(trainer, model, ids, labels, segs, seed)
    loss.backward()
    torch.manual_seed(seed)
    noisy, masked, p = trainer._forward_process(ids, segs, labels, eps)
    assert int(masked.sum()) >= 3, "the draw masks too little to test"
    t, u = draws(seed, *ids.shape)
    named = dict(model.named_parameters())
    grads = {n: [float("%.7g" % x) for x in named[n].grad.reshape(-1).tolist()] for n in FULL_GRADS}
    norms = {n: float(p_.grad.norm()) for n, p_ in named.items() if p_.grad is not None}
    assert all(torch.isfinite(p_.grad).all() for p_ in model.parameters() if p_.grad is not None)
    micro_cases.append({"eps": eps, "importance_weighting": importance, "t": t, "u": u, "loss": float(loss.detach()),
                        "masked": masked.reshape(-1).int().tolist(), "noisy": noisy.reshape(-1).tolist(),
                        "p_mask": p.reshape(-1).tolist(), "grads": grads,
                        "grad_norms": norms})

# Two optimizer steps, two micro-batches each.
LR, STEPS, GA = 5e-3, 2, 2
train_micro = [collate([[sample(rng, 2 + (k % 3), 6)], [sample(rng, 3, 4), sample(rng, 2, 3)]])
               for k in range(STEPS * GA)]
model = load()
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0, foreach=True)
trainer = DiffusionTrainerStandIn(cfg(1e-3, True), SPECIAL)
logged, train_draws = [], []
for s in range(STEPS):
    total = 0.0
    for m in range(GA):
        mids, mlabels, msegs = train_micro[s * GA + m]
        seed = 100 + 10 * s + m
        loss = loss_with_seed(trainer, model, mids, mlabels, msegs, seed) / GA
        loss.backward()
        total += float(loss.detach())
        train_draws.append(draws(seed, *mids.shape))
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    logged.append(total)


def as_json(batch):
    i, l, sg = batch
    return {"ids": i.tolist(), "labels": l.tolist(), "segments": sg.tolist()}


result = {
    "torch_version": torch.__version__, "transformers_version": transformers.__version__,
    "axolotl_commit": "067b021c8b87a9e5e380b9173c704cf7340e30f5",
    "special_ids": sorted(SPECIAL), "mask_token_id": MASK,
    "micro": {"batch": as_json((ids, labels, segs)), "cases": micro_cases},
    "training": {"lr": LR, "max_grad_norm": 1.0, "gradient_accumulation_steps": GA, "eps": 1e-3,
                 "importance_weighting": True, "batches": [as_json(b) for b in train_micro],
                 "draws": [{"t": t, "u": u} for t, u in train_draws], "losses": logged},
}
with open(OUT, "w") as f:
    json.dump(result, f)
    f.write("\n")
print("wrote", os.path.relpath(OUT, ROOT), [c["loss"] for c in micro_cases], logged,
      [sum(c["masked"]) for c in micro_cases])
