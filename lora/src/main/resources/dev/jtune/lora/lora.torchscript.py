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
                   train: bool, scaling: float, scale_rank: bool) -> Tensor:
    # Evaluation, p = 0, or CUDA (whose fused native_dropout keeps a bool mask already). Training on CPU with p > 0
    # takes lora_forward_masked, with a mask jtune draws (LoraLinear, DropoutMask).
    h = torch.dropout(torch.to(x, a.dtype), p, train)
    return self.lora_add(h, base_out, a, b, scaling, scale_rank)

  def lora_forward_masked(self: __torch__.LoraOps, x: Tensor, base_out: Tensor, a: Tensor, b: Tensor, keep: Tensor,
                          p: float, scaling: float, scale_rank: bool) -> Tensor:
    # torch.dropout's arithmetic (ATen's _dropout_impl: h * noise, noise = mask / (1 - p) in h's dtype) with a given
    # bool mask. Its backward keeps the bool mask (1 byte a value) and a 1-element scale, where torch.dropout keeps
    # its fp32 noise (4 bytes); h * keep * scale is h * noise exactly (keep is 0 or 1, and the kept value is the same
    # fp32 division). where() instead of h * keep: a product with a bool tensor converts the mask to fp32 first (a
    # full-size copy in forward and again in backward). A dropped value is +0.0 here and h * 0.0 (-0.0 for negative
    # h) in torch.dropout, which no sum that follows can tell apart. The product by the kept value is in place:
    # where's output is not saved for backward.
    h = torch.to(x, a.dtype)
    kept_value = torch.div(torch.ones([1], dtype=h.dtype, device=h.device), 1.0 - p)
    h = torch.mul_(torch.where(keep, h, 0.0), kept_value)
    return self.lora_add(h, base_out, a, b, scaling, scale_rank)

  def lora_add(self: __torch__.LoraOps, h: Tensor, base_out: Tensor, a: Tensor, b: Tensor, scaling: float,
               scale_rank: bool) -> Tensor:
    # The adapter's term of the (dropped) input h, added in the promoted dtype, cast back to the base output's.
    # scale_rank (scaling is a power of two, as alpha = 2r makes it): the scaling multiplies the rank-r intermediate
    # instead of the [.., out] product, forward and in backward, an r/out share of PEFT's cost. Multiplying by a power
    # of two is exact, so every product and sum is PEFT's scaled exactly: the same bits (barring values under 2^-126).
    if scale_rank:
      delta = torch.linear(torch.mul(torch.linear(h, a), scaling), b)
    else:
      delta = torch.mul(torch.linear(torch.linear(h, a), b), scaling)
    return torch.to(torch.add(base_out, delta), base_out.dtype)

  def draw_seed(self: __torch__.LoraOps, anchor: Tensor) -> int:
    # One 62-bit draw from libtorch's generator on anchor's device: the seed of one dropout mask.
    return int(torch.randint(0, 4611686018427387904, [1], dtype=4, device=anchor.device).item())

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
