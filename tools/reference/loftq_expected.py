#!/usr/bin/env python3
"""Writes lora/src/test/resources/dev/jtune/lora/loftq_expected.json for LoftqTest: PEFT's LoftQ initialisation
(peft/utils/loftq_utils.py loftq_init and _low_rank_decomposition, from the peft installed in target/interop-venv)
on small fixed matrices: the base weight it leaves (the NF4 round trip) and lora_A, lora_B.

PEFT's loftq_init needs bitsandbytes and a CUDA device; neither is available here, so its body is copied verbatim
(imports and device handling aside: compute_device is the CPU) and bitsandbytes' Params4bit(compress_statistics=False,
quant_type="nf4") + dequantize_4bit are nf4_reference.py's line-by-line transcription of bitsandbytes' default
backend (the same reference Nf4FixtureTest uses). PEFT's own _low_rank_decomposition is called as installed.

    target/interop-venv/bin/python tools/reference/loftq_expected.py
"""
import base64
import json
import os
import struct
import sys

import torch
import peft
from peft.utils.loftq_utils import _low_rank_decomposition

sys.path.insert(0, os.path.dirname(__file__))
from nf4_reference import dequantize_4bit_default_fp32, get_4bit_type_nf4, quantize_4bit_default  # noqa: E402


def nf4_round_trip(res):
    """bnb.nn.Params4bit(res, compress_statistics=False, quant_type="nf4") then bnb.functional.dequantize_4bit."""
    code = get_4bit_type_nf4()
    packed, absmax = quantize_4bit_default(res, 64, code)
    return dequantize_4bit_default_fp32(packed.reshape(-1), absmax, code, 64, tuple(res.shape)).reshape(res.shape)


@torch.no_grad()
def loftq_init(weight, num_bits: int, reduced_rank: int, num_iter=1):
    # --- peft/utils/loftq_utils.py loftq_init (verbatim but for the bitsandbytes calls and the device)
    if num_bits not in [4, 8]:
        raise ValueError("Only nf4 and int8 quantization is supported")
    if num_iter <= 0:
        raise ValueError("Number of iterations must be greater than 0")

    device = weight.device
    dtype = weight.dtype
    compute_device = "cpu"

    weight = weight.to(device=compute_device, dtype=torch.float32)
    res = weight.clone()
    for i in range(num_iter):
        # Quantization
        if num_bits == 4:
            dequantized_weight = nf4_round_trip(res)
        else:
            raise NotImplementedError

        res = weight - dequantized_weight

        # Decompose the residual by SVD
        output = _low_rank_decomposition(res, reduced_rank=reduced_rank)
        L, R, reduced_rank = output["L"], output["R"], output["reduced_rank"]

        # don't prepare the residual if we're at the end
        if i + 1 == num_iter:
            break

        res = weight - torch.mm(L, R)

    lora_A, lora_B = R, L

    return dequantized_weight.to(device=device, dtype=dtype), lora_A, lora_B


def b64f(t):
    v = t.detach().reshape(-1).tolist()
    return base64.b64encode(struct.pack("<%df" % len(v), *v)).decode()


def main():
    gen = torch.Generator().manual_seed(12)
    cases = []
    for out_f, in_f, r, iters in [(48, 64, 4, 1), (32, 96, 8, 1), (40, 64, 4, 3)]:
        w = torch.randn(out_f, in_f, generator=gen) * 0.05
        q, a, b = loftq_init(w, 4, r, iters)
        cases.append(dict(out=out_f, inp=in_f, r=r, iters=iters, weight=b64f(w), base=b64f(q), lora_A=b64f(a),
                          lora_B=b64f(b), product=b64f(b @ a)))
    out = {"source": "peft " + peft.__version__ + " utils/loftq_utils.py loftq_init (bitsandbytes' NF4 via"
                     " nf4_reference.py), torch " + torch.__version__, "cases": cases}
    path = os.path.join(os.path.dirname(__file__), "..", "..", "lora", "src", "test", "resources", "dev", "jtune",
                        "lora", "loftq_expected.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
