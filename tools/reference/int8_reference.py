#!/usr/bin/env python3
"""LLM.int8() (load_in_8bit) fixture for jtune's quant tests.

THIS IS NOT BITSANDBYTES. No bitsandbytes wheel is installable here, so the functions below transcribe what
bitsandbytes does for a frozen `Linear8bitLt(has_fp16_weights=False, threshold=6.0)` -- transformers'
`BitsAndBytesConfig(load_in_8bit=True)` defaults -- on a CUDA device during training
(bitsandbytes-foundation/bitsandbytes, main at 95f9af309d4d5793847169c39288dcd3fcbdf564):
  - nn/modules.py Int8Params._quantize: the weight `.to(torch.float16)`, then functional.int8_vectorwise_quant;
  - backends/default/ops.py int8_vectorwise_quant: row absmax (outliers |a| >= threshold zeroed first),
    `torch.round(A * (127.0 / row_stats))` (round half to even), int8; outlier columns zeroed in every row.
    (backends/cuda/ops.py + csrc/kernels.cu kInt8VectorQuant do the same with `__fdividef(127, absmax)`, an
    approximate division, which this transcription does not reproduce: see the quant package-info);
  - autograd/_functions.py MatMul8bitLt.forward (the path `matmul` takes on CUDA; on CPU and XPU a training module
    takes MatMul8bitFp, a dense product with the dequantized weight): A cast to fp16 for quantization only;
    int8_mixed_scaled_mm (backends/default/ops.py): int8 x int8 -> int32 (cuBLASLt), dequantized by
    csrc/kernels.cu kdequant_mm_int32_fp16: fp16(fmaf(C * rowStats * colStats, 6.200012e-05f, bias)), then
    `.to(A.dtype)` (int8_mm_dequant "cuda" always produces fp16); the outlier columns added back with
    `output.addmm(subA, subB)`, subA = A[:, cols] in A's dtype, subB = int8_vectorwise_dequant(CB[:, cols], SCB)
    (= CB * SCB * 7.874015718698502e-3 in fp32) cast to A's dtype;
  - MatMul8bitLt.backward: grad_A = grad_output.to(dtype_A) @ CB.to(dtype_A).mul_(SCB.unsqueeze(1).mul(1/127)).
The int32 products are computed here in int64 (exact). The addmm is done in fp32 then rounded once.

Writes quant/src/test/resources/dev/jtune/quant/int8_fixture.json (floats as hex of little-endian fp32 bytes,
int8 as hex bytes), which Int8FixtureTest compares with jtune's Java quantizer and its libtorch kernel.

Usage: target/interop-venv/bin/python tools/reference/int8_reference.py [output.json]   (any torch >= 1.13)
       target/interop-venv/bin/python tools/reference/int8_reference.py checkpoint SRC DST
  (the second form writes SRC, a dense transformers directory, as transformers saves a load_in_8bit model; the
  fixture quant/src/test/resources/dev/jtune/quant/tiny-int8-llama is model/.../fixtures/tiny-bf16-llama so written)
"""
import json
import struct
import sys

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
MM_DEQUANT_CONST = 6.200012e-05  # csrc/kernels.cu: 1.0f/(127.0f*127.0f), as a float literal
VECTORWISE_DEQUANT = 7.874015718698502e-3  # _ops.py int8_vectorwise_dequant default kernel


def int8_vectorwise_quant(A, threshold=0.0):
    """backends/default/ops.py, with an all-zero row quantized to 0 (the CUDA kernel's __float2int_rn(NaN) = 0)."""
    A = A.clone()
    outlier_cols = None
    if threshold > 0.0:
        outliers = A.abs() >= threshold
        outlier_cols = torch.argwhere(outliers.any(dim=0)).view(-1)
        A[outliers] = 0
    row_stats = torch.max(A.abs(), dim=1).values.float()
    scale = 127.0 / row_stats.unsqueeze(-1)  # torch: row_stats.reciprocal() * 127.0 (Tensor.__rtruediv__)
    scale = torch.where(row_stats.unsqueeze(-1) > 0, scale, torch.zeros_like(scale))
    out_row = torch.round(A * scale).to(torch.int8)
    if outlier_cols is not None:
        out_row[:, outlier_cols] = 0
    return out_row, row_stats, outlier_cols


def quantize_weight(w):
    """Int8Params._quantize: w in the model's dtype -> (CB int8 [out, in], SCB fp32 [out])."""
    cb, scb, _ = int8_vectorwise_quant(w.contiguous().to(torch.float16))
    return cb, scb


def forward(x, cb, scb, threshold=6.0):
    """MatMul8bitLt.forward with the CUDA dequantization; x [rows, in] in its dtype -> [rows, out] in x's dtype."""
    ca, sca, cols = int8_vectorwise_quant(x.to(torch.float16), threshold)
    c = torch.matmul(ca.long(), cb.long().t())  # exact int32 products (int64 here)
    out = ((c.float() * sca.unsqueeze(1)) * scb.unsqueeze(0)) * torch.tensor(MM_DEQUANT_CONST, dtype=torch.float32)
    y = out.to(torch.float16).to(x.dtype)
    if cols is not None and cols.numel():
        sub_a = x[:, cols]
        sub_b = (cb[:, cols].float() * scb.view(-1, 1) * VECTORWISE_DEQUANT).to(x.dtype).t()
        y = (y.float() + torch.matmul(sub_a.float(), sub_b.float())).to(x.dtype)
    return y, (cols if cols is not None else torch.empty(0, dtype=torch.int64))


def dequantized_weight(cb, scb, dtype):
    """MatMul8bitLt.backward's CB: CB.to(dtype).mul_(SCB.unsqueeze(1).mul(1.0 / 127.0)) (fp32 math, one rounding)."""
    s = scb.unsqueeze(1) * torch.tensor(1.0 / 127.0, dtype=torch.float32)
    return (cb.to(dtype).float() * s).to(dtype)


def hexf(t):
    return b"".join(struct.pack("<f", v) for v in t.float().reshape(-1).tolist()).hex()


def hexb(t):
    return bytes((v & 0xFF) for v in t.reshape(-1).tolist()).hex()


def case(name, dtype, out_f, in_f, rows, seed, outliers, near_one=False):
    g = torch.Generator().manual_seed(seed)
    dt = DTYPES[dtype]
    w = (torch.randn(out_f, in_f, generator=g) * 0.05).to(dt)
    w[1, :] = w[1, :] * 40  # one row with large weights (|w| > 1)
    w[2, 3] = 0.5  # an absmax set by one element
    x = torch.randn(rows, in_f, generator=g).to(dt)
    if near_one:  # every int8 code near 127: the int32 sums pass 2^24
        w = (1 + 0.01 * torch.randn(out_f, in_f, generator=g)).to(dt)
        x = (1 + 0.01 * torch.randn(rows, in_f, generator=g)).to(dt)
    if outliers:
        x[0, 2] = 7.5
        x[3, 5] = -6.0  # exactly the threshold: an outlier (>=)
        x[1, in_f - 1] = 12.25
        x[2, 5] = 5.99  # in an outlier column but below the threshold itself
    x[rows - 1, :] = 0  # an all-zero row
    cb, scb = quantize_weight(w)
    y, cols = forward(x, cb, scb)
    up = torch.randn(rows, out_f, generator=g).to(dt)
    wdq = dequantized_weight(cb, scb, dt)
    grad = torch.matmul(up.float(), wdq.float()).to(dt)
    return {
        "name": name, "dtype": dtype, "out": out_f, "in": in_f, "rows": rows,
        "w": hexf(w), "cb": hexb(cb), "scb": hexf(scb), "x": hexf(x), "y": hexf(y),
        "outlier_cols": cols.tolist(), "upstream": hexf(up), "wdq": hexf(wdq), "grad_x": hexf(grad),
    }


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "quant/src/test/resources/dev/jtune/quant/int8_fixture.json"
    cases = []
    seed = 1
    for dtype in ("bf16", "fp16", "fp32"):
        for outliers in (False, True):
            cases.append(case(f"{dtype}-{'outliers' if outliers else 'plain'}", dtype, 12, 40, 6, seed, outliers))
            seed += 1
    # Wider weights: more rows whose 127.0 / absmax (reciprocal, then * 127) differs from a true division.
    cases.append(case("bf16-wide", "bf16", 96, 256, 5, 77, True))
    # A long reduction: |C| up to 127*127*2048 > 2^24, where fp32 sums of the products are no longer exact.
    cases.append(case("bf16-k2048", "bf16", 4, 2048, 3, 99, False, near_one=True))
    meta = {"torch": torch.__version__, "bitsandbytes": "95f9af309d4d5793847169c39288dcd3fcbdf564",
            "threshold": 6.0, "cases": cases}
    with open(path, "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {path}")


def write_checkpoint(src, dst):
    """A transformers directory as `save_pretrained` writes a `load_in_8bit` model (bitsandbytes'
    Linear8bitLt._save_to_state_dict: `X.weight` int8 CB, `X.SCB` fp32, `X.weight_format` uint8 0 "row"; config.json's
    quantization_config from BitsAndBytesConfig(load_in_8bit=True).to_dict()), made from the dense checkpoint SRC by
    this file's quantize_weight: every linear but lm_head, as transformers' get_keys_to_not_convert leaves it."""
    import os
    import shutil
    from safetensors.torch import load_file, save_file
    from transformers import BitsAndBytesConfig

    os.makedirs(dst, exist_ok=True)
    tensors = load_file(os.path.join(src, "model.safetensors"))
    out = {}
    for name, t in tensors.items():
        module = name[: -len(".weight")] if name.endswith(".weight") else None
        if module and t.dim() == 2 and "embed_tokens" not in module and not module.endswith("lm_head"):
            cb, scb = quantize_weight(t)
            out[name] = cb
            out[module + ".SCB"] = scb
            out[module + ".weight_format"] = torch.tensor(0, dtype=torch.uint8)
        else:
            out[name] = t
    save_file(out, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    config["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True).to_dict()
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    for extra in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        if os.path.exists(os.path.join(src, extra)):
            shutil.copy(os.path.join(src, extra), os.path.join(dst, extra))
    print(f"wrote {dst}: {sum(1 for n in out if n.endswith('.SCB'))} linears in 8-bit")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "checkpoint":
        write_checkpoint(sys.argv[2], sys.argv[3])
    else:
        main()

