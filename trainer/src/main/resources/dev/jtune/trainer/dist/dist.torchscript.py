# jtune's kernels for the collectives: contiguity, and the copy back into a non-contiguous tensor.
#
# Compiled like the model's kernels (see dev.jtune.model.engine.ScriptModule). Collectives read and write a
# contiguous tensor's memory in place (its address: dev.jtune.model.engine.Torch.dataAddress; TorchScript has no
# data_ptr); a non-contiguous one goes through `contiguous` and `copy_`.
class Ops(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool

  def is_contiguous(self: __torch__.Ops, x: Tensor) -> int:
    return int(x.is_contiguous())

  def contiguous(self: __torch__.Ops, x: Tensor) -> Tensor:
    return torch.clone(torch.detach(x), memory_format=0)

  def copy_(self: __torch__.Ops, dst: Tensor, src: Tensor) -> int:
    dst.copy_(src)
    return 0
