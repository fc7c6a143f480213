# LLM.int8() for jtune's quant module (load_in_8bit), compiled by libtorch at run time (see
# dev.jtune.model.engine.ScriptModule; same dialect as nf4.torchscript.py: serialized TorchScript, every argument
# annotated). Transcribes what bitsandbytes (main at 95f9af3) does for a frozen Linear8bitLt(has_fp16_weights=False,
# threshold=6.0) in training on CUDA -- autograd/_functions.py MatMul8bitLt, backends/default/ops.py
# int8_vectorwise_quant and int8_mixed_scaled_mm, csrc/kernels.cu kdequant_mm_int32_fp16 -- as
# tools/reference/int8_reference.py does in Python (the fixture's source).
# Dtype codes (torch ScalarType): 1 int8, 3 int32, 5 float16, 6 float32, 7 float64, 11 bool, 15 bfloat16.
class Int8Ops(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool

  def quantize_rows(self: __torch__.Int8Ops, a: Tensor, threshold: float) -> Tuple[Tensor, Tensor, Tensor]:
    # int8_vectorwise_quant(A.to(fp16), threshold): entries with |a| >= threshold are outliers, left out of the row
    # absmax; codes round(a * (127 / absmax)) in fp32 (half to even); every outlier column's codes are 0.
    # Returns (codes int8 [rows, in], absmax fp32 [rows], outlier column mask bool [in]).
    a16 = torch.to(a, 5)
    absa = torch.abs(a16)
    cols = torch.zeros([a16.size(1)], dtype=11, device=a16.device)
    if threshold > 0.:
      outliers = torch.ge(absa, threshold)
      cols = torch.any(outliers, 0)
      absa = torch.masked_fill(absa, outliers, 0.)
    row = torch.to(torch.amax(absa, [1]), 6)
    # torch evaluates the Python `127.0 / row_stats` as `row_stats.reciprocal() * 127.0` (Tensor.__rtruediv__).
    scale = torch.mul(torch.reciprocal(row), 127.)
    # A row without any non-outlier value: codes 0 (CUDA's __float2int_rn(0 * inf) gives 0 as well).
    scale = torch.where(torch.gt(row, 0.), scale, torch.zeros_like(scale))
    codes = torch.to(torch.round(torch.mul(torch.to(a16, 6), torch.unsqueeze(scale, 1))), 1)
    codes = torch.masked_fill(codes, torch.unsqueeze(cols, 0), 0)
    return (codes, row, cols)

  def int_product(self: __torch__.Int8Ops, ca: Tensor, cb: Tensor, int_mm: bool) -> Tensor:
    # The int32 products, exactly: torch._int_mm (int8 x int8 -> int32), or float64, where every partial sum of
    # products |p| <= 127*127 is an integer below 2^53 (fp32 would round past 2^24).
    if int_mm:
      return torch.to(torch._int_mm(ca, torch.t(cb)), 6)
    return torch.to(torch.matmul(torch.to(ca, 7), torch.t(torch.to(cb, 7))), 6)

  def forward_value(self: __torch__.Int8Ops, x: Tensor, cb: Tensor, scb: Tensor, threshold: float,
                    int_mm: bool) -> Tensor:
    # MatMul8bitLt.forward without autograd: [..., in] -> [..., out] in x's dtype.
    shape = x.size()
    a = torch.reshape(torch.detach(x), [-1, shape[-1]])
    q = self.quantize_rows(a, threshold)
    ca = q[0]
    sca = q[1]
    cols = q[2]
    c = self.int_product(ca, cb, int_mm)
    # kdequant_mm_int32_fp16: fp16(fmaf(C * rowStats * colStats, 6.200012e-05f, 0)), then .to(A.dtype).
    out = torch.mul(torch.mul(torch.mul(c, torch.unsqueeze(sca, 1)), torch.unsqueeze(scb, 0)), 6.200012e-05)
    y = torch.to(torch.to(out, 5), x.dtype)
    if bool(torch.any(cols)):
      # The outlier columns in x's dtype against the dequantized weight columns (int8_vectorwise_dequant:
      # CB * SCB * 7.874015718698502e-3 in fp32, cast to x's dtype), added with one rounding (addmm).
      idx = torch.reshape(torch.nonzero(cols), [-1])
      sub_a = torch.index_select(a, 1, idx)
      sub_b = torch.mul(torch.mul(torch.to(torch.index_select(cb, 1, idx), 6), torch.unsqueeze(scb, 1)),
                        7.874015718698502e-3)
      sub_b = torch.to(sub_b, x.dtype)
      y = torch.to(torch.add(torch.to(y, 6), torch.matmul(torch.to(sub_a, 6), torch.t(torch.to(sub_b, 6)))), x.dtype)
    out_shape = torch.list(shape)
    out_shape[-1] = cb.size(0)
    return torch.reshape(y, out_shape)

  def linear(self: __torch__.Int8Ops, x: Tensor, cb: Tensor, scb: Tensor, threshold: float, int_mm: bool) -> Tensor:
    # Without a gradient for x (inference, or a frozen input): the int8 product only.
    return self.forward_value(x, cb, scb, threshold, int_mm)

  def linear_grad(self: __torch__.Int8Ops, x: Tensor, buffer: Tensor, writer: Tensor, cb: Tensor, scb: Tensor,
                  threshold: float, int_mm: bool, fill: bool) -> Tensor:
    # The int8 product's value with MatMul8bitLt.backward's input gradient, grad @ W, W the dequantized weight in
    # x's dtype in `buffer` (written through `writer` when `fill`). y = v + (l - l) is v exactly, and its
    # gradient is linear's.
    if fill:
      self.dequantize_into(writer, cb, scb)
    v = self.forward_value(x, cb, scb, threshold, int_mm)
    l = torch.linear(x, buffer, None)
    return torch.add(v, torch.sub(l, torch.detach(l)))

  def needs_grad(self: __torch__.Int8Ops, x: Tensor) -> int:
    if torch.is_grad_enabled() and x.requires_grad:
      return 1
    return 0

  def weight(self: __torch__.Int8Ops, cb: Tensor, scb: Tensor, dtype: int) -> Tensor:
    # MatMul8bitLt.backward's CB.to(dtype).mul_(SCB.unsqueeze(1).mul(1.0 / 127.0)): fp32 math, one rounding to dtype.
    s = torch.mul(scb, 0.007874015748031496)
    return torch.to(torch.mul(torch.to(cb, 6), torch.unsqueeze(s, 1)), dtype)

  def dequantize_into(self: __torch__.Int8Ops, writer: Tensor, cb: Tensor, scb: Tensor) -> int:
    s = torch.mul(scb, 0.007874015748031496)
    writer.copy_(torch.mul(torch.to(cb, 6), torch.unsqueeze(s, 1)))
    return 0

  def fill(self: __torch__.Int8Ops, writer: Tensor, cb: Tensor, scb: Tensor) -> int:
    return self.dequantize_into(writer, cb, scb)

  def int_mm_works(self: __torch__.Int8Ops, a: Tensor, b: Tensor) -> int:
    # Called once with small int8 operands: raises where this libtorch has no CPU torch._int_mm.
    c = torch._int_mm(a, torch.t(b))
    return int(torch.sum(torch.to(c, 4)))

