# jtune's diffusion-objective kernel: Axolotl's DiffusionTrainer._compute_diffusion_loss (integrations/diffusion/
# trainer.py at axolotl-ai-cloud/axolotl 067b021), from the logits on. Compiled like the model's kernels (see
# dev.jtune.model.engine.ScriptModule); gradients flow into the logits.
# Dtype codes (torch ScalarType): 4 int64, 6 float32.
class DiffusionOps(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool

  def diffusion_loss(self: __torch__.DiffusionOps, logits: Tensor, targets: Tensor, masked: Tensor, p_mask: Tensor,
                     answer_lengths: Tensor, importance: bool) -> List[Tensor]:
    # logits [B,T,V] (any float dtype); targets [B,T] int64 (the clean ids); masked [B,T] bool; p_mask [B,T] fp32;
    # answer_lengths [B] fp32. Returns [loss (fp32 scalar), masked tokens (int64)]:
    #   logits shifted to the input positions (position s reads the output at s-1, position 0 its own:
    #   utils.shift_logits_to_input_positions), fp32 cross-entropy of each masked token, divided by its p_mask
    #   when importance weighting, summed per row and divided by the row's answer length (at least 1), then the
    #   mean over rows (rows without a masked token count as 0). Without a masked token: 0, still attached to the
    #   logits (with zero gradient) where Axolotl returns a fresh zero.
    b = logits.size(0)
    t = logits.size(1)
    v = logits.size(2)
    if t > 1:
      logits = torch.cat([torch.narrow(logits, 1, 0, 1), torch.narrow(logits, 1, 0, t - 1)], 1)
    flat = torch.reshape(logits, [-1, v])
    index = torch.reshape(torch.nonzero(torch.reshape(masked, [-1])), [-1])
    count = index.size(0)
    if count == 0:
      return [torch.mul(torch.sum(torch.to(flat, 6)), 0.0), torch.zeros([], dtype=4)]
    picked = torch.to(torch.index_select(flat, 0, index), 6)
    target = torch.index_select(torch.reshape(targets, [-1]), 0, index)
    token_loss = torch.sub(torch.logsumexp(picked, [-1]),
                           torch.squeeze(torch.gather(picked, -1, torch.unsqueeze(target, -1)), -1))
    if importance:
      token_loss = torch.div(token_loss, torch.index_select(torch.reshape(p_mask, [-1]), 0, index))
    rows = torch.div(index, t, rounding_mode="floor")
    per_row = torch.index_add(torch.zeros([b], dtype=6, device=picked.device), 0, rows, token_loss)
    loss = torch.mean(torch.div(per_row, torch.clamp(answer_lengths, 1.0)))
    return [loss, torch.full([], count, dtype=4)]
