# Bytes one decoder layer keeps for backward at TinyLlama-1.1B's shape (bf16, LoRA r16 dropout 0.05 on all seven
# projections), counted with torch.autograd.graph.saved_tensors_hooks (distinct storages, parameters and the layer
# input left out): jtune's op sequence (kernels.torchscript.py and lora.torchscript.py, replayed in eager PyTorch) and
# transformers' LlamaDecoderLayer under PEFT. Issue 14; see bench/README.md ("Scale").
#   python layer_saved.py [SEQ] [new]     new: jtune's LoRA dropout that keeps a bool mask (else torch.dropout)
import torch, sys, collections
torch.manual_seed(0)
T = int(sys.argv[1]) if len(sys.argv) > 1 else 512
NEW = len(sys.argv) > 2
E, F, H, KV, D = 2048, 5632, 32, 4, 64
bf = torch.bfloat16

class Counter:
    def __init__(self, exclude):
        self.seen = {}; self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.by = collections.Counter()
    def pack(self, t):
        p = t.untyped_storage().data_ptr()
        if p not in self.exclude and p not in self.seen:
            self.seen[p] = t.untyped_storage().nbytes()
            self.by[(str(t.dtype), tuple(t.shape))] += t.untyped_storage().nbytes()
        return t
    def total(self): return sum(self.seen.values())

def count(fn, params):
    c = Counter(params)
    with torch.autograd.graph.saved_tensors_hooks(c.pack, lambda t: t):
        out = fn()
    return c, out

def rms(x, w, eps=1e-5):
    h = x.to(torch.float32)
    v = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(v + eps)
    return w * h.to(x.dtype)

def lora_fwd(x, base_w, a, b, p=0.05, scaling=2.0):
    base = torch.nn.functional.linear(x, base_w)
    h = x.to(a.dtype)
    if NEW:
        keep = torch.empty_like(h).bernoulli_(1 - p).to(torch.bool)
        h = (h * keep) * torch.div(torch.ones(1), 1 - p)
    else:
        h = torch.dropout(h, p, True)
    delta = torch.nn.functional.linear(torch.nn.functional.linear(h, a), b) * scaling
    return (base + delta).to(base.dtype)

def rope(x, cos, sin):
    half = x.size(-1) // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos.unsqueeze(1) + rot * sin.unsqueeze(1)

def jtune_layer(x, W, L, cos, sin, seg, mode):
    n = rms(x, W['in'])
    q = lora_fwd(n, W['q'], *L['q']).reshape(1, T, H, D).transpose(1, 2)
    k = lora_fwd(n, W['k'], *L['k']).reshape(1, T, KV, D).transpose(1, 2)
    v = lora_fwd(n, W['v'], *L['v']).reshape(1, T, KV, D).transpose(1, 2)
    q = rope(q, cos, sin); k = rope(k, cos, sin)
    k = k.repeat_interleave(H // KV, 1); v = v.repeat_interleave(H // KV, 1)
    same = seg.unsqueeze(2) == seg.unsqueeze(1)
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    mask = (same & causal).unsqueeze(1)
    with torch.nn.attention.sdpa_kernel(mode):
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v, mask, 0.0, False, scale=D ** -0.5)
    o = lora_fwd(a.transpose(1, 2).reshape(1, T, H * D), W['o'], *L['o'])
    h = x + o
    n2 = rms(h, W['post'])
    g = lora_fwd(n2, W['gate'], *L['gate']); u = lora_fwd(n2, W['up'], *L['up'])
    return h + lora_fwd(torch.nn.functional.silu(g) * u, W['down'], *L['down'])

shapes = dict(q=(H*D, E), k=(KV*D, E), v=(KV*D, E), o=(E, H*D), gate=(F, E), up=(F, E), down=(E, F))
W = {n: torch.randn(*s, dtype=bf) * 0.02 for n, s in shapes.items()}
W['in'] = torch.ones(E, dtype=bf); W['post'] = torch.ones(E, dtype=bf)
L = {n: (torch.randn(16, s[1], requires_grad=True), torch.randn(s[0], 16, requires_grad=True) * 0.01) for n, s in shapes.items()}
L = {n: (a, b.detach().requires_grad_()) for n, (a, b) in L.items()}
params = list(W.values()) + [t for ab in L.values() for t in ab]
pos = torch.arange(T).float()
inv = 1.0 / (10000 ** (torch.arange(0, D, 2).float() / D))
fr = torch.outer(pos, inv); emb = torch.cat([fr, fr], -1)
cos, sin = emb.cos()[None].to(bf), emb.sin()[None].to(bf)
seg = torch.zeros(1, T, dtype=torch.long)
x = torch.randn(1, T, E, dtype=bf, requires_grad=True)
from torch.nn.attention import SDPBackend
for mode in (SDPBackend.FLASH_ATTENTION,):  # what libtorch 2.7.1 picks on CPU here (bench/activations.sh)
    c, out = count(lambda: jtune_layer(x, W, L, cos, sin, seg, mode), params + [x])
    print(f"jtune replica T={T} sdpa={mode.name}: {c.total()/2**20:.1f} MiB saved; grad_fn {out.grad_fn}")
    if mode == SDPBackend.FLASH_ATTENTION:
        for k_, v_ in sorted(c.by.items(), key=lambda kv: -kv[1])[:40]:
            print(f"   {v_/2**20:7.2f} MiB  {k_}")

# transformers + PEFT: one LlamaDecoderLayer, bf16, LoRA r16 all-linear, default sdpa attention
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding
from peft import LoraConfig, get_peft_model
cfg = LlamaConfig(hidden_size=E, intermediate_size=F, num_attention_heads=H, num_key_value_heads=KV, num_hidden_layers=1,
                  vocab_size=32000, torch_dtype=bf, attn_implementation="sdpa")
cfg._attn_implementation = "sdpa"
class Wrap(torch.nn.Module):
    def __init__(s):
        super().__init__(); s.layer = LlamaDecoderLayer(cfg, 0).to(bf); s.rot = LlamaRotaryEmbedding(cfg)
    def forward(s, x):
        p = torch.arange(T)[None]
        pe = s.rot(x, p)
        return s.layer(x, attention_mask=None, position_ids=p, position_embeddings=pe)
m = get_peft_model(Wrap(), LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear"))
m.train()
ps = list(m.parameters())
c, out = count(lambda: m(x), ps + [x])
out = out[0] if isinstance(out, tuple) else out
print(f"PEFT T={T}: {c.total()/2**20:.1f} MiB saved")
for k_, v_ in sorted(c.by.items(), key=lambda kv: -kv[1])[:40]:
    print(f"   {v_/2**20:7.2f} MiB  {k_}")
