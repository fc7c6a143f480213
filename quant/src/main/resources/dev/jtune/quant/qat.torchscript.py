# Quantization-aware training's fake quantization for jtune's quant module (Axolotl's qat:), compiled by libtorch at
# run time (see dev.jtune.model.engine.ScriptModule; same dialect as int8.torchscript.py: serialized TorchScript,
# every argument annotated). Transcribes torchao v0.18.0 (identical in v0.17.0, Axolotl's pin) op for op, in the same
# dtypes, so that libtorch's autograd derives the same gradients:
#   torchao/quantization/qat/fake_quantizer.py  IntxFakeQuantizer._per_token_forward (int8, asymmetric),
#                                               Int4WeightFakeQuantizer._bf16_activations_forward
#   torchao/quantization/quant_primitives.py    _choose_qparams_affine (ASYMMETRIC), _quantize_affine_no_dtype_cast,
#                                               _dequantize_affine_no_dtype_check, _Round
#   torchao/quantization/qat/utils.py           _fake_quantize_per_token
# torchao's _Round is round() forward and the identity backward (straight-through estimator); here it is
# v + (round(v) - v).detach(), which is round(v) exactly (v fp32; round(v) - v is exact) and passes the gradient
# unchanged. Tools/reference/qat_expected.py runs torchao's code; its fixture is matched bit for bit.
# Dtype codes (torch ScalarType): 3 int32, 6 float32, 15 bfloat16.
class QatOps(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool

  def ste_round(self: __torch__.QatOps, v: Tensor) -> Tensor:
    return torch.add(v, torch.detach(torch.sub(torch.round(v), v)))

  def int8_per_token(self: __torch__.QatOps, x: Tensor) -> Tensor:
    # IntxFakeQuantizeConfig(torch.int8, "per_token", is_symmetric=False): quant range [-128, 127], scale fp32,
    # zero point int32; eps = torch.finfo(x.dtype).smallest_normal (2^-126 for fp32 and bf16, 2^-14 for fp16).
    # choose_qparams_affine runs under no_grad in x's own dtype (bf16 statistics for a bf16 x), its scale then fp32.
    eps = 1.1754943508222875e-38
    if int(x.dtype) == 5:
      eps = 6.103515625e-05
    xd = torch.detach(x)
    min_val = torch.amin(xd, [-1], False)
    max_val = torch.amax(xd, [-1], False)
    min_neg = torch.min(min_val, torch.zeros_like(min_val))
    max_pos = torch.max(max_val, torch.zeros_like(max_val))
    scale = torch.div(torch.sub(max_pos, min_neg), 255.)
    scale = torch.clamp(scale, eps)
    zero_point = torch.rsub(torch.round(torch.div(min_neg, scale)), -128)
    zero_point = torch.clamp(zero_point, -128, 127)
    zero_point = torch.unsqueeze(torch.to(zero_point, 3), -1)
    scale = torch.unsqueeze(torch.to(scale, 6), -1)
    # _quantize_affine_no_dtype_cast: clamp(round(x * (1.0 / scale)) + zero_point, qmin, qmax); 1.0 / scale is
    # Tensor.__rtruediv__, i.e. reciprocal(scale) * 1.0.
    q = torch.mul(x, torch.mul(torch.reciprocal(scale), 1.0))
    q = torch.clamp(torch.add(self.ste_round(q), zero_point), -128, 127)
    # _dequantize_affine_no_dtype_check(output_dtype=x.dtype): (q.to(dtype) - zero_point.to(dtype)) * scale, .to(dtype)
    dtype = int(x.dtype)
    dq = torch.sub(torch.to(q, dtype), torch.to(zero_point, dtype))
    dq = torch.to(torch.mul(dq, scale), dtype)
    return dq

  def int4_weight(self: __torch__.QatOps, w: Tensor, group_size: int) -> Tensor:
    # Int4WeightFakeQuantizer._bf16_activations_forward (Int4WeightFakeQuantizeConfig(group_size,
    # activation_dtype=torch.bfloat16)): asymmetric per group of group_size input features, in fp32, 16 levels
    # centred by 8; the statistics stay in the graph (gradients reach the weight through them as well).
    eps = 1e-06
    wg = torch.view(torch.to(w, 6), [w.size(0), -1, group_size])
    max_val = torch.amax(wg, [-1], True)
    min_val = torch.amin(wg, [-1], True)
    scale = torch.div(torch.clamp(torch.sub(max_val, min_val), eps), 15)
    zero_point = torch.add(min_val, torch.mul(scale, 8))
    fq = torch.clamp(self.ste_round(torch.div(torch.sub(wg, min_val), scale)), 0, 15)
    fq = torch.sub(fq, 8)
    fq = torch.add(torch.mul(fq, scale), zero_point)
    return torch.to(torch.view(fq, w.size()), int(w.dtype))

  def e2m1(self: __torch__.QatOps, lp: Tensor) -> Tensor:
    # custom_fp_utils._f32_to_floatx_unpacked(lp, 2, 1) then _floatx_unpacked_to_f32, for fp32 lp in [-6, 6]: the
    # nearest e2m1 value {0, 0.5, 1, 1.5, 2, 3, 4, 6}, ties to the even code, the sign kept (-0 too). Each binade's
    # grid is evenly spaced (0.5 below 2, 1 below 4, 2 up to 6) and its even codes are the grid's even multiples, so
    # round-half-to-even of a / step (exact: step is a power of two) gives torchao's bit manipulation; the fixtures
    # check every tie. Three roundings rather than a chain of comparisons: few ops, as each op costs a thread-pool
    # dispatch.
    a = torch.abs(lp)
    mag = torch.where(torch.lt(a, 2.), torch.mul(torch.round(torch.mul(a, 2.)), 0.5),
                      torch.where(torch.lt(a, 4.), torch.round(a), torch.mul(torch.round(torch.mul(a, 0.5)), 2.)))
    return torch.copysign(mag, lp)

  # ---- MXFP4 (torchao/prototype/qat/mx.py MXFakeQuantizedLinear with MXFakeQuantizeConfig(float4_e2m1fn_x2, 32):
  # scaling_mode RCEIL, kernel_preference EMULATED) -----------------------------------------------------------------
  def mx_fp4(self: __torch__.QatOps, x: Tensor, block_size: int) -> Tensor:
    # to_mx (mx_tensor.py) then MXTensor.dequantize(orig dtype), values only: blocks of block_size along the last
    # dimension; E8M0 scale by _to_mx_rceil's eager fallback (exponent ceil(log2(amax / 6)) clamped to [-127, 127],
    # biased by 127; NaN 255, inf 254); elements x * 2^(127 - e) (1.0 when e == 0) clamped to [-6, 6] and rounded to
    # e2m1 {0, 0.5, 1, 1.5, 2, 3, 4, 6} to nearest, ties to the even code (_f32_to_floatx_unpacked's result,
    # written as thresholds: reinterpreting views are not reachable here), the sign kept (-0 too); dequantized as
    # to_dtype does: e2m1 value in x's dtype times pow(2, e - 127) cast to x's dtype. No gradient (see mx_linear).
    dtype = int(x.dtype)
    shape = x.size()
    k = shape[-1]
    blocks = torch.reshape(torch.detach(x), [-1, k // block_size, block_size])
    max_abs = torch.to(torch.unsqueeze(torch.amax(torch.abs(blocks), [-1], False), -1), 6)
    data = torch.to(blocks, 6)
    descale = torch.div(max_abs, 6.0)
    normal = torch.add(torch.clamp(torch.ceil(torch.log2(descale)), -127, 127), 127)
    exponent = torch.where(torch.isnan(descale), torch.full_like(descale, 255.),
                           torch.where(torch.isinf(descale), torch.full_like(descale, 254.), normal))
    rcp = torch.where(torch.eq(exponent, 255.), descale,
                      torch.where(torch.eq(exponent, 254.), torch.full_like(descale, 5.877471754111438e-39),
                                  torch.where(torch.eq(exponent, 0.), torch.ones_like(descale),
                                              torch.exp2(torch.rsub(exponent, 127.)))))
    lp = torch.clamp(torch.mul(data, rcp), -6.0, 6.0)
    value = self.e2m1(lp)
    # get_fp_scale: pow(2.0, e - 127) in fp32 (NaN where e == 255), then both factors in the target dtype
    s_fp = torch.pow(torch.full_like(exponent, 2.), torch.sub(exponent, 127.))
    s_fp = torch.where(torch.eq(exponent, 255.), torch.full_like(s_fp, float("nan")), s_fp)
    dq = torch.mul(torch.to(value, dtype), torch.to(s_fp, dtype))
    return torch.reshape(dq, shape)

  def mx_fake_quant(self: __torch__.QatOps, x: Tensor, block_size: int) -> Tensor:
    # _MXQuantizedForwardFakeQuantizedBackward: y = dequant(mx(x)) @ dequant(mx(w))^T; backward grad_x = g @ wq,
    # grad_w = g^T @ xq. Each fake-quantized operand enters the product as fq.detach() + (t - t.detach()): fq exactly
    # forward (the second term is 0), the identity backward, so the linear's own backward computes those products.
    return torch.add(self.mx_fp4(x, block_size), torch.sub(x, torch.detach(x)))

  # ---- NVFP4 (torchao/prototype/qat/nvfp4.py NVFP4FakeQuantizedLinear with NVFP4FakeQuantizeConfig(
  # use_per_tensor_scale=True) for activations and weights: what QATConfig(NVFP4DynamicActivationNVFP4WeightConfig())
  # prepares; torchao v0.18.0, where nvfp4.py and nvfp4_tensor.py read as on its main branch) ----------------------
  def nvfp4_blocks(self: __torch__.QatOps, data: Tensor, pts: Tensor) -> Tuple[Tensor, Tensor]:
    # nvfp4_tensor.py nvfp4_quantize, two-level branch: fp32 blocks of 16 along the last dimension; block scale
    # amax / 6 divided by the per-tensor scale, clamped to [e4m3's smallest normal 2^-6, 448] and cast to float8 e4m3
    # (round to nearest even); elements times (1 / pts) / e4m3 scale, clamped to [-6, 6], rounded to e2m1.
    # Returns the e2m1 values [M, K/16, 16] and the e4m3 block scales in fp32 [M, K/16, 1].
    hp = torch.reshape(torch.to(data, 6), [data.size(0), -1, 16])
    max_abs = torch.amax(torch.abs(hp), [-1], False)
    block_scale = torch.div(max_abs, 6.0)
    scaled = torch.div(block_scale, pts)
    s32 = torch.to(torch.to(torch.clamp(scaled, 0.015625, 448.0), 24), 6)
    # (1.0 / per_tensor_scale) / scale: Tensor.__rtruediv__ is reciprocal() * 1.0
    rcp = torch.div(torch.mul(torch.reciprocal(pts), 1.0), s32)
    lp = torch.clamp(torch.mul(hp, torch.unsqueeze(rcp, -1)), -6.0, 6.0)
    return self.e2m1(lp), torch.unsqueeze(s32, -1)

  def nvfp4_linear(self: __torch__.QatOps, x: Tensor, w: Tensor) -> Tensor:
    # NVFP4FakeQuantizedLinear.forward / _NVFP4QuantizedForwardFakeQuantizedBackward for x [..., K], w [N, K]:
    # per-tensor scale amax(|t|) (in t's dtype) as fp32 / (448 * 6), for the input (all its rows together) and the
    # weight; forward _addmm_nvfp4_dispatch: the block-scaled fp4 GEMM (each element times its e4m3 block scale, exact
    # in fp32; products summed in fp32; rounded once to x's dtype: torch._scaled_mm's numerics on Blackwell, emulated
    # here), then times (pts_x * pts_w) cast to x's dtype. Backward in high precision: grad_x = g @ dequant(w),
    # grad_w = g^T @ dequant(x), dequant = e2m1 value * (pts * e4m3 scale in fp32), cast to the operand's dtype
    # (NVFP4Tensor.dequantize / get_hp_scales). Autograd gets that backward from mm(xd, wd^T) over operands that are
    # the dequantized values forward and the identity backward (as mx_fake_quant); its value is replaced by the
    # GEMM's (y_fwd.detach() + (l - l.detach()): y_fwd exactly, l's gradient).
    dtype = int(x.dtype)
    shape = x.size()
    k = shape[-1]
    x2 = torch.reshape(x, [-1, k])
    xd = torch.detach(x2)
    wd = torch.detach(w)
    xpts = torch.div(torch.to(torch.max(torch.abs(xd)), 6), 2688.0)
    wpts = torch.div(torch.to(torch.max(torch.abs(wd)), 6), 2688.0)
    xv, xs = self.nvfp4_blocks(xd, xpts)
    wv, ws = self.nvfp4_blocks(wd, wpts)
    a = torch.reshape(torch.mul(xv, xs), [-1, k])
    b = torch.reshape(torch.mul(wv, ws), [-1, k])
    y = torch.to(torch.mm(a, torch.t(b)), dtype)
    y = torch.mul(y, torch.to(torch.mul(xpts, wpts), dtype))
    xq = torch.to(torch.reshape(torch.mul(xv, torch.mul(xpts, xs)), [-1, k]), dtype)
    wq = torch.to(torch.reshape(torch.mul(wv, torch.mul(wpts, ws)), [-1, k]), int(w.dtype))
    xst = torch.add(xq, torch.sub(x2, xd))
    wst = torch.add(wq, torch.sub(w, wd))
    l = torch.mm(xst, torch.t(wst))
    out = torch.add(torch.detach(y), torch.sub(l, torch.detach(l)))
    out_shape = shape[:-1] + [w.size(0)]
    return torch.reshape(out, out_shape)
