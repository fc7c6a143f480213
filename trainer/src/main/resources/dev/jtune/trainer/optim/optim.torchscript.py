# jtune's optimizer kernels: in-place parameter updates that mirror torch.optim op for op, so that the
# float32 results match PyTorch's bit for bit where PyTorch runs the same aten ops.
#
# Compiled like the model's kernels (see dev.jtune.model.engine.ScriptModule); the Java side switches
# autograd off (grad mode false) around these calls, as torch.optim's step runs under no_grad.
class Ops(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool

  # torch/optim/adam.py _single_tensor_adam (torch 2.x; adamw.py delegates to it with
  # decoupled_weight_decay=True), non-capturable, amsgrad=False, maximize=False, real tensors:
  #   param.mul_(1 - lr * weight_decay)                       (only when weight_decay != 0)
  #   exp_avg.lerp_(grad, 1 - beta1)
  #   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
  #   step_size = lr / bias_correction1
  #   denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
  #   param.addcdiv_(exp_avg, denom, value=-step_size)
  # Scalars are computed in double on the Java side exactly as Python computes them.
  def adamw_(self: __torch__.Ops, param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor,
             decay: float, apply_decay: bool, one_minus_beta1: float, beta2: float, one_minus_beta2: float,
             step_size: float, bias_correction2_sqrt: float, eps: float) -> int:
    if apply_decay:
      param.mul_(decay)
    exp_avg.lerp_(grad, one_minus_beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=one_minus_beta2)
    denom = torch.div(torch.sqrt(exp_avg_sq), bias_correction2_sqrt).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-step_size)
    return 0

  # torch.nn.utils.clip_grad_norm_ pieces: per-tensor L2 norms, the norm of their stack, the clamped
  # coefficient max_norm / (total + 1e-6) (Python's float / Tensor is reciprocal(t) * float), in-place scale.
  def vector_norm(self: __torch__.Ops, x: Tensor) -> Tensor:
    return torch.linalg_vector_norm(x, 2.0)

  def stacked_norm(self: __torch__.Ops, norms: Tensor) -> Tensor:
    return torch.linalg_vector_norm(norms, 2.0)

  def clip_coef(self: __torch__.Ops, total: Tensor, max_norm: float) -> Tensor:
    coef = torch.mul(torch.reciprocal(torch.add(total, 1e-6)), max_norm)
    return torch.clamp(coef, None, 1.0)

  def mul_(self: __torch__.Ops, x: Tensor, factor: Tensor) -> int:
    x.mul_(factor)
    return 0

  def scale_(self: __torch__.Ops, x: Tensor, factor: float) -> int:
    x.mul_(factor)
    return 0

  def copy_(self: __torch__.Ops, dst: Tensor, src: Tensor) -> int:
    dst.copy_(src)
    return 0

  def zero_(self: __torch__.Ops, x: Tensor) -> int:
    x.zero_()
    return 0

  # 1 when every value is finite (GradScaler's found_inf check), else 0.
  def all_finite(self: __torch__.Ops, x: Tensor) -> int:
    return int(bool(torch.all(torch.isfinite(x))))

  # FSDP's parameter storage (torch.distributed.fsdp _free_storage / _alloc_storage, done with set_): the same
  # leaf tensor, still requiring grad, gives its memory up between uses and is pointed at a gathered buffer for
  # each use. Called with autograd off (set_ on a leaf that requires grad is refused otherwise).
  def free_storage_(self: __torch__.Ops, x: Tensor) -> int:
    x.set_()
    return 0

  def use_storage_(self: __torch__.Ops, x: Tensor, source: Tensor) -> int:
    x.set_(source)
    return 0

  def numel(self: __torch__.Ops, x: Tensor) -> int:
    return x.numel()

  # The gradients of sum(out * upstream) with respect to `inputs`, returned instead of accumulated into their .grad
  # (torch.autograd.grad); an input the graph does not reach gets zeros.
  def grads(self: __torch__.Ops, out: Tensor, upstream: Tensor, inputs: List[Tensor]) -> List[Tensor]:
    ups = annotate(List[Optional[Tensor]], [upstream])
    found = torch.autograd.grad([out], inputs, ups, None, False, True)
    result = annotate(List[Tensor], [])
    for i in range(len(inputs)):
      g = found[i]
      if g is None:
        result.append(torch.zeros_like(inputs[i]))
      else:
        result.append(g)
    return result

  # ---- bitsandbytes' AdamW (optim_bits 8 and 32), ported from bitsandbytes @ 95f9af309d4d5793847169c39288dcd3fcbdf564:
  # csrc/kernels.cu kOptimizerStatic8bit2StateBlockwise<T, ADAM, 256, 1> (quantize_2D) and kOptimizer32bit2State<T, ADAM>,
  # bitsandbytes/functional.py create_dynamic_map. Scalars (float32 in the kernels) come from the Java side already
  # rounded to float; every tensor op here is one correctly rounded float32 op (no fused multiply-add), in the
  # kernel's order. The CUDA kernel's fast intrinsics (__fdividef, __powf) and any FMA contraction nvcc does are
  # replaced by exact IEEE operations: the result is the kernel's arithmetic without its approximations.

  # sqrtf, correctly rounded: libtorch's float32 sqrt on CPU (vectorized math library) can miss the nearest float by
  # an ulp; the double square root rounded once to float is the correctly rounded one (a double ulp error could
  # change that only within 2^-29 of a float midpoint).
  def sqrtf(self: __torch__.Ops, x: Tensor) -> Tensor:
    return torch.to(torch.sqrt(torch.to(x, 7)), 6)

  # create_dynamic_map(signed, max_exponent_bits=7, total_bits=8): per exponent i in 0..6, the midpoints of
  # linspace(0.1, 1, items) (float32) times 10**(i-6) (a float32 tensor times a Python float), negated too when
  # signed (2**i + 1 boundaries; unsigned 2**(i+1) + 1), then 0 and 1.0; sorted. 256 values either way.
  def dynamic_map(self: __torch__.Ops, signed: bool) -> Tensor:
    parts = annotate(List[Tensor], [])
    count = 1
    for i in range(7):
      items = count + 1
      if not signed:
        items = 2 * count + 1
      b = torch.linspace(0.1, 1., items, dtype=6)
      means = torch.div(torch.add(torch.slice(b, 0, 0, items - 1), torch.slice(b, 0, 1, items)), 2.)
      scale = torch.pow(10., float(i - 6))
      parts.append(torch.mul(means, scale))
      if signed:
        parts.append(torch.mul(means, torch.neg(scale)))
      count = count * 2
    parts.append(torch.zeros([1], dtype=6))
    parts.append(torch.ones([1], dtype=6))
    values, indices = torch.sort(torch.cat(parts, 0))
    return values

  # quantize_2D<SIGNED>: binary search of the sorted 256-entry map from pivot 127 in steps 64..1 (the last pivot is
  # always even), then the nearer of that pivot and its neighbour, a tie keeping the pivot. That is: the nearest code,
  # a value exactly on the midpoint (code[i] + code[i+1]) * 0.5 going to the even one of i, i+1, and NaN to 0. Done
  # here with one bucketize over the 255 midpoints (x <= mid[i] -> i) and the tie rule, not 7 rounds of gathers;
  # BnbReference transcribes the search itself and the fixture test holds the two equal, ties included.
  def quantize_2d(self: __torch__.Ops, x: Tensor, code: Tensor, signed: bool) -> Tensor:
    mid = torch.mul(torch.add(torch.slice(code, 0, 0, 255), torch.slice(code, 0, 1, 256)), 0.5)
    b = torch.bucketize(x, mid)
    at = torch.index_select(mid, 0, torch.clamp(b, None, 254))
    tie = torch.logical_and(torch.eq(x, at), torch.eq(torch.remainder(b, 2), 1))
    b = torch.where(tie, torch.add(b, 1), b)
    return torch.where(torch.isnan(x), torch.zeros_like(b), b)

  # One kOptimizerStatic8bit2StateBlockwise ADAM update of one tensor (flattened; blocks of 256 from its first
  # element; absmax1/absmax2 one float per block; state1/state2 uint8 codes of code1 (signed map) and code2
  # (unsigned map)). Per element with a finite gradient:
  #   s2 = code2[c2]*absmax2 * beta2 + (1-beta2)*g*g ;  s1 = code1[c1]*absmax1 * beta1 + (1-beta1)*g
  #   p  = p + step_size * (s1 / (sqrt(s2) + correction2*eps)) ;  p = p * (1 - lr*wd)   (wd > 0 only)
  # a non-finite gradient leaves p and gives s1 = s2 = 0. The new absmax of a block is max|s| over its 256 lanes,
  # the tail block's missing lanes included as the kernel loads them (code 128 for state1, 0 for state2, gradient
  # 0). Codes: quantize_2D of s/absmax; a state1 code whose value has the other sign than s1 moves one step
  # towards s1's sign (uint8 wrap-around).
  # Blocks are independent: the tensor is updated `chunk` values (a multiple of 256) at a time, on views, so that the
  # int64 indices and fp32 temporaries stay a few MB whatever the tensor's size. Tensors must be contiguous.
  def bnb_adam8bit_(self: __torch__.Ops, param: Tensor, grad: Tensor, state1: Tensor, state2: Tensor,
                    absmax1: Tensor, absmax2: Tensor, code1: Tensor, code2: Tensor, beta1: float, beta2: float,
                    one_minus_beta1: float, one_minus_beta2: float, eps_c2: float, step_size: float,
                    decay: float, apply_decay: bool, chunk: int) -> int:
    n = torch.numel(param)
    p = torch.reshape(param, [-1])
    g = torch.reshape(grad, [-1])
    c1 = torch.reshape(state1, [-1])
    c2 = torch.reshape(state2, [-1])
    start = 0
    while start < n:
      length = min(chunk, n - start)
      b0 = start // 256
      nb = (length + 255) // 256
      self.bnb_adam8bit_chunk_(torch.narrow(p, 0, start, length), torch.narrow(g, 0, start, length),
                               torch.narrow(c1, 0, start, length), torch.narrow(c2, 0, start, length),
                               torch.narrow(absmax1, 0, b0, nb), torch.narrow(absmax2, 0, b0, nb), code1, code2,
                               beta1, beta2, one_minus_beta1, one_minus_beta2, eps_c2, step_size, decay, apply_decay)
      start = start + length
    return 0

  def bnb_adam8bit_chunk_(self: __torch__.Ops, param: Tensor, grad: Tensor, state1: Tensor, state2: Tensor,
                          absmax1: Tensor, absmax2: Tensor, code1: Tensor, code2: Tensor, beta1: float, beta2: float,
                          one_minus_beta1: float, one_minus_beta2: float, eps_c2: float, step_size: float,
                          decay: float, apply_decay: bool) -> int:
    n = torch.numel(param)
    blocks = torch.numel(absmax1)
    full = blocks * 256
    p = param
    g = torch.to(grad, 6)
    finite = torch.isfinite(g)
    block_of = torch.floor_divide(torch.arange(0, n, dtype=4), 256)
    am1 = torch.index_select(absmax1, 0, block_of)
    am2 = torch.index_select(absmax2, 0, block_of)
    c1 = torch.to(torch.reshape(state1, [-1]), 4)
    c2 = torch.to(torch.reshape(state2, [-1]), 4)
    s2 = torch.mul(torch.index_select(code2, 0, c2), am2)
    s2 = torch.add(torch.mul(s2, beta2), torch.mul(torch.mul(g, one_minus_beta2), g))
    s1 = torch.mul(torch.index_select(code1, 0, c1), am1)
    s1 = torch.add(torch.mul(s1, beta1), torch.mul(g, one_minus_beta1))
    zero = torch.zeros_like(s1)
    s1 = torch.where(finite, s1, zero)
    s2 = torch.where(finite, s2, zero)
    s1_full = s1
    s2_full = s2
    if full > n:
      pad1 = torch.mul(torch.mul(torch.slice(code1, 0, 128, 129), torch.slice(absmax1, 0, blocks - 1, blocks)), beta1)
      pad2 = torch.mul(torch.mul(torch.slice(code2, 0, 0, 1), torch.slice(absmax2, 0, blocks - 1, blocks)), beta2)
      s1_full = torch.cat([s1, torch.expand(pad1, [full - n])], 0)
      s2_full = torch.cat([s2, torch.expand(pad2, [full - n])], 0)
    new1 = torch.amax(torch.reshape(torch.abs(s1_full), [blocks, 256]), [1])
    new2 = torch.amax(torch.reshape(torch.abs(s2_full), [blocks, 256]), [1])
    updated = self.bnb_param_update(p, s1, s2, eps_c2, step_size, decay, apply_decay)
    param.copy_(torch.reshape(torch.where(finite, updated, p), param.size()))
    x1 = torch.slice(torch.reshape(torch.div(torch.reshape(s1_full, [blocks, 256]), torch.unsqueeze(new1, 1)), [-1]), 0, 0, n)
    x2 = torch.slice(torch.reshape(torch.div(torch.reshape(s2_full, [blocks, 256]), torch.unsqueeze(new2, 1)), [-1]), 0, 0, n)
    q1 = self.quantize_2d(x1, code1, True)
    flip = torch.ne(torch.signbit(torch.index_select(code1, 0, q1)), torch.signbit(s1))
    q1 = torch.where(flip, torch.where(torch.gt(s1, 0.), torch.add(q1, 1), torch.sub(q1, 1)), q1)
    q1 = torch.bitwise_and(q1, 255)
    q2 = self.quantize_2d(x2, code2, False)
    state1.copy_(torch.reshape(torch.to(q1, 0), state1.size()))
    state2.copy_(torch.reshape(torch.to(q2, 0), state2.size()))
    absmax1.copy_(new1)
    absmax2.copy_(new2)
    return 0

  # kOptimizer32bit2State ADAM (tensors under min_8bit_size, or optim_bits 32), max_unorm 0, skip_zeros False:
  #   s1 = s1*beta1 + (1-beta1)*g ;  s2 = s2*beta2 + (1-beta2)*(g*g)
  #   p = p + step_size * (s1 / (sqrt(s2) + eps*correction2)) ;  p = p * (1 - lr*wd)   (wd > 0 only)
  def bnb_adam32_(self: __torch__.Ops, param: Tensor, grad_in: Tensor, state1: Tensor, state2: Tensor, beta1: float,
                  beta2: float, one_minus_beta1: float, one_minus_beta2: float, eps_c2: float, step_size: float,
                  decay: float, apply_decay: bool) -> int:
    grad = torch.to(grad_in, 6)
    state1.copy_(torch.add(torch.mul(state1, beta1), torch.mul(grad, one_minus_beta1)))
    state2.copy_(torch.add(torch.mul(state2, beta2), torch.mul(torch.mul(grad, grad), one_minus_beta2)))
    param.copy_(self.bnb_param_update(param, state1, state2, eps_c2, step_size, decay, apply_decay))
    return 0

  # Both kernels' parameter update, p_vals being of the parameter's type T: (float)p plus the step in fp32, stored
  # into T (bf16: round to nearest even), then the weight decay reads that T value back, multiplies in fp32 and
  # stores into T again. For fp32 parameters the casts are no-ops. Returns a tensor of the parameter's dtype.
  def bnb_param_update(self: __torch__.Ops, p: Tensor, s1: Tensor, s2: Tensor, eps_c2: float, step_size: float,
                       decay: float, apply_decay: bool) -> Tensor:
    dtype = p.dtype
    updated = torch.to(torch.add(torch.to(p, 6), torch.mul(torch.div(s1, torch.add(self.sqrtf(s2), eps_c2)),
                                                           step_size)), dtype)
    if apply_decay:
      updated = torch.to(torch.mul(torch.to(updated, 6), decay), dtype)
    return updated

  # Blockwise dequantization of uint8 codes as the update reads them: code[c] * absmax[block] (blocks of 256).
  def dequantize_blockwise(self: __torch__.Ops, codes: Tensor, absmax: Tensor, code: Tensor) -> Tensor:
    flat = torch.to(torch.reshape(codes, [-1]), 4)
    block_of = torch.floor_divide(torch.arange(0, torch.numel(flat), dtype=4), 256)
    return torch.mul(torch.index_select(code, 0, flat), torch.index_select(absmax, 0, block_of))

  # Blockwise quantization with the update's rule (absmax = max|x| per 256 block, quantize_2D of x/absmax; for the
  # signed map the sign fix too): returns the uint8 codes; absmax_out receives the absmax.
  def quantize_blockwise(self: __torch__.Ops, x: Tensor, code: Tensor, signed: bool, absmax_out: Tensor) -> Tensor:
    flat = torch.reshape(x, [-1])
    n = torch.numel(flat)
    blocks = torch.numel(absmax_out)
    padded = torch.cat([flat, torch.zeros([blocks * 256 - n], dtype=6)], 0)
    am = torch.amax(torch.reshape(torch.abs(padded), [blocks, 256]), [1])
    scaled = torch.slice(torch.reshape(torch.div(torch.reshape(padded, [blocks, 256]), torch.unsqueeze(am, 1)), [-1]), 0, 0, n)
    q = self.quantize_2d(scaled, code, signed)
    if signed:
      flip = torch.ne(torch.signbit(torch.index_select(code, 0, q)), torch.signbit(flat))
      q = torch.bitwise_and(torch.where(flip, torch.where(torch.gt(flat, 0.), torch.add(q, 1), torch.sub(q, 1)), q), 255)
    absmax_out.copy_(am)
    return torch.to(q, 0)

  # ---- torchao's AdamW8bit (transformers' adamw_torch_8bit), ported from pytorch/ao @ 36027d82d1ad9949597ea16002ff4940374b1b94:
  # torchao/optim/adam.py single_param_adam (IS_ADAMW, no amsgrad, no bf16 stochastic rounding) run eagerly op for op
  # (torchao runs it under torch.compile, whose fused code may round differently), with the state of
  # torchao/optim/subclass_8bit.py OptimState8bit (block 256: codes uint8 + one fp32 scale a block; lerp reads the
  # dequantized state, copy_ quantizes with quant_utils.scale_tensor + quantize_8bit_with_qmap).

  # quant_utils.quantize_8bit_with_qmap (bits 8) and quantize_4bit_with_qmap (bits 4): branchless binary search
  # (input >= qmap[codes + k], steps 2^(bits-2) down to 1), then round up when the residual is at least half the gap
  # (a tie goes up).
  def torchao_quantize(self: __torch__.Ops, x: Tensor, qmap: Tensor, bits: int) -> Tensor:
    half = 1 << (bits - 1)
    codes = torch.where(torch.ge(x, torch.select(qmap, 0, half)), half, 0)
    step = half // 2
    for k in range(bits - 1):
      codes = torch.add(codes, torch.where(torch.ge(x, torch.index_select(qmap, 0, torch.add(codes, step))), step, 0))
      step = step // 2
    codes_up = torch.clamp(torch.add(codes, 1), None, 2 * half - 1)
    val_down = torch.index_select(qmap, 0, codes)
    val_up = torch.index_select(qmap, 0, codes_up)
    residual = torch.sub(x, val_down)
    return torch.where(torch.ge(residual, torch.mul(torch.sub(val_up, val_down), 0.5)), codes_up, codes)

  # quant_utils.scale_tensor over as many blocks as `scale` has: amax per block, clip 1e-12, divide; the scales are
  # written to `scale`, the scaled values returned flat.
  def torchao_scaled(self: __torch__.Ops, x: Tensor, scale: Tensor) -> Tensor:
    rows = torch.reshape(x, [torch.numel(scale), -1])
    s = torch.clamp(torch.amax(torch.abs(rows), [-1]), 1e-12)
    scale.copy_(s)
    return torch.reshape(torch.div(rows, torch.reshape(s, [-1, 1])), [-1])

  # OptimState8bit copy_ from fp32: scale_tensor and the codes.
  def torchao_store(self: __torch__.Ops, x: Tensor, codes: Tensor, scale: Tensor, qmap: Tensor) -> int:
    scaled = self.torchao_scaled(x, scale)
    codes.copy_(torch.reshape(torch.to(self.torchao_quantize(scaled, qmap, 8), 0), codes.size()))
    return 0

  # quant_utils.dequant_with_qmap: qmap[codes] per block times the block's scale.
  def torchao_load(self: __torch__.Ops, codes: Tensor, scale: Tensor, qmap: Tensor) -> Tensor:
    vals = torch.index_select(qmap, 0, torch.to(torch.reshape(codes, [-1]), 4))
    return torch.reshape(torch.mul(torch.reshape(vals, [torch.numel(scale), -1]), torch.reshape(scale, [-1, 1])),
                         codes.size())

  # single_param_adam; returns the fp32 [p, m, v] (the caller stores them: a bf16 param or bf16 moments round to
  # nearest even on copy_, as torchao's p.copy_(p_f32) and exp_avg.copy_(exp_avg_f32) do).
  #   p, g, m, v upcast to fp32 (p.float(), grad.float(), exp_avg.float(): no-ops for fp32 tensors)
  #   p = p - lr*wd*p ; bc = 1 - beta**step (float32 tensors: lr and step are fp32 tensors in torchao)
  #   m = m.lerp(g, 1 - beta1) ; v = v.lerp(g*g, 1 - beta2)
  #   p = p - lr * (m / bc1) / (sqrt(v) / sqrt(bc2) + eps)      (with the unrounded fp32 m, v)
  def torchao_adamw_math(self: __torch__.Ops, param_in: Tensor, grad_in: Tensor, m_in: Tensor, v_in: Tensor,
                         lr: float, weight_decay: float, beta1: float, beta2: float, eps: float,
                         step: float) -> List[Tensor]:
    param = torch.to(param_in, 6)
    grad = torch.to(grad_in, 6)
    m = torch.to(m_in, 6)
    v = torch.to(v_in, 6)
    lr_t = torch.full([], lr, dtype=6)
    step_t = torch.full([], step, dtype=6)
    p = torch.sub(param, torch.mul(torch.mul(lr_t, weight_decay), param))
    bc1 = torch.rsub(torch.pow(beta1, step_t), 1)
    bc2 = torch.rsub(torch.pow(beta2, step_t), 1)
    m_new = torch.lerp(m, grad, 1. - beta1)
    v_new = torch.lerp(v, torch.square(grad), 1. - beta2)
    denom = torch.add(torch.div(torch.sqrt(v_new), torch.sqrt(bc2)), eps)
    p = torch.sub(p, torch.div(torch.mul(lr_t, torch.div(m_new, bc1)), denom))
    return [p, m_new, v_new]

  def torchao_adamw32_(self: __torch__.Ops, param: Tensor, grad: Tensor, m: Tensor, v: Tensor, lr: float,
                       weight_decay: float, beta1: float, beta2: float, eps: float, step: float) -> int:
    out = self.torchao_adamw_math(param, grad, m, v, lr, weight_decay, beta1, beta2, eps, step)
    m.copy_(out[1])
    v.copy_(out[2])
    param.copy_(out[0])
    return 0

  # In chunks of `chunk` values (whole blocks: torchao quantizes only tensors of whole blocks), on views.
  def torchao_adamw8bit_(self: __torch__.Ops, param: Tensor, grad: Tensor, codes1: Tensor, codes2: Tensor,
                         scale1: Tensor, scale2: Tensor, qmap1: Tensor, qmap2: Tensor, lr: float, weight_decay: float,
                         beta1: float, beta2: float, eps: float, step: float, chunk: int) -> int:
    n = torch.numel(param)
    p = torch.reshape(param, [-1])
    g = torch.reshape(grad, [-1])
    k1 = torch.reshape(codes1, [-1])
    k2 = torch.reshape(codes2, [-1])
    start = 0
    while start < n:
      length = min(chunk, n - start)
      self.torchao_adamw8bit_chunk_(torch.narrow(p, 0, start, length), torch.narrow(g, 0, start, length),
                                    torch.narrow(k1, 0, start, length), torch.narrow(k2, 0, start, length),
                                    torch.narrow(scale1, 0, start // 256, length // 256),
                                    torch.narrow(scale2, 0, start // 256, length // 256), qmap1, qmap2, lr,
                                    weight_decay, beta1, beta2, eps, step)
      start = start + length
    return 0

  def torchao_adamw8bit_chunk_(self: __torch__.Ops, param: Tensor, grad: Tensor, codes1: Tensor, codes2: Tensor,
                               scale1: Tensor, scale2: Tensor, qmap1: Tensor, qmap2: Tensor, lr: float,
                               weight_decay: float, beta1: float, beta2: float, eps: float, step: float) -> int:
    m = self.torchao_load(codes1, scale1, qmap1)
    v = self.torchao_load(codes2, scale2, qmap2)
    out = self.torchao_adamw_math(param, grad, m, v, lr, weight_decay, beta1, beta2, eps, step)
    self.torchao_store(out[1], codes1, scale1, qmap1)
    self.torchao_store(out[2], codes2, scale2, qmap2)
    param.copy_(out[0])
    return 0

  # ---- torchao's AdamW4bit (transformers' adamw_torch_4bit), same source commit: single_param_adam as above, with the
  # state of torchao/optim/subclass_4bit.py OptimState4bit (block 128; two 4-bit codes a byte, the even element in the
  # high nibble; one fp32 scale a block) and its maps: signed create_dynamic_map(True, 3, 4), unsigned
  # linspace(0, 1, 17)[1:] (no zero: a stored second moment is never below scale/16).

  # subclass_4bit.get_qmap_signed / get_qmap_unsigned: 16 sorted fp32 values. create_dynamic_map(True, 3, 4) is
  # dynamic_map's loop with 3 exponents (10**-2 .. 10**0), 2**i + 1 boundaries each, no additional items.
  def torchao_qmap4(self: __torch__.Ops, signed: bool) -> Tensor:
    if not signed:
      return torch.slice(torch.linspace(0., 1., 17, dtype=6), 0, 1, 17)
    parts = annotate(List[Tensor], [])
    count = 1
    for i in range(3):
      items = count + 1
      b = torch.linspace(0.1, 1., items, dtype=6)
      means = torch.div(torch.add(torch.slice(b, 0, 0, items - 1), torch.slice(b, 0, 1, items)), 2.)
      scale = torch.pow(10., float(i - 2))
      parts.append(torch.mul(means, scale))
      parts.append(torch.mul(means, torch.neg(scale)))
      count = count * 2
    parts.append(torch.zeros([1], dtype=6))
    parts.append(torch.ones([1], dtype=6))
    values, indices = torch.sort(torch.cat(parts, 0))
    return values

  # OptimState4bit copy_ from fp32: scale_tensor of the flattened tensor (blocks of 128), codes, packed in pairs.
  def torchao_store4(self: __torch__.Ops, x: Tensor, packed: Tensor, scale: Tensor, qmap: Tensor) -> int:
    scaled = self.torchao_scaled(x, scale)
    pairs = torch.reshape(self.torchao_quantize(scaled, qmap, 4), [-1, 2])
    hi = torch.bitwise_left_shift(torch.select(pairs, 1, 0), 4)
    packed.copy_(torch.to(torch.bitwise_or(hi, torch.select(pairs, 1, 1)), 0))
    return 0

  # OptimState4bit.dequantize: unpack (high nibble first), qmap[codes] per block times the block's scale.
  def torchao_load4(self: __torch__.Ops, packed: Tensor, scale: Tensor, qmap: Tensor) -> Tensor:
    c = torch.to(packed, 4)
    codes = torch.reshape(torch.stack([torch.bitwise_right_shift(c, 4), torch.bitwise_and(c, 15)], -1), [-1])
    vals = torch.index_select(qmap, 0, codes)
    return torch.reshape(torch.mul(torch.reshape(vals, [torch.numel(scale), -1]), torch.reshape(scale, [-1, 1])), [-1])

  # In chunks of `chunk` values (a multiple of 128), on views of the flat parameter, the packed codes and the scales.
  def torchao_adamw4bit_(self: __torch__.Ops, param: Tensor, grad: Tensor, codes1: Tensor, codes2: Tensor,
                         scale1: Tensor, scale2: Tensor, qmap1: Tensor, qmap2: Tensor, lr: float, weight_decay: float,
                         beta1: float, beta2: float, eps: float, step: float, chunk: int) -> int:
    n = torch.numel(param)
    p = torch.reshape(param, [-1])
    g = torch.reshape(grad, [-1])
    start = 0
    while start < n:
      length = min(chunk, n - start)
      pc = torch.narrow(p, 0, start, length)
      k1 = torch.narrow(codes1, 0, start // 2, length // 2)
      k2 = torch.narrow(codes2, 0, start // 2, length // 2)
      s1 = torch.narrow(scale1, 0, start // 128, length // 128)
      s2 = torch.narrow(scale2, 0, start // 128, length // 128)
      m = self.torchao_load4(k1, s1, qmap1)
      v = self.torchao_load4(k2, s2, qmap2)
      out = self.torchao_adamw_math(pc, torch.narrow(g, 0, start, length), m, v, lr, weight_decay, beta1, beta2, eps,
                                    step)
      self.torchao_store4(out[1], k1, s1, qmap1)
      self.torchao_store4(out[2], k2, s2, qmap2)
      pc.copy_(out[0])
      start = start + length
    return 0

  # ---- Axolotl's ReLoRA restart (monkeypatch/relora.py magnitude_pruning_, as reset_optimizer calls it on each state
  # tensor): threshold = quantile(|x| as fp32, ratio) cast back to x's dtype, then x *= (|x| > threshold). On
  # bitsandbytes' 8-bit state Axolotl prunes the uint8 codes themselves (state1/state2), which the _u8 form does.
  def relora_magnitude_prune_f32_(self: __torch__.Ops, x: Tensor, ratio: float) -> int:
    mag = torch.abs(x)
    threshold = torch.quantile(torch.flatten(mag), ratio)
    x.mul_(torch.to(torch.gt(mag, threshold), 6))
    return 0

  def relora_magnitude_prune_u8_(self: __torch__.Ops, x: Tensor, ratio: float) -> int:
    mag = torch.abs(x)
    threshold = torch.to(torch.quantile(torch.to(torch.flatten(mag), 6), ratio), 0)
    x.mul_(torch.to(torch.gt(mag, threshold), 0))
    return 0
