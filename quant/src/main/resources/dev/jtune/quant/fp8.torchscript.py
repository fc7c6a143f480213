# fp8 training (Axolotl's fp8: true) for jtune's quant module, compiled by libtorch at run time (see
# dev.jtune.model.engine.ScriptModule; same dialect as qat.torchscript.py: serialized TorchScript, every argument
# annotated). Transcribes torchao v0.18.0 (5f2baf9d) Float8Linear with Float8LinearConfig's defaults (the "tensorwise"
# recipe, which Axolotl 067b021 builds in core/trainers/base.py additional_accelerator_args) and emulate=True, op for
# op and in the same dtypes:
#   torchao/float8/float8_utils.py            tensor_to_amax (tensorwise), amax_to_scale, to_fp8_saturated
#   torchao/float8/float8_training_tensor.py  _ToFloat8ConstrFunc.forward (tensor.to(float32) * scale, saturated cast)
#   torchao/float8/float8_ops.py              float8_mm's emulate branch: mm(a._data.float() / a._scale,
#                                             b._data.float() / b._scale).to(a._orig_dtype)
#   torchao/float8/float8_linear.py           matmul_with_hp_or_float8_args: forward input and weight in e4m3;
#                                             backward grad_output in e5m2, grad_input = go @ w, grad_weight = go^T @ x
# Every tensor is scaled by its own dynamic per-tensor scale fp8_max / max(amax, 1e-12) (amax in the tensor's dtype,
# the division in float64: `finfo.max / tensor` is Tensor.__rtruediv__, reciprocal() * max), then fp32.
# tools/reference/fp8_expected.py runs torchao's own code; its fixture is matched bit for bit (Fp8FixtureTest).
# Dtype codes (torch ScalarType): 6 float32, 7 float64, 23 float8_e5m2, 24 float8_e4m3fn.
class Fp8Ops(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool

  def scale(self: __torch__.Fp8Ops, t: Tensor, fp8_max: float) -> Tensor:
    # tensor_to_amax: max(abs(t)) in t's dtype; amax_to_scale: float64, max / clamp(amax, EPS), then float32.
    amax = torch.to(torch.max(torch.abs(torch.detach(t))), 7)
    return torch.to(torch.mul(torch.reciprocal(torch.clamp(amax, 1e-12)), fp8_max), 6)

  def dequantized(self: __torch__.Fp8Ops, t: Tensor, code: int, fp8_max: float) -> Tensor:
    # The fp32 operand the emulated GEMM multiplies: to_fp8_saturated(t.to(float32) * scale) then .float() / scale.
    s = self.scale(t, fp8_max)
    bits = torch.to(torch.clamp(torch.mul(torch.to(torch.detach(t), 6), s), -fp8_max, fp8_max), code)
    return torch.div(torch.to(bits, 6), s)

  def forward_mm(self: __torch__.Fp8Ops, x: Tensor, w: Tensor) -> Tensor:
    # The output GEMM for x [..., K], w [N, K]: e4m3 input and weight, fp32 product, rounded once to x's dtype.
    # No autograd (torchao's autograd function; backward is backward_mm).
    k = x.size(-1)
    x2 = torch.reshape(x, [-1, k])
    xq = self.dequantized(x2, 24, 448.0)
    wq = self.dequantized(w, 24, 448.0)
    y = torch.to(torch.mm(xq, torch.t(wq)), int(x.dtype))
    return torch.reshape(y, x.size()[:-1] + [w.size(0)])

  def forward_for_backward(self: __torch__.Fp8Ops, x: Tensor, w: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    # forward_mm's output, with x as [M, K] (a view: backward into it reaches x's graph) and w itself, which
    # matmul_with_hp_or_float8_args saves for backward.
    k = x.size(-1)
    return self.forward_mm(x, w), torch.reshape(x, [-1, k]), w

  def backward_mm(self: __torch__.Fp8Ops, x2: Tensor, w: Tensor, g: Tensor) -> Tuple[Tensor, Tensor]:
    # matmul_with_hp_or_float8_args.backward for x2 [M, K], w [N, K], grad_output g [..., N]: g in e5m2 (one scale
    # for both GEMMs), the weight and the input in e4m3 again (same scales as forward: same tensors);
    # grad_input = go @ w, grad_weight = go^T @ x, each in fp32 and rounded once to g's dtype; the weight's gradient
    # then in w's dtype and the input's in x2's, as autograd casts a gradient to its input's dtype.
    g2 = torch.reshape(g, [-1, g.size(-1)])
    gq = self.dequantized(g2, 23, 57344.0)
    wq = self.dequantized(w, 24, 448.0)
    xq = self.dequantized(x2, 24, 448.0)
    grad_x = torch.to(torch.to(torch.mm(gq, wq), int(g.dtype)), int(x2.dtype))
    grad_w = torch.to(torch.to(torch.mm(torch.t(gq), xq), int(g.dtype)), int(w.dtype))
    return grad_x, grad_w

  def requires_grad(self: __torch__.Fp8Ops, t: Tensor) -> int:
    if t.requires_grad:
      return 1
    return 0
