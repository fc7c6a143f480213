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
