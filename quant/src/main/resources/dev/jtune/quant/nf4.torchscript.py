# NF4 dequantization for jtune's quant module, compiled by libtorch at run time (see dev.jtune.model.engine.ScriptModule;
# same dialect as the model module's kernels.torchscript.py: serialized TorchScript, every argument annotated).
#
# The arithmetic transcribes bitsandbytes' torch reference backend (bitsandbytes/backends/default/ops.py,
# _dequantize_blockwise_compute and _dequantize_4bit_compute, main at 95f9af3) and functional.dequantize_4bit's nested
# branch (`absmax = dequantize_blockwise(qabsmax, state2); absmax += offset`): every product and the offset sum are
# single fp32 roundings, then one cast to the output dtype, so the result equals Nf4Quantizer.dequantize bit for bit.
# Dtype codes (torch ScalarType): 0 uint8, 4 int64, 5 float16, 6 float32, 15 bfloat16.
class Nf4Ops(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool

  def absmax(self: __torch__.Nf4Ops, codes: Tensor, nested_absmax: Tensor, nested_map: Tensor, offset: Tensor,
             nested_blocksize: int) -> Tensor:
    # fp32 block scales: nested_map[codes] * nested_absmax[b // nested_blocksize] + offset.
    nb = codes.size(0)
    vals = torch.index_select(nested_map, 0, torch.to(codes, 4))
    blocks = nested_absmax.size(0)
    vals = torch.constant_pad_nd(vals, [0, blocks * nested_blocksize - nb], 0.)
    scaled = torch.mul(torch.reshape(vals, [blocks, nested_blocksize]), torch.unsqueeze(nested_absmax, 1))
    return torch.add(torch.narrow(torch.reshape(scaled, [-1]), 0, 0, nb), offset)

  def pair_map(self: __torch__.Nf4Ops, quant_map: Tensor) -> Tensor:
    # [256, 2] fp32: the values of a packed byte's two codes, high nibble first. Looking bytes up in it reads the
    # packed codes once (int32 indices), instead of splitting nibbles into int64 indices twice the weight's size.
    b = torch.arange(0, 256, dtype=4, device=quant_map.device)
    high = torch.index_select(quant_map, 0, torch.bitwise_right_shift(b, 4))
    low = torch.index_select(quant_map, 0, torch.bitwise_and(b, 15))
    return torch.stack([high, low], 1)

  def weight_fp32(self: __torch__.Nf4Ops, packed: Tensor, codes: Tensor, nested_absmax: Tensor, quant_map: Tensor,
                  nested_map: Tensor, offset: Tensor, blocksize: int, nested_blocksize: int,
                  shape: List[int]) -> Tensor:
    # packed: uint8, two codes a byte, the first element in the high nibble. fp32 [blocks, blocksize] (code value
    # times its block's absmax, one rounding), before the cut to numel and the cast.
    absmax = self.absmax(codes, nested_absmax, nested_map, offset, nested_blocksize)
    vals = torch.reshape(torch.index_select(self.pair_map(quant_map), 0, torch.to(torch.reshape(packed, [-1]), 3)),
                         [-1])
    blocks = absmax.size(0)
    total = blocks * blocksize
    if vals.size(0) < total:
      vals = torch.constant_pad_nd(vals, [0, total - vals.size(0)], 0.)
    elif vals.size(0) > total:
      vals = torch.narrow(vals, 0, 0, total)
    return torch.mul(torch.reshape(vals, [blocks, blocksize]), torch.unsqueeze(absmax, 1))

  def shaped(self: __torch__.Nf4Ops, w: Tensor, shape: List[int]) -> Tensor:
    numel = 1
    for d in shape:
      numel = numel * d
    flat = torch.reshape(w, [-1])
    if flat.size(0) != numel:
      flat = torch.narrow(flat, 0, 0, numel)
    return torch.reshape(flat, shape)

  def weight(self: __torch__.Nf4Ops, packed: Tensor, codes: Tensor, nested_absmax: Tensor, quant_map: Tensor,
             nested_map: Tensor, offset: Tensor, blocksize: int, nested_blocksize: int, shape: List[int],
             dtype: int) -> Tensor:
    w = self.weight_fp32(packed, codes, nested_absmax, quant_map, nested_map, offset, blocksize, nested_blocksize,
                         shape)
    return torch.to(self.shaped(w, shape), dtype)

  def linear(self: __torch__.Nf4Ops, x: Tensor, packed: Tensor, codes: Tensor, nested_absmax: Tensor,
             quant_map: Tensor, nested_map: Tensor, offset: Tensor, blocksize: int, nested_blocksize: int,
             shape: List[int], dtype: int) -> Tensor:
    # bitsandbytes' MatMul4Bit: dequantize to the stored dtype, cast to the input's dtype, x @ W^T. The weight is a
    # constant: only x receives a gradient.
    w = self.weight(packed, codes, nested_absmax, quant_map, nested_map, offset, blocksize, nested_blocksize,
                    shape, dtype)
    return torch.linear(x, torch.to(w, x.dtype), None)

  def writer(self: __torch__.Nf4Ops, buffer: Tensor) -> Tensor:
    # The same memory as `buffer` under a version counter of its own (Tensor.data): writes through it leave
    # `buffer`'s version unchanged, so autograd, which saved `buffer` for a backward, accepts a refill of it.
    return buffer.data

  def dequantize_into(self: __torch__.Nf4Ops, writer: Tensor, packed: Tensor, codes: Tensor, nested_absmax: Tensor,
                      quant_map: Tensor, nested_map: Tensor, offset: Tensor, blocksize: int, nested_blocksize: int,
                      shape: List[int], dtype: int) -> int:
    # copy_ casts while it writes (the same round-to-nearest-even as torch.to): no intermediate in the stored dtype.
    # Writing x.dtype directly equals the stored dtype's cast then x's whenever they agree (the trainer's case).
    w = self.weight_fp32(packed, codes, nested_absmax, quant_map, nested_map, offset, blocksize, nested_blocksize,
                         shape)
    if int(writer.dtype) == dtype or dtype == 6:
      writer.copy_(self.shaped(w, shape))
    else:
      writer.copy_(torch.to(self.shaped(w, shape), dtype))
    return 0

  def linear_shared(self: __torch__.Nf4Ops, x: Tensor, buffer: Tensor, writer: Tensor, packed: Tensor, codes: Tensor,
                    nested_absmax: Tensor, quant_map: Tensor, nested_map: Tensor, offset: Tensor, blocksize: int,
                    nested_blocksize: int, shape: List[int], dtype: int) -> Tensor:
    # linear() with the dequantized weight written into a buffer the same projection of every layer shares (in x's
    # dtype): autograd keeps a reference to the buffer, not a dense weight per layer; the layer's backward finds its
    # own weight there again after dequantize_into (bitsandbytes' MatMul4Bit dequantizes again in backward too).
    self.dequantize_into(writer, packed, codes, nested_absmax, quant_map, nested_map, offset, blocksize,
                         nested_blocksize, shape, dtype)
    return torch.linear(x, buffer, None)

  def buffer(self: __torch__.Nf4Ops, x: Tensor, shape: List[int]) -> Tensor:
    # An uninitialised [out, in] buffer in x's dtype (bf16 cannot be made from DJL) on x's device.
    return torch.empty(shape, dtype=x.dtype, device=x.device)
