# jtune's TorchScript kernel library: the libtorch operations that DJL's Java API does not expose.
#
# This file is compiled by libtorch at run time (see TorchScriptArchive / ScriptModule), in the dialect
# of serialized TorchScript code: a class with `training : bool`, methods whose first parameter is
# `self: __torch__.Ops`, every argument annotated. Gradients flow through every method.
# bf16 enters and leaves libtorch only through `cast` (fp32 <-> bf16 is exact in that direction); a
# reinterpreting view is not reachable from serialized TorchScript (view(int) resolves to view(size)).
# Results join the DJL manager of the first tensor argument, so activations come before weights.
# Dtype codes (torch ScalarType): 0 uint8, 1 int8, 3 int32, 4 int64, 5 float16, 6 float32, 15 bfloat16.
class Ops(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool

  # ---- dtypes -------------------------------------------------------------------------------------
  def cast(self: __torch__.Ops, x: Tensor, dtype: int) -> Tensor:
    return torch.to(x, dtype)

  def dtype_code(self: __torch__.Ops, x: Tensor) -> int:
    return int(x.dtype)

  # ---- embedding ----------------------------------------------------------------------------------
  def embedding(self: __torch__.Ops, ids: Tensor, weight: Tensor) -> Tensor:
    return torch.embedding(weight, ids)

  # ---- RMSNorm, as transformers' LlamaRMSNorm: normalise in fp32, scale in the input dtype ---------
  def rms_norm(self: __torch__.Ops, x: Tensor, weight: Tensor, eps: float) -> Tensor:
    h = torch.to(x, 6)
    variance = torch.mean(torch.pow(h, 2), [-1], True)
    h = torch.mul(h, torch.rsqrt(torch.add(variance, eps)))
    return torch.mul(weight, torch.to(h, x.dtype))

  # ---- Gemma's RMSNorm: normalise and scale by (1 + weight) in fp32, then cast (Gemma2RMSNorm) ----------
  def rms_norm_gemma(self: __torch__.Ops, x: Tensor, weight: Tensor, eps: float) -> Tensor:
    h = torch.to(x, 6)
    variance = torch.mean(torch.pow(h, 2), [-1], True)
    h = torch.mul(h, torch.rsqrt(torch.add(variance, eps)))
    h = torch.mul(h, torch.add(torch.to(weight, 6), 1.0))
    return torch.to(h, x.dtype)

  # ---- embeddings scaled by sqrt(hidden) in the weight's dtype (Gemma's ScaledWordEmbedding) -----------
  def embedding_scaled(self: __torch__.Ops, ids: Tensor, weight: Tensor, scale: float) -> Tensor:
    factor = torch.to(torch.full([1], scale, dtype=6, device=weight.device), weight.dtype)
    return torch.mul(torch.embedding(weight, ids), torch.reshape(factor, [1]))

  # ---- soft-capping: cap * tanh(x / cap), op by op in x's dtype as transformers (Gemma 2's logits) -------
  def softcap(self: __torch__.Ops, x: Tensor, cap: float) -> Tensor:
    return torch.mul(torch.tanh(torch.div(x, cap)), cap)

  # ---- rotary embedding ---------------------------------------------------------------------------
  def rope_inv_freq(self: __torch__.Ops, even: Tensor, dim: int, base: float) -> Tensor:
    # transformers' _compute_default_rope_parameters, in fp32; even = arange(0, dim, 2).
    exponent = torch.div(torch.to(even, 6), dim)
    return torch.reciprocal(torch.pow(base, exponent))

  def rope_llama3(self: __torch__.Ops, inv_freq: Tensor, factor: float, low_freq_factor: float,
                  high_freq_factor: float, old_context_len: float) -> Tensor:
    # transformers' _compute_llama3_parameters.
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = torch.div(2.0 * 3.141592653589793, inv_freq)
    inv_freq_llama = torch.where(torch.gt(wavelen, low_freq_wavelen), torch.div(inv_freq, factor), inv_freq)
    smooth = torch.div(torch.sub(torch.div(old_context_len, wavelen), low_freq_factor),
                       high_freq_factor - low_freq_factor)
    smoothed = torch.add(torch.div(torch.mul(torch.rsub(smooth, 1.0), inv_freq_llama), factor),
                         torch.mul(smooth, inv_freq_llama))
    is_medium = torch.logical_and(torch.logical_not(torch.lt(wavelen, high_freq_wavelen)),
                                  torch.logical_not(torch.gt(wavelen, low_freq_wavelen)))
    return torch.where(is_medium, smoothed, inv_freq_llama)

  def rope_cos_sin(self: __torch__.Ops, position_ids: Tensor, inv_freq: Tensor, scaling: float,
                   dtype: int) -> List[Tensor]:
    # position_ids [B,T] -> cos, sin [B,T,D] in `dtype`, as transformers' LlamaRotaryEmbedding.
    freqs = torch.mul(torch.unsqueeze(torch.to(position_ids, 6), -1), torch.to(inv_freq, 6))
    emb = torch.cat([freqs, freqs], -1)
    cos = torch.mul(torch.cos(emb), scaling)
    sin = torch.mul(torch.sin(emb), scaling)
    return [torch.to(cos, dtype), torch.to(sin, dtype)]

  def rope(self: __torch__.Ops, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    # x [B,H,T,D]; cos, sin [B,T,R] with R <= D. rotate_half convention (first half, second half) on the first R
    # features; the rest pass unrotated (partial rotary, Phi-3's partial_rotary_factor < 1).
    rotary = cos.size(-1)
    if rotary < x.size(-1):
      rotated = self.rope_full(torch.narrow(x, -1, 0, rotary), cos, sin)
      return torch.cat([rotated, torch.narrow(x, -1, rotary, x.size(-1) - rotary)], -1)
    return self.rope_full(x, cos, sin)

  def rope_full(self: __torch__.Ops, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    half = x.size(-1) // 2
    x1 = torch.narrow(x, -1, 0, half)
    x2 = torch.narrow(x, -1, half, x.size(-1) - half)
    rotated = torch.cat([torch.neg(x2), x1], -1)
    return torch.add(torch.mul(x, torch.unsqueeze(cos, 1)), torch.mul(rotated, torch.unsqueeze(sin, 1)))

  def rope_inv_freq_scaled(self: __torch__.Ops, even: Tensor, dim: int, base: float, factors: Tensor) -> Tensor:
    # transformers' _compute_longrope_parameters: 1 / (ext_factors * base^(2i/dim)), fp32.
    exponent = torch.div(torch.to(even, 6), dim)
    return torch.reciprocal(torch.mul(torch.to(factors, 6), torch.pow(base, exponent)))

  # ---- attention ----------------------------------------------------------------------------------
  def repeat_kv(self: __torch__.Ops, x: Tensor, n_rep: int) -> Tensor:
    if n_rep == 1:
      return x
    return torch.repeat_interleave(x, n_rep, 1)

  def attention_causal(self: __torch__.Ops, q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
    # q [B,H,T,D]; k, v [B,KV,T,D] with H a multiple of KV (grouped-query attention).
    if self.flash_eligible(q):
      # No mask, so SDPA may dispatch to flash attention, which reads grouped k/v heads without copies.
      return torch.scaled_dot_product_attention(q, k, v, None, 0.0, True, scale=scale, enable_gqa=True)
    n_rep = q.size(1) // k.size(1)
    k = self.repeat_kv(k, n_rep)
    v = self.repeat_kv(v, n_rep)
    return torch.scaled_dot_product_attention(q, k, v, None, 0.0, True, scale=scale)

  def attention_segments(self: __torch__.Ops, q: Tensor, k: Tensor, v: Tensor, segment_ids: Tensor,
                         scale: float) -> Tensor:
    # Causal attention in which token i sees token j only if segment_ids[b,i] == segment_ids[b,j]:
    # samples packed into one row stay isolated. segment_ids [B,T] int64. On CUDA in fp16/bf16 the rows
    # go through flash attention's variable-length form instead of a [B,1,T,T] mask.
    if self.flash_eligible(q):
      return self.attention_segments_varlen(q, k, v, segment_ids, scale, True)
    n_rep = q.size(1) // k.size(1)
    k = self.repeat_kv(k, n_rep)
    v = self.repeat_kv(v, n_rep)
    t = q.size(2)
    same = torch.eq(torch.unsqueeze(segment_ids, 2), torch.unsqueeze(segment_ids, 1))
    causal = torch.tril(torch.ones([t, t], dtype=11, device=q.device))
    mask = torch.unsqueeze(torch.logical_and(same, causal), 1)
    return torch.scaled_dot_product_attention(q, k, v, mask, 0.0, False, scale=scale)

  def attention_bidirectional(self: __torch__.Ops, q: Tensor, k: Tensor, v: Tensor, segment_ids: Tensor,
                              scale: float) -> Tensor:
    # Token i sees every token j with segment_ids[b,i] == segment_ids[b,j], before or after it (no causal mask):
    # the diffusion objective's attention. segment_ids [B,T] int64.
    n_rep = q.size(1) // k.size(1)
    k = self.repeat_kv(k, n_rep)
    v = self.repeat_kv(v, n_rep)
    mask = torch.unsqueeze(torch.eq(torch.unsqueeze(segment_ids, 2), torch.unsqueeze(segment_ids, 1)), 1)
    return torch.scaled_dot_product_attention(q, k, v, mask, 0.0, False, scale=scale)

  # ---- CUDA: flash attention ----------------------------------------------------------------------
  def flash_eligible(self: __torch__.Ops, q: Tensor) -> bool:
    # What libtorch's flash kernels take (sdp_utils check_flash_attention_*): CUDA, fp16 or bf16, head_dim a
    # multiple of 8 up to 256. Everything else, and every CPU tensor, keeps the mask paths above unchanged.
    if not q.is_cuda:
      return False
    code = int(q.dtype)
    d = q.size(-1)
    return (code == 5 or code == 15) and d % 8 == 0 and d <= 256

  def cu_seqlens_from_segments(self: __torch__.Ops, segment_ids: Tensor) -> Tensor:
    # segment_ids [B,T] -> int32 [n+1]: the B rows laid end to end as one sequence of B*T tokens, cut where a
    # row starts or the id changes; cu[0] = 0, cu[n] = B*T. Assumes equal ids are contiguous within a row
    # (Batch.packed gives every sample, and the padding tail, its own run).
    b = segment_ids.size(0)
    t = segment_ids.size(1)
    change = torch.ne(torch.narrow(segment_ids, 1, 1, t - 1), torch.narrow(segment_ids, 1, 0, t - 1))
    first = torch.ones([b, 1], dtype=11, device=segment_ids.device)
    starts = torch.reshape(torch.cat([first, change], 1), [-1])
    index = torch.reshape(torch.nonzero(starts), [-1])
    end = torch.full([1], b * t, dtype=4, device=segment_ids.device)
    return torch.to(torch.cat([index, end], 0), 3)

  def to_tokens(self: __torch__.Ops, x: Tensor) -> Tensor:
    # [B,H,T,D] -> [B*T,H,D], the varlen layout (contiguous).
    return torch.reshape(torch.transpose(x, 1, 2), [-1, x.size(1), x.size(3)])

  def from_tokens(self: __torch__.Ops, x: Tensor, b: int, t: int) -> Tensor:
    # [B*T,H,D] -> [B,H,T,D]
    return torch.transpose(torch.reshape(x, [b, t, x.size(1), x.size(2)]), 1, 2)

  def varlen_flash(self: __torch__.Ops, q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, max_seqlen: int,
                   scale: float) -> Tensor:
    # aten::_flash_attention_forward (libtorch 2.7.1 schema: query, key, value, cum_seq_q, cum_seq_k, max_q,
    # max_k, dropout_p, is_causal, return_debug_mask, *, scale, ...) -> (output, logsumexp, rng_state, unused,
    # debug_attn_mask). Autograd: FlashAttentionBackward0 (derivatives.yaml -> _flash_attention_backward).
    # CUDA-only: on CPU tensors it raises (no CPU kernel is registered).
    out = torch._flash_attention_forward(q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, 0.0,
                                          True, False, scale=scale)
    return out[0]

  def varlen_loop(self: __torch__.Ops, q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, scale: float) -> Tensor:
    # The same contract as varlen_flash, one causal SDPA per sequence: runs anywhere (the CPU emulation).
    outs = annotate(List[Tensor], [])
    for i in range(cu_seqlens.size(0) - 1):
      start = int(torch.select(cu_seqlens, 0, i))
      length = int(torch.select(cu_seqlens, 0, i + 1)) - start
      qi = torch.transpose(torch.narrow(q, 0, start, length), 0, 1)
      ki = torch.transpose(torch.narrow(k, 0, start, length), 0, 1)
      vi = torch.transpose(torch.narrow(v, 0, start, length), 0, 1)
      oi = torch.scaled_dot_product_attention(qi, ki, vi, None, 0.0, True, scale=scale)
      outs.append(torch.transpose(oi, 0, 1))
    return torch.cat(outs, 0)

  def attention_segments_varlen(self: __torch__.Ops, q: Tensor, k: Tensor, v: Tensor, segment_ids: Tensor,
                                scale: float, flash: bool) -> Tensor:
    # attention_segments through the variable-length layout: rows flattened into one token sequence cut at
    # cu_seqlens (computed on q's device), attended by flash attention or, with flash=False, per sequence.
    b = q.size(0)
    t = q.size(2)
    n_rep = q.size(1) // k.size(1)
    qt = self.to_tokens(q)
    kt = self.to_tokens(self.repeat_kv(k, n_rep))
    vt = self.to_tokens(self.repeat_kv(v, n_rep))
    cu = self.cu_seqlens_from_segments(segment_ids)
    if flash:
      n = cu.size(0) - 1
      max_seqlen = int(torch.max(torch.sub(torch.narrow(cu, 0, 1, n), torch.narrow(cu, 0, 0, n))))
      out = self.varlen_flash(qt, kt, vt, cu, max_seqlen, scale)
    else:
      out = self.varlen_loop(qt, kt, vt, cu, scale)
    return self.from_tokens(out, b, t)

  # ---- generation with a key/value cache -----------------------------------------------------------
  def attention_with_past(self: __torch__.Ops, q: Tensor, k: Tensor, v: Tensor, length: int,
                          scale: float) -> Tensor:
    # q [B,H,Tn,D] holds the newest Tn tokens at absolute positions length-Tn .. length-1; k, v
    # [B,KV,Tmax,D] hold every token so far in their first `length` slots (a preallocated cache may be
    # longer). Query i sees keys 0 .. length-Tn+i: the whole past plus the new tokens causally. SDPA's
    # is_causal aligns its mask top-left when Tq != Tk, which would hide the past, so the mask is explicit
    # (tril with the offset as diagonal); a single new token sees everything and needs no mask.
    n_rep = q.size(1) // k.size(1)
    k = self.repeat_kv(torch.narrow(k, 2, 0, length), n_rep)
    v = self.repeat_kv(torch.narrow(v, 2, 0, length), n_rep)
    t_new = q.size(2)
    if t_new == 1:
      return torch.scaled_dot_product_attention(q, k, v, None, 0.0, False, scale=scale)
    visible = torch.tril(torch.ones([t_new, length], dtype=11, device=q.device), length - t_new)
    return torch.scaled_dot_product_attention(q, k, v, visible, 0.0, False, scale=scale)

  # ---- sliding-window attention (Mistral's sliding_window) -------------------------------------------
  def window_visible(self: __torch__.Ops, q: Tensor, length: int, window: int) -> Tensor:
    # [Tn, length] bool: query i, at absolute position length-Tn+i, sees key j when 0 <= pos_i - j < window
    # (transformers' sliding_window_overlay: kv_idx > q_idx - sliding_window, with the causal mask).
    t_new = q.size(2)
    qpos = torch.unsqueeze(torch.arange(length - t_new, length, dtype=4, device=q.device), 1)
    kpos = torch.unsqueeze(torch.arange(0, length, dtype=4, device=q.device), 0)
    diff = torch.sub(qpos, kpos)
    return torch.logical_and(torch.ge(diff, 0), torch.lt(diff, window))

  def attention_window(self: __torch__.Ops, q: Tensor, k: Tensor, v: Tensor, length: int, window: int,
                       scale: float) -> Tensor:
    # attention_with_past (and, with length = T, attention_causal) limited to the last `window` keys.
    n_rep = q.size(1) // k.size(1)
    k = self.repeat_kv(torch.narrow(k, 2, 0, length), n_rep)
    v = self.repeat_kv(torch.narrow(v, 2, 0, length), n_rep)
    visible = self.window_visible(q, length, window)
    return torch.scaled_dot_product_attention(q, k, v, visible, 0.0, False, scale=scale)

  def attention_window_segments(self: __torch__.Ops, q: Tensor, k: Tensor, v: Tensor, segment_ids: Tensor,
                                window: int, scale: float) -> Tensor:
    # attention_segments limited to the last `window` keys: the window and the packed samples' isolation together.
    n_rep = q.size(1) // k.size(1)
    k = self.repeat_kv(k, n_rep)
    v = self.repeat_kv(v, n_rep)
    same = torch.eq(torch.unsqueeze(segment_ids, 2), torch.unsqueeze(segment_ids, 1))
    visible = self.window_visible(q, q.size(2), window)
    mask = torch.unsqueeze(torch.logical_and(same, visible), 1)
    return torch.scaled_dot_product_attention(q, k, v, mask, 0.0, False, scale=scale)

  # ---- eager attention with logit soft-capping (Gemma 2) -----------------------------------------------
  def visible(self: __torch__.Ops, q: Tensor, segment_ids: Tensor, packed: bool, length: int,
              window: int) -> Tensor:
    # [B or 1, 1, Tn, length] bool: the newest Tn queries (positions length-Tn ..) see earlier keys causally,
    # within `window` keys when window > 0, and only their own sample when packed (then Tn == length).
    t_new = q.size(2)
    qpos = torch.unsqueeze(torch.arange(length - t_new, length, dtype=4, device=q.device), 1)
    kpos = torch.unsqueeze(torch.arange(0, length, dtype=4, device=q.device), 0)
    diff = torch.sub(qpos, kpos)
    seen = torch.ge(diff, 0)
    if window > 0:
      seen = torch.logical_and(seen, torch.lt(diff, window))
    seen = torch.unsqueeze(torch.unsqueeze(seen, 0), 0)
    if packed:
      same = torch.eq(torch.unsqueeze(segment_ids, 2), torch.unsqueeze(segment_ids, 1))
      seen = torch.logical_and(seen, torch.unsqueeze(same, 1))
    return seen

  def attention_capped(self: __torch__.Ops, q: Tensor, k: Tensor, v: Tensor, segment_ids: Tensor, packed: bool,
                       length: int, window: int, scale: float, softcap: float) -> Tensor:
    # transformers' Gemma2 eager_attention_forward: scores = q k^T * scale in the compute dtype, soft-capped
    # (cap * tanh(s / cap)), hidden keys at the dtype's minimum, softmax in fp32 cast back, times v.
    # k, v hold at least `length` tokens (a KV cache may be longer); segment_ids is read only when packed.
    n_rep = q.size(1) // k.size(1)
    k = self.repeat_kv(torch.narrow(k, 2, 0, length), n_rep)
    v = self.repeat_kv(torch.narrow(v, 2, 0, length), n_rep)
    scores = torch.mul(torch.matmul(q, torch.transpose(k, 2, 3)), scale)
    if softcap > 0.0:
      scores = self.softcap(scores, softcap)
    seen = self.visible(q, segment_ids, packed, length, window)
    # -3e38: the fp32/bf16 range's end (fp16 rounds it to -inf); exp of it is 0 as with finfo.min.
    lowest = torch.to(torch.full([1], -3.0e38, dtype=6, device=q.device), scores.dtype)
    scores = torch.where(seen, scores, lowest)
    weights = torch.to(torch.softmax(scores, -1, 6), q.dtype)
    return torch.matmul(weights, v)

  def kv_cache_write(self: __torch__.Ops, cache: Tensor, new: Tensor, start: int) -> int:
    # Copies new [B,KV,Tn,D] into cache [B,KV,Tmax,D] at slots start .. start+Tn-1, in place; returns
    # the filled length. Detached: the cache never holds an autograd graph.
    torch.narrow(cache, 2, start, new.size(2)).copy_(torch.detach(new))
    return start + new.size(2)

  def kv_cache_alloc(self: __torch__.Ops, anchor: Tensor, batch: int, kv_heads: int, capacity: int,
                     head_dim: int, dtype: int) -> Tensor:
    # Zeros [batch,kv_heads,capacity,head_dim] in `dtype` (bf16 cannot be made from DJL), on anchor's
    # device; anchor only says where the result goes (its DJL manager and device).
    return torch.zeros([batch, kv_heads, capacity, head_dim], dtype=dtype, device=anchor.device)

  def segments_from_cu_seqlens(self: __torch__.Ops, cu_seqlens: Tensor, total: int) -> Tensor:
    # cu_seqlens [n+1] (0, l0, l0+l1, ...) -> segment id per token [total]; tokens past the last
    # boundary (padding) form one more segment.
    positions = torch.arange(0, total, device=cu_seqlens.device)
    return torch.searchsorted(torch.to(torch.narrow(cu_seqlens, 0, 1, cu_seqlens.size(0) - 1), 4), positions,
                              right=True)

  # ---- fused projections (Phi-3's qkv_proj, gate_up_proj) ---------------------------------------------
  def split_last(self: __torch__.Ops, x: Tensor, sizes: List[int]) -> List[Tensor]:
    return torch.split_with_sizes(x, sizes, -1)

  # ---- MLP ----------------------------------------------------------------------------------------
  def swiglu(self: __torch__.Ops, gate: Tensor, up: Tensor) -> Tensor:
    return torch.mul(torch.silu(gate), up)

  def geglu_tanh(self: __torch__.Ops, gate: Tensor, up: Tensor) -> Tensor:
    # Gemma's act(gate) * up with hidden_activation gelu_pytorch_tanh.
    return torch.mul(torch.gelu(gate, approximate="tanh"), up)

  # ---- loss ---------------------------------------------------------------------------------------
  def token_nll(self: __torch__.Ops, logits: Tensor, labels: Tensor) -> Tensor:
    # logits [N,V] (any float dtype, upcast to fp32 as transformers' loss does); labels [N] int64 where
    # -100 means ignore. Returns fp32 [N]: -log softmax(logits)[label], 0 where ignored.
    x = torch.to(logits, 6)
    valid = torch.ne(labels, -100)
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    target = torch.squeeze(torch.gather(x, -1, torch.unsqueeze(safe, -1)), -1)
    nll = torch.sub(torch.logsumexp(x, [-1]), target)
    return torch.where(valid, nll, torch.zeros_like(nll))

  def cross_entropy_sum(self: __torch__.Ops, logits: Tensor, labels: Tensor) -> List[Tensor]:
    # [sum of token NLL over non-ignored labels (fp32 scalar), number of non-ignored labels (int64)]
    nll = self.token_nll(logits, labels)
    return [torch.sum(nll), torch.sum(torch.ne(labels, -100))]

  def eaft_nll_sum(self: __torch__.Ops, logits: Tensor, labels: Tensor, alpha: float, k: int) -> List[Tensor]:
    # Axolotl's eaft_loss (monkeypatch/loss/eaft.py @067b021): each token's NLL times H^alpha, H the entropy of
    # the softmax over the fp32 top-k logits, computed without gradient (detached). [weighted sum (fp32 scalar),
    # number of non-ignored labels (int64)]; ignored tokens contribute 0 whatever their weight.
    nll = self.token_nll(logits, labels)
    x = torch.detach(torch.to(logits, 6))
    top, idx = torch.topk(x, min(k, x.size(-1)))
    p = torch.softmax(top, -1, 6)
    entropy = torch.neg(torch.sum(torch.mul(p, torch.log(torch.add(p, 1e-10))), [-1]))
    weights = torch.pow(entropy, alpha)
    return [torch.sum(torch.mul(nll, weights)), torch.sum(torch.ne(labels, -100))]
