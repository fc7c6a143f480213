#!/usr/bin/env python3
"""NF4 + double-quantization fixture for jtune's quant tests.

THIS IS NOT BITSANDBYTES. No bitsandbytes wheel is installable here, so the functions below are a line-by-line
transcription of bitsandbytes' pure-torch reference code (bitsandbytes-foundation/bitsandbytes, main at 95f9af3):
  - bitsandbytes/functional.py: get_4bit_type("nf4"), create_dynamic_map(), quantize_4bit(compress_statistics=True)
    (offset = absmax.mean(); quantize_blockwise(absmax - offset, blocksize=256)), dequantize_4bit's nested branch;
  - bitsandbytes/backends/default/ops.py: the "default" kernels quantize_4bit, quantize_blockwise,
    _dequantize_blockwise_compute, _dequantize_4bit_compute.
It runs with Debian's torch (/usr/bin/python3, torch 1.13) and writes
quant/src/test/resources/dev/jtune/quant/nf4_fixture.json, which Nf4FixtureTest compares with the Java quantizer bit for
bit. Floats are stored as the hex of their little-endian fp32 bytes, bytes as hex strings.

Usage: /usr/bin/python3 tools/reference/nf4_reference.py [output.json]
"""
import json
import struct
import sys
from math import prod

import torch

# ---- bitsandbytes/functional.py -------------------------------------------------------------------------------------


def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    data = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(
            2 ** (i + non_sign_bits - max_exponent_bits) + 1
            if signed
            else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1,
        )
        boundaries = torch.linspace(0.1, 1, fraction_items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    if additional_items > 0:
        boundaries = torch.linspace(0.1, 1, additional_items + 1, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    assert len(data) == 2**total_bits
    gap = 256 - len(data)
    for i in range(gap):
        data.append(0)
    data.sort()
    return torch.tensor(data, dtype=torch.float32)


def get_4bit_type_nf4():
    data = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
            -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
            0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]
    data = torch.tensor(data)
    data.div_(data.abs().max())
    return data


# ---- bitsandbytes/backends/default/ops.py ---------------------------------------------------------------------------


def quantize_blockwise_default(A, code, blocksize):
    A_flat = A.reshape(-1).float()
    n = A_flat.numel()
    rem = n % blocksize
    full = n - rem
    blocks = full // blocksize
    A_com = A_flat[:full].reshape(blocks, blocksize)
    absmax = A_com.abs().max(dim=-1)[0]
    scaled = torch.clamp(A_com * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        am = A_flat[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, am.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(A_flat[full:] / am, -1, 1)])
    bounds = (code[:-1] + code[1:]) / 2
    q = torch.bucketize(scaled, bounds, out_int32=True).to(torch.uint8)
    return q.reshape(A.shape), absmax


def quantize_4bit_default(A, blocksize, code):
    bounds = (code[:-1] + code[1:]) / 2  # _get_4bit_quantize_bounds: NF4 order is the identity
    A_flat = A.reshape(-1).float()
    n = A_flat.numel()
    rem = n % blocksize
    full = n - rem
    blocks = full // blocksize
    A_com = A_flat[:full].reshape(blocks, blocksize)
    absmax = A_com.abs().max(dim=-1)[0]
    scaled = torch.clamp(A_com * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        am = A_flat[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, am.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(A_flat[full:] / am, -1, 1)])
    if scaled.numel() % 2:
        scaled = torch.nn.functional.pad(scaled, (0, 1))
    q = torch.bucketize(scaled, bounds, out_int32=True)
    q8 = q.to(torch.uint8)
    packed = ((q8[::2] << 4) | q8[1::2]).unsqueeze(1)
    return packed, absmax


def dequantize_blockwise_default(A_flat, absmax, code, blocksize, dtype):
    n = A_flat.numel()
    out = code[A_flat.to(torch.int64)]
    rem = n % blocksize
    if rem == 0:
        out = (out.reshape(-1, blocksize) * absmax.view(-1, 1)).reshape(n)
    else:
        full = n - rem
        blocks = full // blocksize
        out = torch.cat([(out[:full].reshape(blocks, blocksize) * absmax[:blocks].view(-1, 1)).reshape(full),
                         out[full:] * absmax[blocks]])
    return out.to(dtype)


def dequantize_4bit_default_fp32(A_flat, absmax, code, blocksize, shape):
    n = prod(shape)
    out_dq = torch.empty(A_flat.size(0) * 2, dtype=torch.int32)
    out_dq[1::2] = A_flat & 0xF
    out_dq[::2] = A_flat >> 4
    out_dq = code[out_dq.long()][:n]
    rem = n % blocksize
    if rem:
        full = n - rem
        blocks = full // blocksize
        out = torch.empty(n, dtype=torch.float32)
        out[:full] = (out_dq[:full].view(-1, blocksize) * absmax[:blocks].view(-1, 1)).reshape(full)
        out[full:] = out_dq[full:] * absmax[blocks]
    else:
        out = (out_dq.view(-1, blocksize) * absmax.view(-1, 1)).reshape(n)
    return out  # stays fp32; the caller's .to(dtype) is applied on the Java side as well


# ---- functional.quantize_4bit(compress_statistics=True, quant_type="nf4") ------------------------------------------


def quantize_nf4_nested(A, blocksize=64):
    code = get_4bit_type_nf4()
    packed, absmax = quantize_4bit_default(A, blocksize, code)
    offset = absmax.mean()
    qabsmax, absmax2 = quantize_blockwise_default(absmax - offset, create_dynamic_map(), 256)
    # dequantize_4bit: absmax = dequantize_blockwise(qabsmax, state2); absmax += offset
    deq_absmax = dequantize_blockwise_default(qabsmax, absmax2, create_dynamic_map(), 256, torch.float32)
    deq_absmax += offset
    deq = dequantize_4bit_default_fp32(packed.reshape(-1), deq_absmax, code, blocksize, A.shape)
    return dict(packed=packed, absmax=absmax, offset=offset, qabsmax=qabsmax, absmax2=absmax2,
                deq_absmax=deq_absmax, deq=deq)


# ---- fixture ------------------------------------------------------------------------------------------------------


def bits(t):
    """fp32 values as the hex of their little-endian bytes (8 hex digits a value)."""
    return b"".join(struct.pack("<f", v) for v in t.float().reshape(-1).tolist()).hex()


def case(name, values, shape, dtype=torch.float32, with_dequantized=True):
    A = values.reshape(shape).to(dtype)
    r = quantize_nf4_nested(A)
    return {
        "name": name, "shape": list(shape), "dtype": str(dtype).replace("torch.", ""),
        "values": bits(A.float()),
        "packed": bytes(r["packed"].reshape(-1).tolist()).hex(),
        "absmax": bits(r["absmax"]),
        "offset": bits(r["offset"].reshape(1)),
        "absmax_codes": bytes(r["qabsmax"].reshape(-1).tolist()).hex(),
        "nested_absmax": bits(r["absmax2"]),
        "dequantized_absmax": bits(r["deq_absmax"]),
        "dequantized_fp32": bits(r["deq"]) if with_dequantized else None,
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "quant/src/test/resources/dev/jtune/quant/nf4_fixture.json"
    g = torch.Generator().manual_seed(20240604)
    code = get_4bit_type_nf4()
    mids = (code[:-1] + code[1:]) / 2
    cases = [
        case("normal 3x100 (tail of 44)", torch.randn(300, generator=g) * 0.02, (3, 100)),
        case("bf16 8x72", torch.randn(576, generator=g) * 0.05, (8, 72), torch.bfloat16),
        case("fp16 odd 7x9 (one partial block, odd count)", torch.randn(63, generator=g), (7, 9), torch.float16),
    ]
    # Adversarial: exact midpoints (with 1.0 as the block absmax), an all-zero block, a negative-only block, a zero
    # tail, a tail with values whose x/am and x*(1/am) differ.
    adv = torch.zeros(64 * 4 + 21)
    adv[0] = 1.0
    adv[1:16] = mids
    adv[16:31] = -mids
    adv[31:64] = torch.rand(33, generator=g) * 2 - 1
    # adv[64:128] stays zero (absmax 0)
    adv[128:192] = -torch.rand(64, generator=g) * 3
    adv[192:256] = torch.rand(64, generator=g) * 1e-3
    adv[256:] = torch.tensor([0.3, -0.7, 0.1, 0.123456, 0.9999, -0.33, 0.47, 0.51, -0.02, 0.0, 0.2, 0.61,
                              -0.4, 0.25, 0.77, -0.6, 0.05, 0.31, 0.44, 0.52, 0.9])
    cases.append(case("adversarial 277", adv, (277,)))
    cases.append(case("zero tail", torch.cat([torch.randn(64, generator=g), torch.zeros(10)]), (74,)))
    # > 256 blocks: two nested blocks, the second partial.
    cases.append(case("300 blocks (nested tail)", torch.randn(300 * 64 + 10, generator=g) * torch.rand(1, generator=g),
                      (1, 300 * 64 + 10), with_dequantized=False))
    doc = {
        "generator": "tools/reference/nf4_reference.py (a transcription of bitsandbytes' torch reference backend, "
                     "not bitsandbytes itself), torch " + torch.__version__,
        "nf4": bits(code),
        "dynamic_map": bits(create_dynamic_map()),
        "cases": cases,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
