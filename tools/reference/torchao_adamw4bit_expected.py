#!/usr/bin/env python3
"""Writes trainer/src/test/resources/fixtures/torchao_adamw4bit_expected.json for TorchaoAdamW4bitFixtureTest:
torchao's AdamW4bit (transformers' optim adamw_torch_4bit) applied to fixed parameters and gradients for four steps.

No torchao wheel is available offline (not in the local mirror), so its code is copied here from pytorch/ao at commit
36027d82d1ad9949597ea16002ff4940374b1b94 (as torchao_adamw8bit_expected.py does): torchao/optim/quant_utils.py
(create_dynamic_map, scale_tensor, quantize_4bit_with_qmap, dequant_with_qmap: verbatim), torchao/optim/adam.py
single_param_adam (verbatim), torchao/optim/subclass_4bit.py (get_qmap_signed / get_qmap_unsigned verbatim;
OptimState4bit reduced to what single_param_adam uses of it: zeros, dequantize (unpack high nibble first), copy_ from
fp32 (scale_tensor of the flattened tensor + quantize_4bit_with_qmap + packing codes[::2] << 4 | codes[1::2])) and
_AdamBase's rules (4-bit state for tensors with numel >= 4096 and numel % 128 == 0, else fp32 zeros_like; lr and step
float32 tensors; step += 1 before the update). torchao runs single_param_adam under torch.compile; this runs it
eagerly (the compiled kernel may round otherwise).

    target/interop-venv/bin/python tools/reference/torchao_adamw4bit_expected.py
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


def quantize_4bit_with_qmap(input: Tensor, qmap: Tensor):
    # GPU-friendly binary search
    # https://blog.demofox.org/2017/06/20/simd-gpu-friendly-branchless-binary-search/
    codes = torch.where(input >= qmap[8], 8, 0)
    codes += torch.where(input >= qmap[codes + 4], 4, 0)
    codes += torch.where(input >= qmap[codes + 2], 2, 0)
    codes += torch.where(input >= qmap[codes + 1], 1, 0)

    # rounding
    codes_up = (codes + 1).clip(max=15)
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


# --- torchao/optim/subclass_4bit.py (verbatim, without lru_cache)
def get_qmap_signed():
    return tuple(create_dynamic_map(True, 3, 4))


def get_qmap_unsigned():
    return tuple(torch.linspace(0, 1, 17, device="cpu")[1:].tolist())  # no zero


class State4bit:
    """What single_param_adam uses of OptimState4bit (subclass_4bit.py): zeros, .float() (dequantize), .copy_()."""

    def __init__(self, shape, signed, block_size=128):
        n_elems = math.prod(shape)
        self.codes = torch.zeros(n_elems // 2, dtype=torch.uint8)
        self.scale = torch.zeros(n_elems // block_size)
        self.qmap = torch.tensor(get_qmap_signed() if signed else get_qmap_unsigned(), dtype=torch.float32)
        self.block_size = self.codes.numel() * 2 // self.scale.numel()
        self._shape = shape

    def float(self):
        codes = torch.stack([self.codes >> 4, self.codes & 0b1111], dim=-1)  # unpack
        float_data = dequant_with_qmap(codes, self.qmap, self.scale)
        return float_data.view(self._shape)

    def copy_(self, src):
        scaled_src, scale = scale_tensor(src.view(-1), self.block_size)
        codes = quantize_4bit_with_qmap(scaled_src, self.qmap)
        self.codes.copy_((codes[::2] << 4) | codes[1::2])  # packing
        self.scale.copy_(scale)


def b64f(t):
    v = t.detach().reshape(-1).tolist()
    return base64.b64encode(struct.pack("<%df" % len(v), *v)).decode()


def b64u8(t):
    return base64.b64encode(bytes(t.reshape(-1).tolist())).decode()


def run(seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    # 4-bit: 33 blocks of 128 (4224, not a whole number of 256-blocks); fp32 because 4160 is not whole blocks of 128;
    # fp32 because under 4096
    specs = [("big", [33, 128], 0.1), ("odd", [4160], 0.0), ("small", [300], 0.1)]
    beta1, beta2, eps = 0.9, 0.995, 1e-6
    lrs = [1e-2, 5e-3, 2e-2, 1e-3]
    out_tensors = []
    for name, shape, wd in specs:
        n = math.prod(shape)
        init = (torch.randn(shape, generator=gen) * 0.3).to(dtype)
        grads = [(torch.randn(shape, generator=gen) * (0.5 if s % 2 == 0 else 0.02)).to(dtype) for s in range(len(lrs))]
        if name == "big":
            grads[0].view(-1)[:256] = 0.0  # blocks with no gradient yet: scale clipped to 1e-12
        p = init.clone()
        four = n >= 4096 and n % 128 == 0
        # _AdamBase._new_buffer: the quantized state whatever p's dtype (fp32 scales), else zeros_like(p)
        exp_avg = State4bit(shape, True) if four else torch.zeros_like(p)
        exp_avg_sq = State4bit(shape, False) if four else torch.zeros_like(p)
        step = torch.tensor(0.0)
        snapshots = []
        for s, lr in enumerate(lrs, start=1):
            step += 1
            single_param_adam(p, grads[s - 1], step, exp_avg, exp_avg_sq, None, torch.tensor(lr, dtype=torch.float32),
                              beta1, beta2, wd, eps, True, False)
            assert p.dtype == dtype and (four or exp_avg.dtype == dtype)
            if s in (1, len(lrs)):
                snap = dict(step=s, param=b64f(p))
                if four:
                    snap.update(state1=b64u8(exp_avg.codes), state2=b64u8(exp_avg_sq.codes),
                                absmax1=b64f(exp_avg.scale), absmax2=b64f(exp_avg_sq.scale))
                else:
                    snap.update(exp_avg=b64f(exp_avg), exp_avg_sq=b64f(exp_avg_sq))
                snapshots.append(snap)
        out_tensors.append(dict(name=name, shape=shape, weight_decay=wd, four_bit=four, init=b64f(init),
                                grads=[b64f(g) for g in grads], after=snapshots))
    return {
        "source": "pytorch/ao 36027d82d1ad9949597ea16002ff4940374b1b94: torchao/optim/adam.py single_param_adam, "
                  "quant_utils.py, subclass_4bit.py (eager, not torch.compile)",
        "torch_version": torch.__version__,
        "dtype": str(dtype).replace("torch.", ""),
        "qmap_signed": list(get_qmap_signed()), "qmap_unsigned": list(get_qmap_unsigned()),
        "betas": [beta1, beta2], "eps": eps, "lrs": lrs,
        "tensors": out_tensors,
    }


def write(out, name):
    path = os.path.join(os.path.dirname(__file__), "..", "..", "trainer", "src", "test", "resources", "fixtures",
                        name)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(path))


def main():
    write(run(81, torch.float32), "torchao_adamw4bit_expected.json")
    write(run(83, torch.float16), "torchao_adamw4bit_fp16_expected.json")


if __name__ == "__main__":
    main()
