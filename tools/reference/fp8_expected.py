#!/usr/bin/env python3
"""Writes quant/src/test/resources/fixtures/fp8_expected.json for Fp8FixtureTest: Axolotl's fp8: true (067b021,
core/trainers/base.py additional_accelerator_args: accelerate's AORecipeKwargs(config=Float8LinearConfig(
enable_fsdp_float8_all_gather=..., force_recompute_fp8_weight_in_bwd=...)), mixed_precision="fp8") on one linear:
torchao's own Float8Linear, with emulate=True (the same casts, the GEMMs in fp32 on the CPU), forward output and the
gradients of the input and the weight, in fp32 and in bf16; and the all-gather config (enable_fsdp_float8_all_gather
and force_recompute_fp8_weight_in_bwd on), whose single-process numerics must be the same.

Also which linears accelerate converts: accelerate 1.15.0's own utils/ao.py (find_first_last_linear_layers,
filter_linear_layers, as convert_model_to_fp8_ao combines them) with Axolotl's router filter
(monkeypatch/accelerate/float8_moe_filter.py _is_router, copied) over transformers' LlamaForCausalLM and
Qwen2MoeForCausalLM of small configs whose dimensions are partly not divisible by 16.

torchao is not in the local wheel mirror: its Python source is taken from pytorch/ao tag v0.18.0 (commit
5f2baf9d575cf732362594c998c399902942531f), unchanged, and imported from there (torchao.float8 needs no compiled
extension); accelerate 1.15.0 is the mirror's wheel.

    git -C <pytorch/ao clone> archive v0.18.0 torchao | tar -x -C target/fp8/ao
    pip install --no-index accelerate==1.15.0     (into a venv over target/interop-venv: torch 2.13 CPU, transformers)
    TORCHAO_SRC=target/fp8/ao python tools/reference/fp8_expected.py
"""
import base64
import json
import os
import struct

import sys

import torch
# transformers' modules first: they read an importable torchao's installed version, which a source tree lacks.
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2MoeConfig, Qwen2MoeForCausalLM

sys.path.insert(0, os.environ.get("TORCHAO_SRC", "target/fp8/ao"))
import torchao  # noqa: E402
from torchao.float8 import Float8LinearConfig, convert_to_float8_training  # noqa: E402
from accelerate.utils.ao import filter_linear_layers, find_first_last_linear_layers  # noqa: E402
import accelerate  # noqa: E402


def b64f(t):
    v = t.detach().to(torch.float32).reshape(-1).tolist()
    return base64.b64encode(struct.pack("<%df" % len(v), *v)).decode()


def case(name, dtype, x0, w0, g0, all_gather):
    lin = torch.nn.Linear(w0.shape[1], w0.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(w0)
    model = torch.nn.Sequential(lin).to(dtype)
    config = Float8LinearConfig(enable_fsdp_float8_all_gather=all_gather,
                                force_recompute_fp8_weight_in_bwd=all_gather, emulate=True)
    convert_to_float8_training(model, config=config)
    assert type(model[0]).__name__ == "Float8Linear"
    assert all_gather == (type(model[0].weight).__name__ == "WeightWithDynamicFloat8CastTensor")
    x = x0.to(dtype).detach().clone().requires_grad_(True)
    y = model(x)
    y.backward(g0.to(dtype))
    return {"name": name, "dtype": str(dtype).replace("torch.", ""), "all_gather": all_gather,
            "x": b64f(x), "w": b64f(w0.to(dtype)), "grad_out": b64f(g0.to(dtype)),
            "y": b64f(y), "grad_x": b64f(x.grad), "grad_w": b64f(model[0].weight.grad),
            "x_shape": list(x.shape), "w_shape": list(w0.shape)}


def block_case(dtype):
    # A pre-norm decoder layer's shape with stand-ins for the norms (a weight per feature) and attention (q * tanh(k)):
    # six Float8Linear, q/k and gate/up sharing their input, two residual adds; jtune's deferred backward must give
    # autograd's own sums here.
    torch.manual_seed(7)
    h_in, inter = 64, 128
    lins = torch.nn.ModuleDict({n: torch.nn.Linear(i, o, bias=False) for n, i, o in (
        ("q", h_in, h_in), ("k", h_in, h_in), ("o", h_in, h_in), ("gate", h_in, inter), ("up", h_in, inter),
        ("down", inter, h_in))}).to(dtype)
    weights = {n: l.weight.detach().clone() for n, l in lins.items()}
    convert_to_float8_training(lins, config=Float8LinearConfig(emulate=True))
    n1 = (torch.rand(h_in) + 0.5).to(dtype)
    n2 = (torch.rand(h_in) + 0.5).to(dtype)
    x = (torch.randn(2, 5, h_in) * 1.5).to(dtype).requires_grad_(True)
    g = torch.randn(2, 5, h_in).to(dtype)
    a = x * n1
    att = lins["q"](a) * torch.tanh(lins["k"](a))
    h = x + lins["o"](att)
    b = h * n2
    gate = lins["gate"](b)
    out = h + lins["down"](gate * torch.sigmoid(gate) * lins["up"](b))
    out.backward(g)
    return {"name": "block", "dtype": str(dtype).replace("torch.", ""), "x": b64f(x), "n1": b64f(n1),
            "n2": b64f(n2), "grad_out": b64f(g), "y": b64f(out), "grad_x": b64f(x.grad),
            "weights": {n: b64f(w) for n, w in weights.items()},
            "grads": {n: b64f(lins[n].weight.grad) for n in weights}}


# --- axolotl 067b021 src/axolotl/monkeypatch/accelerate/float8_moe_filter.py
_ROUTER_NAMES = {"gate", "router"}


def _is_router(fqn: str) -> bool:
    return not _ROUTER_NAMES.isdisjoint(fqn.split("."))


def converted(model):
    # convert_model_to_fp8_ao's default filter, wrapped by Axolotl's patch; torchao's swap hands each module's fqn.
    first, last = find_first_last_linear_layers(model)
    names, linears = [], []
    for fqn, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            linears.append([fqn, module.in_features, module.out_features])
            if not _is_router(fqn) and filter_linear_layers(module, fqn, layers_to_filter=[first, last]):
                names.append(fqn)
    return {"linears": linears, "converted": names}


def filter_cases():
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=48, intermediate_size=40, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, head_dim=12))
    tied = LlamaForCausalLM(LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True))
    moe = Qwen2MoeForCausalLM(Qwen2MoeConfig(vocab_size=96, hidden_size=64, intermediate_size=128,
                                             moe_intermediate_size=32, shared_expert_intermediate_size=64,
                                             num_experts=4, num_experts_per_tok=2, num_hidden_layers=1,
                                             num_attention_heads=4, num_key_value_heads=4))
    out = {"llama-48": converted(llama), "llama-64-tied": converted(tied), "qwen2-moe": converted(moe)}
    # jtune's family fixtures (checkpoints written by transformers), as AutoModelForCausalLM loads them.
    from transformers import AutoModelForCausalLM
    families = os.path.join(os.path.dirname(__file__), "..", "..", "model", "src", "test", "resources", "fixtures",
                            "families")
    for name in ("qwen2", "qwen3", "mistral-nemo", "gemma2", "gemma3-text", "phi3", "llama-rope-params"):
        out["family:" + name] = converted(AutoModelForCausalLM.from_pretrained(os.path.join(families, name)))
    return out


def main():
    torch.manual_seed(1234)
    out_f, in_f = 32, 64
    x0 = torch.randn(2, 5, in_f) * 1.5
    x0[0, 1] = 0.0
    w0 = torch.randn(out_f, in_f) * 0.05
    g0 = torch.randn(2, 5, out_f) * 1e-3
    # A wide range: values far below the maximum fall to fp8's subnormals or to zero after scaling.
    xw = x0 * torch.exp2(torch.randint(-24, 4, x0.shape).float())
    ww = w0 * torch.exp2(torch.randint(-16, 2, w0.shape).float())
    gw = g0 * torch.exp2(torch.randint(-30, 2, g0.shape).float())
    cases = []
    for dtype in (torch.float32, torch.bfloat16):
        cases.append(case("random", dtype, x0, w0, g0, False))
        cases.append(case("wide-range", dtype, xw, ww, gw, False))
        cases.append(case("random-fsdp-float8-all-gather", dtype, x0, w0, g0, True))
        cases.append(case("zero-grad", dtype, x0, w0, torch.zeros_like(g0), False))
    path = os.path.join(os.path.dirname(__file__), "..", "..", "quant", "src", "test", "resources", "fixtures",
                        "fp8_expected.json")
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "torchao": "v0.18.0 (5f2baf9d), source tree", "accelerate": accelerate.__version__,
                   "cases": cases, "blocks": [block_case(torch.float32), block_case(torch.bfloat16)],
                   "filters": filter_cases()}, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(path), len(cases), "cases")


if __name__ == "__main__":
    main()
