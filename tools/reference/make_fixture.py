#!/usr/bin/python3
"""Writes model/src/test/resources/fixtures/tiny-bf16-llama/: a tiny random Llama checkpoint in the
Hugging Face layout, plus the negative log-likelihoods and logits its forward pass must produce.

This is "a checkpoint written by another program": it uses only PyTorch (Debian's python3-torch 1.13 is
enough) and the standard library, and nothing from jtune. The forward pass below is a line-by-line
transcription of transformers' LlamaForCausalLM (src/transformers/models/llama/modeling_llama.py, eager
attention) and of the RoPE initialisers in src/transformers/modeling_rope_utils.py; see README.md.

Run from anywhere:  /usr/bin/python3 tools/reference/make_fixture.py
The output is deterministic for a given PyTorch build (fixed seed, CPU, single thread).
"""
import json
import math
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "..", "model", "src", "test", "resources", "fixtures", "tiny-bf16-llama"))

SEED = 1234
# (name pattern, std) of the random init; large enough that attention is not uniform and logits are not ~0.
STD = {
    "embed_tokens": 0.5,
    "q_proj": 0.15,
    "k_proj": 0.15,
    "v_proj": 0.12,
    "o_proj": 0.12,
    "gate_proj": 0.15,
    "up_proj": 0.15,
    "down_proj": 0.1,
    "lm_head": 0.15,
    "norm": 0.1,  # RMSNorm weights are 1 + N(0, 0.1), so a dropped norm weight is visible
}

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "head_dim": 16,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "max_position_embeddings": 128,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "pad_token_id": 2,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 8.0,
        "high_freq_factor": 4.0,
        "low_freq_factor": 1.0,
        "original_max_position_embeddings": 32,
        "rope_type": "llama3",
    },
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 259,
}

SPECIALS = ["<s>", "</s>", "<pad>"]  # ids 0, 1, 2; byte b is id 3 + b
BYTE_OFFSET = len(SPECIALS)

INPUTS = [
    {"text": "Hello, jtune!"},
    {"prompt": "Q: What is 2+2?\nA:", "completion": " 4"},
    {"text": "The quick brown fox jumps over the lazy dog. 0123456789"},
    {"prompt": "Translate to French: cheese\n", "completion": "fromage"},
    {"text": "Grüße, 世界 — naïve café ☕"},
]


# ----------------------------------------------------------------------------------------------- tokenizer

def bytes_to_unicode():
    """GPT-2's byte -> printable unicode character table (as in tokenizers' ByteLevel)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def tokenize(text):
    """What the tokenizer.json below does to `text`: `<s>` then one id per UTF-8 byte.

    The ByteLevel pre-tokenizer (use_regex) splits the text into words and maps each byte to its
    bytes_to_unicode character; the BPE model has no merges, so each word becomes one token per character,
    i.e. per byte, and the word split does not change the ids."""
    return [0] + [BYTE_OFFSET + b for b in text.encode("utf-8")]


def tokenizer_json():
    table = bytes_to_unicode()
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for b in range(256):
        vocab[table[b]] = BYTE_OFFSET + b
    added = [{"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, tok in enumerate(SPECIALS)]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}},
        },
        "decoder": dict(byte_level),
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [],
        },
    }


def tokenizer_config_json():
    return {
        "added_tokens_decoder": {
            str(i): {"content": tok, "lstrip": False, "normalized": False, "rstrip": False,
                     "single_word": False, "special": True} for i, tok in enumerate(SPECIALS)},
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "model_max_length": CONFIG["max_position_embeddings"],
        "pad_token": "<pad>",
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


# ----------------------------------------------------------------------------------------------- weights

def weight_shapes(cfg):
    h, i, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd, nh, kv = cfg["head_dim"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    shapes = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        shapes[p + "input_layernorm.weight"] = (h,)
        shapes[p + "post_attention_layernorm.weight"] = (h,)
        shapes[p + "self_attn.q_proj.weight"] = (nh * hd, h)
        shapes[p + "self_attn.k_proj.weight"] = (kv * hd, h)
        shapes[p + "self_attn.v_proj.weight"] = (kv * hd, h)
        shapes[p + "self_attn.o_proj.weight"] = (h, nh * hd)
        shapes[p + "mlp.gate_proj.weight"] = (i, h)
        shapes[p + "mlp.up_proj.weight"] = (i, h)
        shapes[p + "mlp.down_proj.weight"] = (h, i)
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (v, h)
    return shapes


def random_weights(cfg):
    """Name -> bfloat16 tensor (the checkpoint's dtype); drawn in fp32 and rounded to nearest-even bf16."""
    gen = torch.Generator().manual_seed(SEED)
    out = {}
    for name, shape in sorted(weight_shapes(cfg).items()):
        key = next(k for k in STD if k in name)
        w = torch.randn(shape, generator=gen, dtype=torch.float32) * STD[key]
        if name.endswith("norm.weight"):
            w = w + 1.0
        out[name] = w.to(torch.bfloat16)
    return out


def write_safetensors(path, tensors):
    """The safetensors format, by hand: u64 LE header size, JSON header (padded with spaces to 8 bytes),
    then the raw little-endian data of each tensor in the header's (name-sorted) order."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        assert t.dtype == torch.bfloat16
        data = t.view(torch.int16).numpy().astype("<i2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Reads back what write_safetensors wrote (a self-check of the file, independent of the writer's state)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    header.pop("__metadata__")
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        assert e["dtype"] == "BF16"
        bits = torch.frombuffer(bytearray(buf[8 + n + a:8 + n + b]), dtype=torch.int16)
        out[name] = bits.view(torch.bfloat16).reshape(e["shape"])
    return out


# ----------------------------------------------------------------------------------------------- the model
# Transcribed from transformers' modeling_llama.py / modeling_rope_utils.py.

def rope_init(cfg):
    """ROPE_INIT_FUNCTIONS[rope_type](config): inv_freq in fp32, attention_scaling."""
    base = cfg["rope_theta"]
    dim = cfg["head_dim"]
    # _compute_default_rope_parameters
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    scaling = cfg.get("rope_scaling")
    rope_type = "default" if scaling is None else scaling.get("rope_type", scaling.get("type"))
    if rope_type == "linear":  # _compute_linear_scaling_rope_parameters
        inv_freq /= scaling["factor"]
    elif rope_type == "llama3":  # _compute_llama3_parameters
        factor = scaling["factor"]
        low_freq_factor = scaling["low_freq_factor"]
        high_freq_factor = scaling["high_freq_factor"]
        old_context_len = scaling["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
        is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        inv_freq = torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
    elif rope_type != "default":
        raise ValueError(rope_type)
    return inv_freq, 1.0


def rotary_embedding(inv_freq, attention_scaling, position_ids, dtype):
    """LlamaRotaryEmbedding.forward: fp32 freqs, cos/sin cast to the hidden states' dtype. position_ids [B, T]."""
    inv_freq_expanded = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
    position_ids_expanded = position_ids[:, None, :].float()
    freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = emb.cos() * attention_scaling
    sin = emb.sin() * attention_scaling
    return cos.to(dtype=dtype), sin.to(dtype=dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    cos = cos.unsqueeze(1)
    sin = sin.unsqueeze(1)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def rms_norm(hidden_states, weight, eps, norm_dtype):
    """LlamaRMSNorm.forward (norm_dtype is torch.float32 there; float64 only for this script's fp64 self-check)."""
    input_dtype = hidden_states.dtype
    hidden_states = hidden_states.to(norm_dtype)
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    hidden_states = hidden_states * torch.rsqrt(variance + eps)
    return weight * hidden_states.to(input_dtype)


def repeat_kv(hidden_states, n_rep):
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, num_key_value_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


def linear(x, w):
    return torch.nn.functional.linear(x, w)


def forward(cfg, weights, input_ids, position_ids=None, segment_ids=None, dtype=torch.float32):
    """LlamaForCausalLM.forward(input_ids, position_ids).logits.float() for one row, eager attention.

    weights: name -> tensor (any dtype; cast to `dtype` as from_pretrained(torch_dtype=dtype) would).
    segment_ids: optional; token i attends to j <= i of the same segment only (packed rows).
    Returns fp32 (or fp64) logits [T, vocab]."""
    norm_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    w = {k: v.to(dtype) for k, v in weights.items()}
    ids = torch.tensor(input_ids, dtype=torch.long)[None, :]
    T = ids.shape[1]
    if position_ids is None:
        position_ids = list(range(T))
    pos = torch.tensor(position_ids, dtype=torch.long)[None, :]
    nh, kv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps = cfg["rms_norm_eps"]
    scaling = hd ** -0.5

    # the 4-d additive mask transformers builds for eager attention: finfo(dtype).min where masked
    allowed = torch.ones(T, T, dtype=torch.bool).tril()
    if segment_ids is not None:
        seg = torch.tensor(segment_ids)
        allowed &= seg[:, None] == seg[None, :]
    mask = torch.zeros(T, T, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)[None, None]

    hidden_states = torch.nn.functional.embedding(ids, w["model.embed_tokens.weight"])
    inv_freq, attention_scaling = rope_init(cfg)
    cos, sin = rotary_embedding(inv_freq, attention_scaling, pos, hidden_states.dtype)

    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        residual = hidden_states
        hidden_states = rms_norm(hidden_states, w[p + "input_layernorm.weight"], eps, norm_dtype)
        # LlamaAttention.forward
        hidden_shape = (1, T, -1, hd)
        q = linear(hidden_states, w[p + "self_attn.q_proj.weight"]).view(hidden_shape).transpose(1, 2)
        k = linear(hidden_states, w[p + "self_attn.k_proj.weight"]).view(hidden_shape).transpose(1, 2)
        v = linear(hidden_states, w[p + "self_attn.v_proj.weight"]).view(hidden_shape).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        # eager_attention_forward
        k = repeat_kv(k, nh // kv)
        v = repeat_kv(v, nh // kv)
        attn_weights = torch.matmul(q, k.transpose(2, 3)) * scaling
        attn_weights = attn_weights + mask
        attn_weights = torch.nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32 if dtype != torch.float64 else torch.float64).to(q.dtype)
        attn_output = torch.matmul(attn_weights, v)
        attn_output = attn_output.transpose(1, 2).contiguous()
        attn_output = attn_output.reshape(1, T, -1).contiguous()
        attn_output = linear(attn_output, w[p + "self_attn.o_proj.weight"])
        hidden_states = residual + attn_output
        # MLP
        residual = hidden_states
        hidden_states = rms_norm(hidden_states, w[p + "post_attention_layernorm.weight"], eps, norm_dtype)
        gate = linear(hidden_states, w[p + "mlp.gate_proj.weight"])
        up = linear(hidden_states, w[p + "mlp.up_proj.weight"])
        hidden_states = linear(torch.nn.functional.silu(gate) * up, w[p + "mlp.down_proj.weight"])
        hidden_states = residual + hidden_states

    hidden_states = rms_norm(hidden_states, w["model.norm.weight"], eps, norm_dtype)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    logits = linear(hidden_states, head)
    return (logits if dtype == torch.float64 else logits.float())[0]


def scored(line):
    """(input_ids, first scored position): text scores every token after <s>; prompt/completion is
    tokenized as the one string prompt+completion and only the completion's tokens are scored."""
    if "text" in line:
        return tokenize(line["text"]), 1
    ids = tokenize(line["prompt"] + line["completion"])
    return ids, 1 + len(line["prompt"].encode("utf-8"))


def nll(logits, ids, start):
    """sum over t >= start of -log p(ids[t] | ids[<t]), in float64."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    return -sum(logp[t - 1, ids[t]].item() for t in range(start, len(ids)))


def g(x, digits=10):
    return float(f"{x:.{digits}g}")


# ----------------------------------------------------------------------------------------------- main

def main():
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    os.makedirs(OUT, exist_ok=True)

    weights = random_weights(CONFIG)
    st_path = os.path.join(OUT, "model.safetensors")
    write_safetensors(st_path, weights)
    loaded = read_safetensors(st_path)
    assert sorted(loaded) == sorted(weights)
    for name in weights:
        assert torch.equal(loaded[name].view(torch.int16), weights[name].view(torch.int16)), name
    weights = loaded  # everything below runs on what the file holds

    def dump(name, obj):
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False, sort_keys=name == "config.json")
            f.write("\n")

    dump("config.json", CONFIG)
    dump("generation_config.json", {"_from_model_config": True, "bos_token_id": 0, "eos_token_id": 1})
    dump("tokenizer.json", tokenizer_json())
    dump("tokenizer_config.json", tokenizer_config_json())
    with open(os.path.join(OUT, "inputs.jsonl"), "w", encoding="utf-8") as f:
        for line in INPUTS:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")

    lines = []
    totals = {"fp32": [0, 0.0], "bf16": [0, 0.0]}
    logits0 = {}
    for i, line in enumerate(INPUTS):
        ids, start = scored(line)
        entry = {"input_ids": ids, "score_start": start, "tokens": len(ids) - start}
        out = {"fp32": forward(CONFIG, weights, ids, dtype=torch.float32),
               "bf16": forward(CONFIG, weights, ids, dtype=torch.bfloat16)}
        # self-checks: fp32 against the same forward in float64; bf16 close to fp32
        f64 = forward(CONFIG, weights, ids, dtype=torch.float64)
        d32 = (out["fp32"].double() - f64).abs().max().item()
        assert d32 < 2e-5, f"line {i}: fp32 vs fp64 max |dlogit| {d32}"
        d16 = (out["bf16"] - out["fp32"]).abs().max().item()
        assert d16 < 0.25, f"line {i}: bf16 vs fp32 max |dlogit| {d16}"
        for dt, logits in out.items():
            s = nll(logits, ids, start)
            entry[dt] = {"nll": g(s), "mean_nll": g(s / entry["tokens"])}
            totals[dt][0] += entry["tokens"]
            totals[dt][1] += s
        if i == 0:
            logits0 = out
        print(f"line {i}: T={len(ids)} scored={entry['tokens']} fp32 mean_nll={entry['fp32']['mean_nll']:.6f} "
              f"bf16 mean_nll={entry['bf16']['mean_nll']:.6f}  |fp32-fp64|={d32:.2e} |bf16-fp32|={d16:.3f}",
              file=sys.stderr)
        lines.append(entry)

    # packing self-check: lines 0 and 1 in one row, positions restarting at 0, segment-isolated attention
    a, b = lines[0]["input_ids"], lines[1]["input_ids"]
    packed = forward(CONFIG, weights, a + b, position_ids=list(range(len(a))) + list(range(len(b))),
                     segment_ids=[0] * len(a) + [1] * len(b))
    alone = torch.cat([forward(CONFIG, weights, a), forward(CONFIG, weights, b)])
    assert (packed - alone).abs().max().item() < 1e-5
    # the positions matter (RoPE is applied), and only relatively (a uniform shift changes nothing)
    c = lines[2]["input_ids"]
    base = forward(CONFIG, weights, c)
    shifted = forward(CONFIG, weights, c, position_ids=[p + 7 for p in range(len(c))])
    flat = forward(CONFIG, weights, c, position_ids=[0] * len(c))
    assert (shifted - base).abs().max().item() < 1e-4
    assert (flat - base).abs().max().item() > 0.05

    summary = {}
    for dt, (n, s) in totals.items():
        summary[dt] = {"tokens": n, "nll": g(s), "mean_nll": g(s / n), "perplexity": g(math.exp(s / n))}

    expected = {
        "description": "tiny-bf16-llama: per-line negative log-likelihoods (natural log, summed over the scored "
                       "tokens) of inputs.jsonl under LlamaForCausalLM, and line 0's logits. fp32: bf16 weights "
                       "upcast, forward in float32. bf16: forward in bfloat16 as transformers runs a bf16 model "
                       "(eager attention, RMSNorm and softmax in fp32, logits upcast), on CPU PyTorch "
                       + torch.__version__ + ". Written by tools/reference/make_fixture.py.",
        "lines": lines,
        "summary": summary,
        "logits_line0": [[g(x, 8) for x in row] for row in logits0["fp32"].tolist()],
        "logits_line0_bf16": [[g(x, 6) for x in row] for row in logits0["bf16"].tolist()],
    }
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, separators=(",", ":"))
        f.write("\n")
    print(json.dumps(summary), file=sys.stderr)
    print("wrote " + OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
