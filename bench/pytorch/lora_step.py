"""Plain-PyTorch eager reference for jtune's train-step benchmark.

The same Llama decoder (RMSNorm, rotary embeddings, grouped-query SDPA attention, SwiGLU), the same LoRA
(PEFT's formula: base(x) + B(A(dropout(x))) * alpha/r on every linear layer of the decoder) and the same
optimizer (torch.optim.AdamW over the adapter weights, fp32), written without transformers or PEFT so that
the comparison measures the engines, not the libraries. QLoRA mode keeps the frozen base as NF4 codes
(two per byte, first in the high nibble, absmax per 64 values, the absmax itself 8-bit quantized per 256
with a mean offset) and dequantizes each linear's weight on every forward, as bitsandbytes does on CPU.

Prints one JSON line: {"mode", "params", "tokens_per_step", "steps", "seconds", "tokens_per_s"}.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F

NF4 = torch.tensor([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
                    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0])


def dynamic_map():
    # bitsandbytes functional.create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8).
    data = []
    for i in range(7):
        boundaries = torch.linspace(0.1, 1, 2 ** i + 1)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-6 + i)) * means).tolist()
        data += (-(10 ** (-6 + i)) * means).tolist()
    data += [0.0, 1.0]
    return torch.tensor(sorted(data))


class Nf4Weight:
    """Frozen NF4 weight with double-quantized absmax; dequantize() gives the dense weight."""

    def __init__(self, w, dtype):
        flat = w.float().flatten()
        blocks = flat.view(-1, 64)
        absmax = blocks.abs().max(dim=1).values
        scaled = blocks / absmax.clamp_min(1e-12)[:, None]
        codes = (scaled[..., None] - NF4).abs().argmin(-1).to(torch.uint8).flatten()
        self.packed = (codes[0::2] << 4) | codes[1::2]
        self.offset = absmax.mean()
        amx = (absmax - self.offset).view(-1, 256) if absmax.numel() % 256 == 0 else (absmax - self.offset)[None]
        self.nested_absmax = amx.abs().max(dim=-1).values
        self.dmap = dynamic_map()
        self.absmax_codes = ((amx / self.nested_absmax[:, None])[..., None] - self.dmap).abs().argmin(-1) \
            .to(torch.uint8).flatten()
        self.shape = w.shape
        self.dtype = dtype
        self.table = NF4.to(dtype)

    def dequantize(self):
        nb = self.absmax_codes.numel()
        absmax = (self.dmap[self.absmax_codes.long()].view(self.nested_absmax.numel(), -1)
                  * self.nested_absmax[:, None]).flatten()[:nb] + self.offset
        hi = (self.packed >> 4).long()
        lo = (self.packed & 15).long()
        codes = torch.stack([hi, lo], dim=1).flatten()
        vals = self.table[codes].view(-1, 64) * absmax.to(self.dtype)[:, None]
        return vals.view(self.shape)


class LoraLinear(torch.nn.Module):
    def __init__(self, weight, r, alpha, dropout, qlora, dtype):
        super().__init__()
        out_f, in_f = weight.shape
        self.base = Nf4Weight(weight, dtype) if qlora else None
        self.weight = None if qlora else weight.to(dtype).requires_grad_(False)
        self.lora_A = torch.nn.Parameter(torch.empty(r, in_f))
        torch.nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_B = torch.nn.Parameter(torch.zeros(out_f, r))
        self.scaling = alpha / r
        self.dropout = dropout

    def forward(self, x):
        w = self.base.dequantize() if self.base is not None else self.weight
        result = F.linear(x, w)
        h = F.dropout(x.float(), self.dropout, self.training)
        return result + (F.linear(F.linear(h, self.lora_A), self.lora_B) * self.scaling).to(x.dtype)


def rms_norm(x, w, eps):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Model(torch.nn.Module):
    def __init__(self, cfg, mode, r, alpha, dropout, dtype):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        e, ff, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
        self.h, self.kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.d = e // self.h
        self.eps = 1e-5
        self.dtype = dtype
        lin = lambda o, i: LoraLinear(torch.randn(o, i, generator=g) * 0.02, r, alpha, dropout, mode == "qlora", dtype)
        self.embed = (torch.randn(v, e, generator=g) * 0.02).to(dtype)
        self.layers = torch.nn.ModuleList()
        for _ in range(cfg["num_hidden_layers"]):
            layer = torch.nn.Module()
            layer.q, layer.k, layer.v = lin(self.h * self.d, e), lin(self.kv * self.d, e), lin(self.kv * self.d, e)
            layer.o = lin(e, self.h * self.d)
            layer.gate, layer.up, layer.down = lin(ff, e), lin(ff, e), lin(e, ff)
            layer.n1 = torch.ones(e, dtype=dtype)
            layer.n2 = torch.ones(e, dtype=dtype)
            self.layers.append(layer)
        self.norm = torch.ones(e, dtype=dtype)
        self.head = (torch.randn(v, e, generator=g) * 0.02).to(dtype)
        inv = 1.0 / (10000.0 ** (torch.arange(0, self.d, 2).float() / self.d))
        self.inv_freq = inv

    def forward(self, ids):
        b, t = ids.shape
        pos = torch.arange(t).float()
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(self.dtype), emb.sin().to(self.dtype)
        x = F.embedding(ids, self.embed)
        for L in self.layers:
            h = rms_norm(x, L.n1, self.eps)
            q = L.q(h).view(b, t, self.h, self.d).transpose(1, 2)
            k = L.k(h).view(b, t, self.kv, self.d).transpose(1, 2)
            v = L.v(h).view(b, t, self.kv, self.d).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            rep = self.h // self.kv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + L.o(a.transpose(1, 2).reshape(b, t, -1))
            h = rms_norm(x, L.n2, self.eps)
            x = x + L.down(F.silu(L.gate(h)) * L.up(h))
        return F.linear(rms_norm(x, self.norm, self.eps), self.head)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True, help="model config JSON (Hugging Face config.json keys)")
    p.add_argument("--mode", choices=["lora", "qlora"], default="lora")
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--profile-out", default=None, help="after the timed steps, record one more with torch.profiler "
                   "into this Chrome trace (bench/pytorch/profile_summary.py reads it)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = json.load(open(a.config))
    dtype = torch.float32 if a.dtype == "fp32" else torch.bfloat16
    torch.manual_seed(0)
    model = Model(cfg, a.mode, r=16, alpha=32, dropout=0.0, dtype=dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    ids = torch.randint(0, cfg["vocab_size"], (a.batch, a.seq))
    labels = ids.clone()

    def step():
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    if a.profile_out:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
            step()
        prof.export_chrome_trace(a.profile_out)
    n_params = sum(p.numel() for p in params) + sum(
        (L.numel() if isinstance(L, torch.Tensor) else 0) for L in [model.embed, model.head])
    tokens = a.batch * a.seq
    print(json.dumps({"engine": "pytorch-" + torch.__version__, "mode": a.mode, "dtype": a.dtype,
                      "threads": torch.get_num_threads(), "tokens_per_step": tokens, "steps": a.steps,
                      "seconds": round(dt, 3), "tokens_per_s": round(tokens * a.steps / dt, 1),
                      # ru_maxrss is in KiB on Linux: the process-wide peak, as VmHWM.
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main()
