"""Reference fixtures written by Hugging Face transformers, one tiny checkpoint per model family.

Writes model/src/test/resources/fixtures/families/<case>/ for each case below: what `save_pretrained` writes
(config.json, model.safetensors, generation_config.json; bfloat16), the byte-level tokenizer of
fixtures/tiny-bf16-llama, inputs.jsonl and expected.json (nll per line in fp32 and bf16, a packed run, a greedy
continuation). Every number comes from transformers itself (eager attention), loaded back from the saved files
the way a user would load them. See tools/reference/FAMILIES.md.

Run (deterministic; needs torch + transformers 5.x, e.g. the interop venv):

    HF_HUB_OFFLINE=1 target/interop-venv/bin/python tools/reference/make_family_fixtures.py [case ...]
"""

import copy
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    Gemma2Config,
    Gemma2ForCausalLM,
    Gemma3Config,
    Gemma3ForCausalLM,
    Gemma3ForConditionalGeneration,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Phi3Config,
    Phi3ForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER_DIR = ROOT / "model/src/test/resources/fixtures/tiny-bf16-llama"
OUT_DIR = ROOT / "model/src/test/resources/fixtures/families"

# Varied lengths (tokens = 1 + utf-8 bytes): 31, 31 (multi-byte characters), 106, 3. Line 2 is longer than every
# sliding window below and than Phi-3's original_max_position_embeddings (32); line 0 (the greedy prompt's
# source) is not, so the greedy run stays on Phi-3's short factors.
TEXTS = [
    "Hello, jtune! Family fixtures.",
    "Größe: 3×4 — naïve café ok",
    "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. 0123456789 again!",
    "ok",
]

COMMON = dict(vocab_size=259, bos_token_id=0, eos_token_id=1, pad_token_id=2, hidden_size=64,
              intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)

# The Gemma 3 text part, shared by gemma3-text and gemma3-conditional. 4 layers: sliding, sliding, full, sliding
# (explicit layer_types); local rope base 10000, global 1e6 with linear scaling x8.
GEMMA3_TEXT = dict(COMMON, num_hidden_layers=4, head_dim=32, query_pre_attn_scalar=24, sliding_window=8,
                   layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
                   rope_parameters={
                       "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
                       "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                   },
                   hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6, tie_word_embeddings=True)

# Gemma's input embeddings are scaled by sqrt(hidden) and tied to the output: with 0.15 projections the residual
# stream stays dominated by the current token's embedding (greedy decoding only repeats the last token) unless
# the embeddings are smaller.
EMBED_STD = {"gemma2": 0.08, "gemma3-text": 0.08, "gemma3-conditional": 0.08}  # head_dim 16 * partial_rotary_factor 0.75 = 12 rotary dims -> 6 factors


def cases():
    """name -> (model class, config class, config kwargs, toggles). A toggle (label, overrides) names a config
    change or ("zero_biases", None) that must visibly change the fp32 result (the feature bites)."""
    return {
        "qwen2": (Qwen2ForCausalLM, Qwen2Config, dict(
            COMMON, num_hidden_layers=3, tie_word_embeddings=True, use_sliding_window=True, sliding_window=8,
            max_window_layers=1, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
            rms_norm_eps=1e-6),
            [("zero_biases", None),
             ("no sliding window", dict(use_sliding_window=False, layer_types=None))]),
        "qwen3": (Qwen3ForCausalLM, Qwen3Config, dict(
            COMMON, num_hidden_layers=2, head_dim=32, tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, rms_norm_eps=1e-6),
            []),
        "mistral-nemo": (MistralForCausalLM, MistralConfig, dict(
            COMMON, num_hidden_layers=2, head_dim=32, sliding_window=12, tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, rms_norm_eps=1e-5),
            [("no sliding window", dict(sliding_window=None))]),
        "gemma2": (Gemma2ForCausalLM, Gemma2Config, dict(
            COMMON, num_hidden_layers=2, head_dim=32, query_pre_attn_scalar=24, sliding_window=8,
            attn_logit_softcapping=5.0, final_logit_softcapping=3.0, hidden_activation="gelu_pytorch_tanh",
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, rms_norm_eps=1e-6,
            tie_word_embeddings=True),
            [("no attn softcap", dict(attn_logit_softcapping=None)),
             ("no final softcap", dict(final_logit_softcapping=None)),
             ("query_pre_attn_scalar = head_dim", dict(query_pre_attn_scalar=32)),
             ("no sliding window", dict(sliding_window=256))]),
        "gemma3-text": (Gemma3ForCausalLM, Gemma3TextConfig, dict(GEMMA3_TEXT),
                        [("no linear scaling on global layers", dict(rope_parameters={
                            "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}})),
                         ("global base on local layers", dict(rope_parameters={
                             "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
                             "sliding_attention": {"rope_type": "default", "rope_theta": 1000000.0}})),
                         ("query_pre_attn_scalar = head_dim", dict(query_pre_attn_scalar=32)),
                         ("no sliding window", dict(sliding_window=256))]),
        "gemma3-conditional": (Gemma3ForConditionalGeneration, Gemma3Config, dict(
            text_config=dict(GEMMA3_TEXT),
            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                               image_size=32, patch_size=8, num_channels=3),
            # 4 patches a side pooled to 2 -> 4 image tokens. Special ids 256/257/258 are bytes 0xFD/0xFE/0xFF,
            # which never occur in UTF-8, so text never produces them.
            mm_tokens_per_image=4, boi_token_index=257, eoi_token_index=256, image_token_index=258,
            tie_word_embeddings=True, bos_token_id=0, eos_token_id=1, pad_token_id=2), []),
        "phi3": (Phi3ForCausalLM, Phi3Config, dict(
            COMMON, num_hidden_layers=2, num_key_value_heads=2, max_position_embeddings=256,
            original_max_position_embeddings=32, sliding_window=20, tie_word_embeddings=False,
            rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 0.75,
                             "short_factor": [1.0, 1.05, 1.2, 1.5, 2.0, 3.0],
                             "long_factor": [1.1, 1.6, 2.5, 4.0, 7.0, 12.0]},
            rms_norm_eps=1e-5),
            [("no sliding window", dict(sliding_window=None))]),
        "llama-rope-params": (LlamaForCausalLM, LlamaConfig, dict(
            COMMON, num_hidden_layers=2, tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 500000.0}, rms_norm_eps=1e-5),
            [("rope_theta 10000", dict(rope_parameters={"rope_type": "default", "rope_theta": 10000.0}))]),
    }


def randomize(model, seed, embed_std=0.25):
    """Weights large enough that the features matter (transformers' std 0.02 init gives near-uniform logits):
    embeddings N(0, 0.25), other matrices N(0, 0.15); every norm weight gets + N(0, 0.1) on top of its init (1 for
    Llama-style, 0 for Gemma's (1 + w)), every bias N(0, 0.1), so neither a wrong (1 + w) nor a missing bias can
    pass unnoticed."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if "norm" in name:
                p.add_(0.1 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.1 * noise)
            elif "embed" in name and p.dim() == 2:
                p.copy_(embed_std * noise)
            elif p.dim() >= 2:
                p.copy_(0.15 * noise)
            else:
                p.add_(0.1 * noise)


def token_ids(tokenizer, text):
    ids = [0] + [3 + b for b in text.encode("utf-8")]
    got = tokenizer(text)["input_ids"]
    assert got == ids, f"tokenizer disagrees with the byte rule for {text!r}: {got} vs {ids}"
    return ids


def line_nlls(logits, ids_list, starts):
    """Per-line nll (float64) from one row of logits; line i occupies [starts[i], starts[i] + len)."""
    lp = torch.log_softmax(logits.double(), dim=-1)
    out = []
    for ids, s in zip(ids_list, starts):
        tgt = torch.tensor(ids[1:])
        out.append(-lp[s:s + len(ids) - 1].gather(-1, tgt[:, None]).sum().item())
    return out


@torch.no_grad()
def forward_logits(model, ids, position_ids=None):
    x = torch.tensor([ids])
    kw = {} if position_ids is None else {"position_ids": torch.tensor([position_ids])}
    # use_cache=False matters: transformers detects packed rows (position_ids restarting, no attention_mask)
    # only when past_key_values is None, and with use_cache on (the default in eval) the model creates a cache
    # first, so the segments would silently attend to each other.
    return model(input_ids=x, use_cache=False, **kw).logits[0].float()


def unpacked(model, ids_list):
    nll = [line_nlls(forward_logits(model, ids), [ids], [0])[0] for ids in ids_list]
    return {"nll": nll, "mean_nll": sum(nll) / sum(len(i) - 1 for i in ids_list)}


def packed(model, ids_list):
    row, pos, starts = [], [], []
    for ids in ids_list:
        starts.append(len(row))
        row += ids
        pos += list(range(len(ids)))
    nll = line_nlls(forward_logits(model, row, pos), ids_list, starts)
    return {"nll": nll, "mean_nll": sum(nll) / sum(len(i) - 1 for i in ids_list)}


@torch.no_grad()
def greedy(model, prompt, n=12):
    out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                         max_new_tokens=n, do_sample=False, use_cache=True, eos_token_id=None, pad_token_id=2)
    gen = out[0, len(prompt):].tolist()
    # Cross-check the KV cache path against argmax over full forwards without a cache.
    seq = list(prompt)
    for _ in range(len(gen)):
        seq.append(int(forward_logits(model, seq)[-1].argmax()))
    assert seq[len(prompt):] == gen, f"generate (cached) {gen} != full-forward argmax {seq[len(prompt):]}"
    return gen


def load(cls, path, dtype, attn="eager"):
    m = cls.from_pretrained(path, dtype=dtype, attn_implementation=attn)
    m.eval()
    return m


def phi3_force_long(model):
    """Phi-3 picks short/long factors per forward from max(position_ids) + 1 (transformers'
    longrope_frequency_update). A packed row holding a long line therefore runs its short lines on the long
    factors too; to check the packing's isolation, run the short lines alone on the long factors."""
    rot = model.model.rotary_emb
    long_inv, _ = transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS["longrope"](
        model.config, None, seq_len=model.config.rope_parameters["original_max_position_embeddings"] + 1)
    rot.original_inv_freq = long_inv
    rot.register_buffer("inv_freq", long_inv, persistent=False)


def build(name, spec, seed, workdir, text_state=None):
    cls, cfg_cls, kwargs, _ = spec
    cfg = cfg_cls(**copy.deepcopy(kwargs))
    torch.manual_seed(seed)
    model = cls(cfg)
    randomize(model, seed, EMBED_STD.get(name, 0.25))
    if text_state is not None:  # gemma3-conditional: the very text weights of gemma3-text
        model.model.language_model.load_state_dict(text_state["model"], strict=True)
        model.lm_head.weight.data.copy_(text_state["lm_head"])
    model = model.to(torch.bfloat16)
    path = Path(workdir) / name
    model.save_pretrained(path)
    return path


def check_close(a, b, tol, what, relative=True):
    for x, y in zip(a, b):
        bound = tol * max(1.0, abs(y)) if relative else tol
        assert abs(x - y) <= bound, f"{what}: {a} vs {b} (tol {tol}, {'relative' if relative else 'absolute'})"


def run_case(name, spec, seed, workdir, tokenizer, ids_list, report, text_state=None):
    cls, cfg_cls, kwargs, toggles = spec
    path = build(name, spec, seed, workdir, text_state)
    fp32 = load(cls, path, torch.float32)
    bf16 = load(cls, path, torch.bfloat16)
    res = {"fp32": unpacked(fp32, ids_list), "bf16": unpacked(bf16, ids_list)}

    # fp32 of bf16 weights vs the bf16 forward: the same model up to rounding.
    check_close(res["bf16"]["nll"], res["fp32"]["nll"], 0.05, f"{name} bf16 vs fp32")

    # Packed: one row, positions restarting at 0, no attention_mask -> transformers isolates the segments.
    pk = packed(fp32, ids_list)
    if name == "phi3":
        longest = max(len(i) for i in ids_list)
        orig = fp32.config.rope_parameters["original_max_position_embeddings"]
        assert longest > orig
        ref = load(cls, path, torch.float32)
        phi3_force_long(ref)
        forced = [line_nlls(forward_logits(ref, ids), [ids], [0])[0] for ids in ids_list]
        check_close(pk["nll"], forced, 1e-5, f"{name} packed vs unpacked-on-long-factors", relative=False)
        for i, ids in enumerate(ids_list):
            differs = abs(pk["nll"][i] - res["fp32"]["nll"][i]) > 1e-4
            assert differs == (len(ids) <= orig), f"phi3 line {i}: packed/unpacked factor choice unexpected"
        report.append(f"{name}: packed row uses long factors for every line (max position {longest - 1} >= "
                      f"original {orig}); short lines differ from their unpacked nll by "
                      + ", ".join(f"{pk['nll'][i] - res['fp32']['nll'][i]:+.4f}" for i, ids in
                                  enumerate(ids_list) if len(ids) <= orig))
    else:
        check_close(pk["nll"], res["fp32"]["nll"], 1e-5, f"{name} packed vs unpacked", relative=False)
    res["packed"] = {"position_ids": "0..len-1 per line, lines concatenated in order, no attention_mask",
                     "fp32": pk}
    if name == "phi3":
        res["packed"]["note"] = ("transformers picks Phi-3's longrope factors per forward from max(position_ids)+1: "
                                 "the packed row holds a line longer than original_max_position_embeddings, so "
                                 "every line in it, short ones too, runs on long_factor; unpacked short lines run "
                                 "on short_factor")
    res["greedy"] = {"prompt": ids_list[0][:5], "fp32": greedy(fp32, ids_list[0][:5])}

    # The features bite: each toggle changes the fp32 result.
    base = res["fp32"]["nll"]
    state = fp32.state_dict()
    for label, overrides in toggles:
        if label == "zero_biases":
            m = load(cls, path, torch.float32)
            with torch.no_grad():
                for n_, p in m.named_parameters():
                    if n_.endswith(".bias"):
                        p.zero_()
        elif overrides is None:
            continue
        else:
            cfg_dict = json.loads((path / "config.json").read_text())
            kw = copy.deepcopy(kwargs)
            kw.update(copy.deepcopy(overrides))
            m = cls(cfg_cls(**kw))
            m.set_attn_implementation("eager")
            m.load_state_dict(state)
            m = m.float().eval()
            del cfg_dict
        alt = unpacked(m, ids_list)["nll"]
        delta = max(abs(a - b) for a, b in zip(alt, base))
        # fp32 noise is ~1e-6 per line (packed vs unpacked); bf16 rounding moves a line's nll by up to ~0.4.
        assert delta > 0.1, f"{name}: toggle '{label}' barely changes the per-line nll ({alt} vs {base})"
        report.append(f"{name}: '{label}' moves a line's fp32 nll by up to {delta:.4f}")

    # sdpa vs eager (the references are eager; sdpa is transformers' default).
    for dt, key in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        s = unpacked(load(cls, path, dt, "sdpa"), ids_list)["mean_nll"]
        report.append(f"{name}: sdpa - eager mean_nll {key}: {s - res[key]['mean_nll']:+.3e}")

    names = sorted(json.loads(open(path / "model.safetensors", "rb").read(
        int.from_bytes(open(path / "model.safetensors", "rb").read(8), "little") + 8)[8:]).keys())
    res["_tensor_names"] = [n for n in names if n != "__metadata__"]
    return path, res, fp32


def main(argv):
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(TOKENIZER_DIR / "tokenizer.json"))
    ids_list = [token_ids(tokenizer, t) for t in TEXTS]
    all_cases = cases()
    wanted = argv or list(all_cases)
    if "gemma3-conditional" in wanted and "gemma3-text" not in wanted:
        wanted = ["gemma3-text"] + wanted
    report, text_state, results = [], None, {}
    with tempfile.TemporaryDirectory() as workdir:
        for i, name in enumerate(all_cases):
            if name not in wanted:
                continue
            seed = 1000 + i
            path, res, fp32 = run_case(name, all_cases[name], seed, workdir, tokenizer, ids_list, report,
                                       text_state if name == "gemma3-conditional" else None)
            if name == "gemma3-text":
                sd = fp32.state_dict()
                text_state = {"model": {k[len("model."):]: v for k, v in sd.items() if k.startswith("model.")},
                              "lm_head": sd["model.embed_tokens.weight"]}
            if name == "gemma3-conditional":
                # Its text-only forward is Gemma3ForCausalLM's on the same weights.
                check_close(res["fp32"]["nll"], results["gemma3-text"]["fp32"]["nll"], 1e-6,
                            "gemma3-conditional vs gemma3-text")
            results[name] = res
            tensor_names = res.pop("_tensor_names")
            expected = {
                "transformers": transformers.__version__, "torch": torch.__version__,
                "attn_implementation": "eager",
                "lines": [{"input_ids": ids, "tokens": len(ids) - 1} for ids in ids_list],
                **res,
            }
            dest = OUT_DIR / name
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            for f in sorted(os.listdir(path)):
                shutil.copy(path / f, dest / f)
            for f in ("tokenizer.json", "tokenizer_config.json"):
                shutil.copy(TOKENIZER_DIR / f, dest / f)
            with open(dest / "inputs.jsonl", "w") as fh:
                for t in TEXTS:
                    fh.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
            with open(dest / "expected.json", "w") as fh:
                json.dump(expected, fh, indent=1)
                fh.write("\n")
            report.append(f"{name}: files {sorted(os.listdir(dest))}")
            report.append(f"{name}: tensors {tensor_names}")
            report.append(f"{name}: fp32 mean_nll {res['fp32']['mean_nll']:.6f} bf16 {res['bf16']['mean_nll']:.6f}"
                          f" greedy {res['greedy']['fp32']}")
    print("\n".join(report))


if __name__ == "__main__":
    main(sys.argv[1:])
