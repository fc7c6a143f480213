# jtune's LoRA kernel (compiled by libtorch at run time, like model's kernels.torchscript.py).
# PEFT 0.21, tuners/lora/layer.py, Linear.forward (vanilla LoRA):
#   result = self.base_layer(x); torch_result_dtype = result.dtype
#   x = self._cast_input_dtype(x, lora_A.weight.dtype)
#   result = result + lora_B(lora_A(dropout(x))) * scaling
#   result = result.to(torch_result_dtype)
# so the adapter path runs in the adapter's dtype (fp32), the sum in the promoted dtype, and the result is
# cast back to the base output's dtype. Dropout draws from libtorch's global CPU/CUDA generator.
class LoraOps(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool

  def lora_forward(self: __torch__.LoraOps, x: Tensor, base_out: Tensor, a: Tensor, b: Tensor, p: float,
                   train: bool, scaling: float) -> Tensor:
    h = torch.to(x, a.dtype)
    if train and p > 0.0 and p < 1.0 and not h.is_cuda:
      h = self.dropout_kept(h, p)
    else:
      h = torch.dropout(h, p, train)
    delta = torch.mul(torch.linear(torch.linear(h, a), b), scaling)
    return torch.to(torch.add(base_out, delta), base_out.dtype)

  def dropout_kept(self: __torch__.LoraOps, h: Tensor, p: float) -> Tensor:
    # torch.dropout on CPU (ATen's _dropout_impl), bit for bit and with the same draws: noise = bernoulli(1 - p),
    # divided by (1 - p), times h. Its backward keeps that noise in h's dtype (fp32 here: 4 bytes a value); this
    # form keeps a bool mask (1 byte) and a 1-element scale, and h * keep * scale is h * noise exactly (keep is 0 or
    # 1, and the kept value is the same fp32 division). CUDA's fused native_dropout keeps a bool mask already.
    # The draws go straight into the bool mask: ATen's CPU bernoulli_(p) draws one bernoulli_distribution<double>
    # per element whatever the tensor's dtype, so the mask is the one torch.dropout's fp32 noise has, without the
    # fp32 tensor. where() instead of h * keep: a product with a bool tensor converts the mask to fp32 first (a
    # full-size copy in forward and again in backward). The one difference: a dropped value is +0.0 here and
    # h * 0.0 (-0.0 for negative h) in torch.dropout, which no sum that follows can tell apart. The product by the
    # kept value is in place: where's output is not saved for backward.
    keep = torch.bernoulli_(torch.empty_like(h, dtype=11), 1.0 - p)
    kept_value = torch.div(torch.ones([1], dtype=h.dtype, device=h.device), 1.0 - p)
    return torch.mul_(torch.where(keep, h, 0.0), kept_value)

  def linear_in(self: __torch__.LoraOps, x: Tensor, weight: Tensor) -> Tensor:
    # A projection whose weight has another dtype than x (a trainable fp32 copy in a bf16 model):
    # computed in the weight's dtype, returned in x's dtype.
    return torch.to(torch.linear(torch.to(x, weight.dtype), weight), x.dtype)

  # PEFT's LoftQ (utils/loftq_utils.py _low_rank_decomposition): U, S, Vh = svd(res, full_matrices=False);
  # L = U @ sqrt(diag(S)[:, :r]); R = sqrt(diag(S)[:r, :]) @ Vh.
  def loftq_factors(self: __torch__.LoraOps, res: Tensor, r: int) -> List[Tensor]:
    U, S, Vh = torch.linalg_svd(res, False)
    d = torch.diag(S)
    L = torch.matmul(U, torch.sqrt(torch.slice(d, 1, 0, r)))
    R = torch.matmul(torch.sqrt(torch.slice(d, 0, 0, r)), Vh)
    return [L, R]

  # In-place overwrite without autograd (dst keeps its identity; copy_ rounds to dst's dtype).
  def copy_into(self: __torch__.LoraOps, dst: Tensor, src: Tensor) -> int:
    dst.copy_(src)
    return 0
