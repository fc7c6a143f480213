#!/usr/bin/env python3
"""Writes trainer/src/test/resources/fixtures/torchao_adamw8bit_expected.json for TorchaoAdamWFixtureTest:
torchao's AdamW8bit (transformers' optim adamw_torch_8bit) applied to fixed parameters and gradients for four steps.

No torchao wheel is available offline, so its code is copied here from pytorch/ao at commit
36027d82d1ad9949597ea16002ff4940374b1b94: torchao/optim/quant_utils.py (create_dynamic_map, scale_tensor,
quantize_8bit_with_qmap, dequant_with_qmap: verbatim) and torchao/optim/adam.py single_param_adam (verbatim), with
torchao/optim/subclass_8bit.py OptimState8bit reduced to what single_param_adam uses of it (.float() dequantizes,
.copy_() quantizes: scale_tensor + quantize_8bit_with_qmap, block 256) and _AdamBase's rules (8-bit state for tensors
with numel >= 4096 and numel % 256 == 0, else fp32; lr and step as float32 tensors; step += 1 before the update).
torchao runs single_param_adam under torch.compile; this runs it eagerly (the compiled kernel may round otherwise).
These three files are unchanged from tag v0.18.0 (5f2baf9d575cf732362594c998c399902942531f, torchao 0.18) to that commit.

It also writes torchao_adamw8bit_bf16_expected.json (TorchaoAdamWFixtureTest's bf16 case): the same update over bf16
parameters with bf16 gradients, as bf16 full fine-tuning runs it. There _AdamBase makes the fp32-fallback state
torch.zeros_like(p) (bf16 moments: single_param_adam reads them with .float() and its copy_ rounds them back), and
the 8-bit state OptimState8bit.zeros(..., dtype=p.dtype), whose dtype is only an appearance: .float() dequantizes in
fp32 and copy_ quantizes the fp32 moments, with fp32 scales, exactly as for fp32 parameters. p.copy_(p_f32) rounds the
fp32 result to bf16 to nearest even (bf16_stochastic_round defaults to False).

And torchao_adamw8bit_fp16_expected.json: the same over fp16 parameters and gradients (Axolotl's float16: true), fp16
fallback moments (zeros_like(p)), every copy_ rounding to fp16 to nearest even.

    target/interop-venv/bin/python tools/reference/torchao_adamw8bit_expected.py
"""
import base64
import json
import math
import os
import struct

import torch
from torch import Tensor
from typing import Optional


# --- torchao/optim/quant_utils.py (verbatim)
def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    data = []
    # these are additional items that come from the case
    # where all the exponent bits are zero and no
    # indicator bit is present
    non_sign_bits = total_bits - (1 if signed else 1)
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(
            2 ** (i + non_sign_bits - max_exponent_bits) + 1
            if signed
            else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1,
        )
        boundaries = torch.linspace(0.1, 1, fraction_items)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()

    if additional_items > 0:
        boundaries = torch.linspace(0.1, 1, additional_items + 1)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()

    data.append(0)
    data.append(1.0)

    assert len(data) == 2**total_bits

    data.sort()
    return data


def scale_tensor(input: Tensor, block_size: int):
    """Scale tensor so that max(abs(input)) = 1"""
    shape = input.shape

    # section 2.1 from https://arxiv.org/abs/2110.02861
    input = input.view(-1, block_size)
    scale = input.abs().amax(-1).clip(1e-12)
    input = input / scale.view(-1, 1)
    return input.view(shape), scale


def quantize_8bit_with_qmap(input: Tensor, qmap: Tensor):
    # GPU-friendly binary search
    # https://blog.demofox.org/2017/06/20/simd-gpu-friendly-branchless-binary-search/
    codes = torch.where(input >= qmap[128], 128, 0)
    codes += torch.where(input >= qmap[codes + 64], 64, 0)
    codes += torch.where(input >= qmap[codes + 32], 32, 0)
    codes += torch.where(input >= qmap[codes + 16], 16, 0)
    codes += torch.where(input >= qmap[codes + 8], 8, 0)
    codes += torch.where(input >= qmap[codes + 4], 4, 0)
    codes += torch.where(input >= qmap[codes + 2], 2, 0)
    codes += torch.where(input >= qmap[codes + 1], 1, 0)

    # rounding
    codes_up = (codes + 1).clip(max=255)
    val_down = qmap[codes]
    val_up = qmap[codes_up]
    residual = input - val_down
    codes = torch.where(residual >= (val_up - val_down) * 0.5, codes_up, codes)

    return codes.to(torch.uint8)


def dequant_with_qmap(codes: Tensor, qmap: Tensor, scale: Tensor):
    # torch.compile() cannot use uint8 as index
    out = qmap[codes.int()].view(scale.shape[0], -1) * scale.view(-1, 1)
    return out.view(codes.shape)


# --- torchao/optim/adam.py (verbatim; BF16_STOCHASTIC_ROUND is False here, so _fp32_to_bf16_sr is never called)
def single_param_adam(
    p: Tensor,
    grad: Tensor,
    step: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Optional[Tensor],
    lr: Tensor,
    beta1: float,
    beta2: float,
    weight_decay: float,
    eps: float,
    IS_ADAMW: bool,
    BF16_STOCHASTIC_ROUND: bool,
):
    # compute in FP32 for accurate calculations
    p_f32 = p.float()
    grad_f32 = grad.float()

    if IS_ADAMW:
        p_f32 = p_f32 - lr * weight_decay * p_f32
    else:
        grad_f32 = grad_f32 + weight_decay * p_f32

    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step

    # keep high precision copy for param update
    exp_avg_f32 = exp_avg.float().lerp(grad_f32, 1 - beta1)
    exp_avg_sq_f32 = exp_avg_sq.float().lerp(grad_f32.square(), 1 - beta2)

    exp_avg.copy_(exp_avg_f32)
    exp_avg_sq.copy_(exp_avg_sq_f32)

    if max_exp_avg_sq is not None:
        max_exp_avg_sq_f32 = torch.maximum(max_exp_avg_sq.float(), exp_avg_sq_f32)
        max_exp_avg_sq.copy_(max_exp_avg_sq_f32)
        denom = (max_exp_avg_sq_f32.sqrt() / bias_correction2.sqrt()) + eps
    else:
        denom = (exp_avg_sq_f32.sqrt() / bias_correction2.sqrt()) + eps

    # NOTE: p_f32 - lr * (exp_avg_f32 / bias_correction1) / denom
    # does not work with DTensor
    p_f32 = p_f32 - lr * (exp_avg_f32 / bias_correction1) / denom

    if BF16_STOCHASTIC_ROUND:
        raise NotImplementedError
    else:
        p.copy_(p_f32)


class State8bit:
    """What single_param_adam uses of OptimState8bit (subclass_8bit.py): zeros, .float(), .copy_()."""

    def __init__(self, shape, signed, block_size=256):
        self.codes = torch.zeros(shape, dtype=torch.uint8)
        self.scale = torch.zeros(self.codes.numel() // block_size)
        self.qmap = torch.tensor(create_dynamic_map(signed), dtype=torch.float32)
        self.block_size = block_size

    def float(self):
        return dequant_with_qmap(self.codes, self.qmap, self.scale)

    def copy_(self, src):
        scaled_src, scale = scale_tensor(src, self.block_size)
        codes = quantize_8bit_with_qmap(scaled_src, self.qmap)
        self.codes.copy_(codes)
        self.scale.copy_(scale)


def b64f(t):
    v = t.detach().float().reshape(-1).tolist()
    return base64.b64encode(struct.pack("<%df" % len(v), *v)).decode()


def b64u8(t):
    return base64.b64encode(bytes(t.reshape(-1).tolist())).decode()


def run(seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    # 8-bit (4352 = 17 blocks), fp32 because 4140 is not a whole number of blocks, fp32 because under 4096
    specs = [("big", [17, 256], 0.1), ("odd", [4140], 0.0), ("small", [300], 0.1)]
    beta1, beta2, eps = 0.9, 0.995, 1e-6
    lrs = [1e-2, 5e-3, 2e-2, 1e-3]
    out_tensors = []
    for name, shape, wd in specs:
        n = math.prod(shape)
        init = (torch.randn(shape, generator=gen) * 0.3).to(dtype)
        grads = [(torch.randn(shape, generator=gen) * (0.5 if s % 2 == 0 else 0.02)).to(dtype)
                 for s in range(len(lrs))]
        if name == "big":
            grads[0].view(-1)[:512] = 0.0  # blocks with no gradient yet: scale clipped to 1e-12
        p = init.clone()
        eight = n >= 4096 and n % 256 == 0
        exp_avg = State8bit(shape, True) if eight else torch.zeros_like(p)
        exp_avg_sq = State8bit(shape, False) if eight else torch.zeros_like(p)
        step = torch.tensor(0.0)
        snapshots = []
        for s, lr in enumerate(lrs, start=1):
            step += 1
            single_param_adam(p, grads[s - 1], step, exp_avg, exp_avg_sq, None, torch.tensor(lr, dtype=torch.float32),
                              beta1, beta2, wd, eps, True, False)
            assert p.dtype == dtype and (eight or exp_avg.dtype == dtype)
            if s in (1, len(lrs)):
                snap = dict(step=s, param=b64f(p))
                if eight:
                    snap.update(state1=b64u8(exp_avg.codes), state2=b64u8(exp_avg_sq.codes),
                                absmax1=b64f(exp_avg.scale), absmax2=b64f(exp_avg_sq.scale))
                else:
                    snap.update(exp_avg=b64f(exp_avg), exp_avg_sq=b64f(exp_avg_sq))
                snapshots.append(snap)
        out_tensors.append(dict(name=name, shape=shape, weight_decay=wd, eight_bit=eight, init=b64f(init),
                                grads=[b64f(g) for g in grads], after=snapshots))
    return {
        "source": "pytorch/ao 36027d82d1ad9949597ea16002ff4940374b1b94: torchao/optim/adam.py single_param_adam, "
                  "quant_utils.py, subclass_8bit.py (eager, not torch.compile)",
        "torch_version": torch.__version__,
        "dtype": str(dtype).replace("torch.", ""),
        "betas": [beta1, beta2], "eps": eps, "lrs": lrs,
        "tensors": out_tensors,
    }


def write(out, name):
    path = os.path.join(os.path.dirname(__file__), "..", "..", "trainer", "src", "test", "resources", "fixtures", name)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(path))


def main():
    write(run(80, torch.float32), "torchao_adamw8bit_expected.json")
    write(run(81, torch.bfloat16), "torchao_adamw8bit_bf16_expected.json")
    write(run(82, torch.float16), "torchao_adamw8bit_fp16_expected.json")


if __name__ == "__main__":
    main()
